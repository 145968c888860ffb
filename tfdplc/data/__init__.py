"""Data: tfds input pipelines (`load_images`, `input_pipeline`), the local `mnist5k` set, degradations.

Importing this package registers the `mnist5k` tfds builder and the gin configurables
`tfdplc.data.input_pipeline`, `tfdplc.data.SuperResolution` and `tfdplc.data.GaussianNoise`.
"""

from tfdplc.data.degradations import (
    GaussianNoise,
    SuperResolution,
    add_gaussian_noise,
    downsample_upsample,
)
from tfdplc.data.loaders import (
    DATASET_NAMES,
    DatasetNotFoundError,
    input_pipeline,
    load_images,
)
from tfdplc.data.mnist5k import Mnist5k, prepare_mnist5k

__all__ = [
    "DATASET_NAMES",
    "DatasetNotFoundError",
    "GaussianNoise",
    "Mnist5k",
    "SuperResolution",
    "add_gaussian_noise",
    "downsample_upsample",
    "input_pipeline",
    "load_images",
    "prepare_mnist5k",
]

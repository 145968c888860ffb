"""Real bitstreams: the container format, the codec interface of models, SavedModel export, compression.

* `container`, `errors`: the documented file format of one compressed image and every way it is refused.
* `checkvalue`: the check value of format version 3 (KMX-32, keyed by the model fingerprint).
* `archive`: many images of one model in one file (fixed-rate codes bit-packed back to back).
* `bitpack`, `graph`: bit packing and the container in core TensorFlow ops (servable graphs).
* `interface`: what a model implements to be exported (`CodecSpec`, `encode_codes`, `decode_codes`, ...).
* `fingerprint`: which model wrote a file.
* `export`: `export_model` writes the SavedModels (full, and stock-servable for TensorFlow Serving).
* `runtime`: `load` / `Codec` compress and decompress images in Python.
* `workdir`: `restore_for_export` rebuilds a trained objective from its workdir.
* `files`: regular-file reads bounded by the format's size (one copy of a file), atomic writes never
  through a symlink.

See docs/serving.md for the file layout, serving with TensorFlow Serving and a user-defined codec.
"""

from tfdplc.codec import archive
from tfdplc.codec.container import Header, Layout, pack, unpack
from tfdplc.codec.errors import (
    CodecError,
    CorruptedError,
    DamagedArchiveError,
    ModelMismatchError,
    NotAContainerError,
    TruncatedError,
    UnsupportedVersionError,
)
from tfdplc.codec.export import ExportInfo, export_model
from tfdplc.codec.interface import (
    CodecSpec,
    bottleneck_codes,
    bottleneck_values,
    codec_spec_of,
    per_example_normal,
    per_example_uniform,
)
from tfdplc.codec.runtime import Codec, load
from tfdplc.codec.workdir import restore_for_export

__all__ = [
    "Codec",
    "CodecError",
    "archive",
    "CodecSpec",
    "CorruptedError",
    "DamagedArchiveError",
    "ExportInfo",
    "Header",
    "Layout",
    "ModelMismatchError",
    "NotAContainerError",
    "TruncatedError",
    "UnsupportedVersionError",
    "bottleneck_codes",
    "bottleneck_values",
    "codec_spec_of",
    "export_model",
    "load",
    "pack",
    "per_example_normal",
    "per_example_uniform",
    "restore_for_export",
    "unpack",
]

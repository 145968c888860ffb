"""tfdplc: generative (distribution-preserving) lossy compression in TensorFlow/Keras.

`import tfdplc` is cheap: the submodules (`tfdplc.layers`, `tfdplc.nets`, ...) are imported on first use,
so a codec that only needs the layers does not pay for TensorFlow Datasets, and a tool can set up
TensorFlow's logging before TensorFlow loads. Each submodule registers its gin configurables (and Keras
custom objects) when it is imported; `register_configurables()` imports every one of them (the binaries
call it, through `tfdplc.train.parse_gin` and `load_workdir_config`, before parsing a gin config).
"""

import importlib

__version__ = "0.1.0"

#: Submodules loaded on first attribute access.
SUBMODULES = (
    "codec",
    "cpu",
    "data",
    "features",
    "layers",
    "losses",
    "metrics",
    "nets",
    "objectives",
    "plots",
    "quiet",
    "theory",
    "train",
)
#: Submodules that register gin configurables (the ones a gin config may name).
_CONFIGURABLE_SUBMODULES = ("data", "layers", "losses", "metrics", "nets", "objectives", "train")

__all__ = [
    "data",
    "layers",
    "losses",
    "metrics",
    "nets",
    "objectives",
    "train",
    "register_configurables",
    "__version__",
]


def register_configurables() -> None:
    """Registers every gin configurable of tfdplc and gin's `tf.keras.optimizers.*` (imports them)."""
    import gin.tf.external_configurables  # noqa: F401 - registers tf.keras.optimizers.* with gin

    for name in _CONFIGURABLE_SUBMODULES:
        importlib.import_module(f"{__name__}.{name}")


def __getattr__(name):
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(SUBMODULES))

"""Gin config parsing with clear errors, shared by the binaries."""

from typing import Sequence

import gin
import tensorflow as tf

__all__ = ["GinConfigError", "parse_gin", "split_cpu"]


class GinConfigError(ValueError):
    """A gin config file or binding could not be parsed or does not match any configurable."""


def parse_gin(config_files: Sequence[str] = (), bindings: Sequence[str] = ()) -> None:
    """Parses gin config files then bindings (later ones override earlier ones), with clear errors.

    Args:
      config_files: paths of .gin files.
      bindings: single bindings such as "train.total_steps = 100".

    Raises:
      GinConfigError: naming the file or binding at fault and gin's reason.
      FileNotFoundError: if a config file does not exist.
    """
    import tfdplc  # noqa: F401 - registers every configurable before parsing

    for path in config_files:
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"gin config file not found: {path!r}")
        try:
            gin.parse_config_file(path)
        except Exception as e:  # gin raises ValueError, SyntaxError, KeyError... by case
            raise GinConfigError(f"Bad gin config file {path!r}: {e}") from e
    for binding in bindings:
        try:
            gin.parse_config(binding)
        except Exception as e:
            raise GinConfigError(f"Bad gin binding {binding!r}: {e}") from e


def split_cpu(num_devices: int) -> None:
    """Splits the host CPU into `num_devices` logical devices (before TF initialises its devices).

    Lets `MirroredStrategy` run over several devices on a CPU-only machine, the way it runs over GPUs.

    Raises:
      RuntimeError: if TF already initialised its devices.
    """
    if num_devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
    )

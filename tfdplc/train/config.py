"""Gin config parsing with clear errors, shared by the binaries."""

import difflib
import os
from typing import List, Sequence

import gin
import tensorflow as tf
from absl import logging

from tfdplc.train.checks import ConfigText, GinConfigError, unused_macros

__all__ = ["GinConfigError", "bound_value", "include_roots", "parse_gin", "split_cpu"]


def parse_gin(config_files: Sequence[str] = (), bindings: Sequence[str] = ()) -> None:
    """Parses gin config files then bindings (later ones override earlier ones), with clear errors.

    A config's `include 'gin/NAME.gin'` resolves against the working directory first, as gin does, then
    against the folder above the including config's `gin/` folder and above this package (the repository
    root), so the shipped configs work from any working directory.

    Also refuses a binding of a macro that nothing uses: `k = 8` where the configs use `K` would
    otherwise define a new macro and train with the old value (unused macros of the config files only
    get a warning).

    Args:
      config_files: paths of .gin files.
      bindings: single bindings such as "train.total_steps = 100".

    Raises:
      GinConfigError: naming the file or binding at fault and gin's reason.
      FileNotFoundError: if a config file does not exist.
    """
    import tfdplc

    tfdplc.register_configurables()

    for path in config_files:
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"gin config file not found: {path!r}")
        _add_include_roots(path)
        try:
            gin.parse_config_file(path)
        except Exception as e:  # gin raises ValueError, SyntaxError, KeyError... by case
            raise GinConfigError(f"Bad gin config file {path!r}: {_one_line(e)}") from e
    for binding in bindings:
        try:
            gin.parse_config(binding)
        except Exception as e:
            raise GinConfigError(f"Bad gin binding {binding!r}: {_one_line(e)}") from e
    unused = unused_macros()
    from_bindings = [name for name in unused if any(name in ConfigText(b).macros for b in bindings)]
    if from_bindings:
        raise GinConfigError(_unused_macro_message(from_bindings[0], bindings))
    if unused:  # in a config file: documentation, or a leftover; not the user's typo
        logging.warning(
            "gin macros defined in the config files but used by no binding: %s", ", ".join(unused)
        )


#: The repository root of a source checkout: the folder holding `tfdplc/` and `gin/`.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_include_roots = []  # the folders added to gin's search path, in order, each once


def include_roots(config_path: str) -> List[str]:
    """Where `parse_gin` looks for the files `config_path` includes, after the working directory.

    Args:
      config_path: the including config file.

    Returns:
      The folder above the config's `gin/` folder (if it is in one), then the repository root.
    """
    folder = os.path.dirname(os.path.abspath(config_path))
    roots = [os.path.dirname(folder)] if os.path.basename(folder) == "gin" else []
    return roots + [_PACKAGE_ROOT]


def _add_include_roots(config_path: str) -> None:
    """Lets `include 'gin/x.gin'` in `config_path` resolve outside the repository root (see `parse_gin`)."""
    for root in include_roots(config_path):
        if root not in _include_roots and os.path.isdir(os.path.join(root, "gin")):
            _include_roots.append(root)
            gin.add_config_file_search_path(root)  # after '' (the working directory), which keeps priority


def _unused_macro_message(name: str, bindings: Sequence[str]) -> str:
    used = sorted(ConfigText(gin.config_str()).referenced_macros())
    close = difflib.get_close_matches(name, used, n=1) or [m for m in used if m.lower() == name.lower()]
    hint = f" (did you mean {close[0]}?)" if close else ""
    for binding in reversed(bindings):
        if name in ConfigText(binding).macros:
            return f"Bad gin binding {binding!r}: the macro {name} is not used by any binding{hint}."
    raise AssertionError(f"{name} is not bound by {bindings}")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


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


def bound_value(name: str):
    """The value bound to the gin parameter `name` ("Configurable.param"), macros resolved; None if unbound.

    A `%MACRO` binding is followed to the macro's value (through chains of macros), so tools that inspect a
    parsed config (tools/diagnose.py, tools/flops.py) see what the configurable will receive.
    """
    try:
        value = gin.query_parameter(name)
    except ValueError:
        return None
    while isinstance(value, gin.config.ConfigurableReference) and value.configurable.name == "macro":
        value = gin.query_parameter(f"{'/'.join(value.scopes)}/macro.value")
    return value

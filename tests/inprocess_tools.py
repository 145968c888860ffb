"""Loads tools/NAME.py into the test process with its absl flags, however many tools a worker loads.

Every tool defines its flags on absl's one global `FLAGS`, and several define the same names (`--output`
in tools/benchmark.py and tools/codec.py), so the second tool loaded into one pytest-xdist worker used to
fail with DuplicateFlagError, depending on how the tests were spread over the workers. `load_tool`
keeps one module per tool and, on every call, takes the flags of the other loaded tools off `FLAGS` and
puts the requested tool's back: call it right before parsing that tool's flags or calling its main.
"""

import importlib.util
import os
import sys

from absl import flags
from absl import logging as _absl_logging  # noqa: F401  its flags (--verbosity, -v) before any tool's

__all__ = ["load_tool"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LOADED = {}  # tool name -> (module, {flag name: Flag})


def _set_aside_all():
    for _, own in _LOADED.values():
        for name, flag in own.items():
            if name in flags.FLAGS and flags.FLAGS[name] is flag:
                delattr(flags.FLAGS, name)


def load_tool(name: str):
    """tools/NAME.py as module `NAME_tool`, with its flags (and no other loaded tool's) on `FLAGS`.

    Args:
      name: the tool's file name without `.py`, e.g. "codec".

    Returns:
      The module, loaded once per process.

    Raises:
      DuplicateFlagError: if the tool defines a flag that something other than a tool already defines.
    """
    _set_aside_all()
    if name in _LOADED:
        module, own = _LOADED[name]
        flags.FLAGS.unparse_flags()
        for flag_name, flag in own.items():
            flags.FLAGS[flag_name] = flag
        return module
    module_name = f"{name}_tool"
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    before = set(flags.FLAGS)
    spec.loader.exec_module(module)  # a failure is raised as it is, and nothing is cached
    sys.modules[module_name] = module
    # The flags the tool added, by name: absl's own record of the defining module is not reliable here
    # (absl-py 2.x attributes flags defined under importlib to "importlib._bootstrap"). absl.logging is
    # imported above, so its flags are not taken for the first tool's.
    _LOADED[name] = (module, {flag: flags.FLAGS[flag] for flag in set(flags.FLAGS) - before})
    return module

"""Keeps the routine start-up noise of TensorFlow and TFDS out of the binaries' stderr.

Only known, harmless lines are dropped; everything else (TF's warnings and errors included) still shows.
"""

import logging
import os
import re
import sys
import tempfile

from tfdplc import cpu

__all__ = ["NOISE", "import_tensorflow", "quiet_logs"]

#: Lines dropped from what TensorFlow prints while it is imported. The TF 2.14 wheel registers its CUDA
#: plugins twice (tensorflow/tensorflow#62075) and reports each at ERROR level, even on CPU-only
#: machines; TensorRT is an optional accelerator tfdplc does not use.
NOISE = re.compile(r"Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning: Could not find TensorRT")

#: Log messages dropped by `quiet_logs`, with the reason.
_ROUTINE_LOGS = (
    # tfds warns when files of a dataset stored in order (mnist5k: by class) are shuffled, which the
    # training pipeline does on purpose.
    "but examples will not be read in order because `shuffle_files=True`",
)


def import_tensorflow():
    """Imports TensorFlow (once per process) without the `NOISE` lines, and returns it.

    TensorFlow's C++ start-up messages bypass Python's logging, so stderr (file descriptor 2) is
    captured while TensorFlow loads and replayed without the `NOISE` lines. Sets TF_CPP_MIN_LOG_LEVEL
    to 2 (warnings from C++ off, errors on) unless the environment chose a level, and turns TensorFlow's
    oneDNN kernels on where tfdplc measured them faster (`tfdplc.cpu.prefer_onednn`; a user's own
    TF_ENABLE_ONEDNN_OPTS wins).
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cpu.prefer_onednn()  # read once by TensorFlow while it loads: must come first
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines(keepends=True):
                if not NOISE.search(line):
                    sys.stderr.write(line)
            sys.stderr.flush()
    return tensorflow


class _RoutineFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.INFO and f"{os.sep}tensorflow_datasets{os.sep}" in record.pathname:
            return False  # tfds' progress notes ("Load dataset info from ...") on every pipeline built
        message = record.getMessage()
        return not any(text in message for text in _ROUTINE_LOGS)


def quiet_logs() -> None:
    """Drops tfds' INFO notes and the messages of `_ROUTINE_LOGS` from absl's logger (where tfds logs)."""
    logger = logging.getLogger("absl")
    if not any(isinstance(f, _RoutineFilter) for f in logger.filters):
        logger.addFilter(_RoutineFilter())

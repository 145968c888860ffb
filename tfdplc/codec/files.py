"""Reading and writing the codec's files safely: regular files only, bounded reads, atomic writes.

The command line (tools/codec.py) reads whatever a folder holds and writes into a folder someone else may
share, so both directions are guarded here:

* `open_regular` opens without blocking (a FIFO cannot hang it) and refuses anything that is not a
  regular file after opening it (FIFOs, devices such as a symlink to /dev/zero, folders).
* `read_regular` reads such a file of at most `limit` bytes into one buffer: it holds one copy of the
  file (a file larger than the limit is refused from its size, after reading at most its first bytes),
  so a file cannot make the reader use more memory than the format allows.
* `write_atomic` writes a temporary file in the output folder and renames it into place: the output is
  complete or absent (a full disk leaves no partial file), and a symlink at the output path is never
  followed: without `overwrite` any existing entry (a dangling symlink included) is refused, with
  `overwrite` the entry itself is replaced, never the file it points to. The temporary file's name has a
  fixed length of 20 bytes whatever the output's name, so every output name the file system allows
  (up to NAME_MAX, 255 bytes) can be written.
"""

import contextlib
import errno
import os
import stat
import tempfile

__all__ = [
    "TEMPORARY_PREFIX",
    "FileTooLargeError",
    "NotARegularFileError",
    "open_regular",
    "read_regular",
    "write_atomic",
]

#: Temporary files are named TEMPORARY_PREFIX + 8 random characters + ".tmp" (20 bytes).
TEMPORARY_PREFIX = ".tfdplc-"
#: `read_regular` keeps this many of a too-large file's first bytes (`FileTooLargeError.head`).
HEAD_SIZE = 16


class NotARegularFileError(OSError):
    """The path is a FIFO, a device, a socket or a folder: only regular files are read."""


class FileTooLargeError(ValueError):
    """The file is larger than the format allows.

    Attributes:
      size: the file's size in bytes.
      head: its first bytes (at most 16), to name what it is.
    """

    def __init__(self, message: str, size: int = 0, head: bytes = b""):
        super().__init__(message)
        self.size, self.head = size, head


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


@contextlib.contextmanager
def open_regular(path: str):
    """Opens a regular file for reading (a context manager yielding the stream and its size).

    Yields:
      `(stream, size)`: an unbuffered binary file object at the file's start and its size from `fstat`.

    Raises:
      NotARegularFileError: if `path` is not a regular file (nothing is read from it).
      OSError: if it cannot be opened.
    """
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise NotARegularFileError(errno.EINVAL, f"{_kind(status.st_mode)}, not a regular file: skipped")
        stream = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    with stream:
        yield stream, status.st_size


def read_regular(path: str, limit: int) -> bytes:
    """Reads a regular file of at most `limit` bytes, holding one copy of it.

    Args:
      path: the file (a symlink to a regular file is read; to anything else it is refused).
      limit: the largest size the caller accepts.

    Returns:
      The file's bytes.

    Raises:
      NotARegularFileError: if `path` is not a regular file (nothing is read from it).
      FileTooLargeError: if it holds more than `limit` bytes (from its size, or, for a file that grows
        while it is read, after at most `limit + 1` bytes); its `head` holds the first bytes.
      OSError: if it cannot be opened or read.
    """
    with open_regular(path) as (stream, size):
        if size > limit:
            raise FileTooLargeError(
                f"{size} bytes, more than {limit} bytes: too large", size=size, head=stream.read(HEAD_SIZE)
            )
        # One read of the announced size allocates the result once; a file that changed size while it is
        # read (or a short read) continues in a bytearray, still bounded by limit + 1.
        data = stream.read(size + 1)
        if len(data) != size:
            grown = bytearray(data)
            while len(grown) <= limit:
                more = stream.read(min(limit + 1 - len(grown), 1 << 20))
                if not more:
                    break
                grown += more
            if len(grown) > limit:
                raise FileTooLargeError(
                    f"more than {limit} bytes: too large", size=len(grown), head=bytes(grown[:HEAD_SIZE])
                )
            data = bytes(grown)
    return data


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str, data: bytes, overwrite: bool = False) -> None:
    """Writes `data` to `path` atomically, in `path`'s folder, never through a symlink.

    Args:
      path: the output file.
      data: its content.
      overwrite: replace an existing entry at `path` (the entry itself: a symlink is replaced, its target
        is left alone). Without it any existing entry, a dangling symlink included, is refused.

    Raises:
      FileExistsError: if `path` exists and `overwrite` is False.
      OSError: if writing fails (disk full, read-only folder, ...); no file is left behind, neither the
        output nor the temporary one.
    """
    folder = os.path.dirname(path) or "."
    # A name of fixed length (not derived from the output's): it fits NAME_MAX for any output name.
    fd, temporary = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp's 0600 -> the usual mode of a new file
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(temporary, path)  # rename replaces the directory entry, not a symlink's target
        else:
            os.link(temporary, path)  # fails on any existing entry, dangling symlinks included
            os.unlink(temporary)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise

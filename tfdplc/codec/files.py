"""Reading and writing the codec's files safely: regular files only, bounded reads, atomic writes.

The command line (tools/codec.py) reads whatever a folder holds and writes into a folder someone else may
share, so both directions are guarded here:

* `read_regular` opens without blocking (a FIFO cannot hang it), refuses anything that is not a regular
  file after opening it (FIFOs, devices such as a symlink to /dev/zero, folders) and reads at most
  `limit + 1` bytes, so a file cannot make the reader use more memory than the format allows.
* `write_atomic` writes a temporary file in the output folder and renames it into place: the output is
  complete or absent (a full disk leaves no partial file), and a symlink at the output path is never
  followed: without `overwrite` any existing entry (a dangling symlink included) is refused, with
  `overwrite` the entry itself is replaced, never the file it points to.
"""

import errno
import os
import stat
import tempfile

__all__ = ["FileTooLargeError", "NotARegularFileError", "read_regular", "write_atomic"]


class NotARegularFileError(OSError):
    """The path is a FIFO, a device, a socket or a folder: only regular files are read."""


class FileTooLargeError(ValueError):
    """The file is larger than the format allows."""


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


def read_regular(path: str, limit: int) -> bytes:
    """Reads a regular file of at most `limit` bytes.

    Args:
      path: the file (a symlink to a regular file is read; to anything else it is refused).
      limit: the largest size the caller accepts.

    Returns:
      The file's bytes.

    Raises:
      NotARegularFileError: if `path` is not a regular file (nothing is read from it).
      FileTooLargeError: if it holds more than `limit` bytes (at most `limit + 1` are read).
      OSError: if it cannot be opened or read.
    """
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFileError(errno.EINVAL, f"{_kind(mode)}, not a regular file: skipped")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise FileTooLargeError(f"more than {limit} bytes: too large")
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
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
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

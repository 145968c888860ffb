"""The errors of the tfdplc container format: every way a compressed file can be refused.

All of them derive from `CodecError` (a `ValueError`), so `except tfdplc.codec.CodecError` catches every
refusal of a file, and each subclass names one cause:

| error                     | cause                                                                          |
|---------------------------|--------------------------------------------------------------------------------|
| `NotAContainerError`      | the data does not start with the magic bytes (not a tfdplc file at all)         |
| `UnsupportedVersionError` | a format version this reader does not know (or a damaged version byte)         |
| `TruncatedError`          | fewer bytes than the header (or its payload-length field) says there are       |
| `CorruptedError`          | checksum mismatch, trailing bytes, or a field value that cannot occur          |
| `ModelMismatchError`      | an intact file written by another model (its fingerprint is not this model's)  |
| `DamagedArchiveError`     | a `CorruptedError` of an archive; `intact` lists the entries that are intact    |

Bad *images* (wrong shape, dtype, empty) are not container errors: they raise `ValueError` / `TypeError`.
"""

__all__ = [
    "CodecError",
    "CorruptedError",
    "DamagedArchiveError",
    "ModelMismatchError",
    "NotAContainerError",
    "TruncatedError",
    "UnsupportedVersionError",
]


class CodecError(ValueError):
    """A compressed file (container) was refused; the subclass says why."""


class NotAContainerError(CodecError):
    """The data does not start with the tfdplc magic bytes."""


class UnsupportedVersionError(CodecError):
    """The container's format version is not one this reader supports."""


class TruncatedError(CodecError):
    """The container is shorter than its header says (or shorter than a header)."""


class CorruptedError(CodecError):
    """The container is damaged: checksum mismatch, trailing bytes or impossible field values."""


class ModelMismatchError(CodecError):
    """The container is intact but was written by another model (different fingerprint)."""


class DamagedArchiveError(CorruptedError):
    """An archive failed a check after its header; `intact` lists the entries found intact.

    Range-coded archives protect every entry with its own checksum, so the entries before and around a
    damage can be named (and extracted); a packed archive has one checksum for all its bits, so `intact`
    is empty when it fails.
    """

    def __init__(self, message: str, intact=()):
        super().__init__(message)
        self.intact = tuple(intact)

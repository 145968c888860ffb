"""The tfdplc container: one compressed image as bytes (format versions 3, 2 and 1), written and read in Python.

None of the papers' reference code writes a bitstream; this is the file format of this package. One file
holds one image (`tfdplc.codec.archive` holds many). Writers write version 3; readers read all three and
dispatch on the first bytes: `b"D"` then the version byte 3 or 2, or `b"DPLC"` then the version byte 1.

Versions 3 and 2 (compact: everything the model determines is left out of the file and checked against
it) have the same layout and differ only in the check value:

| offset | size | field                                                                                   |
|-------:|-----:|-----------------------------------------------------------------------------------------|
|      0 |    1 | magic `b"D"`                                                                            |
|      1 |    1 | format version, 3 (or 2)                                                                |
|      2 |    2 | model tag: the first 2 bytes of the model fingerprint (`tfdplc.codec.fingerprint`)      |
|      4 |    s | seed, an unsigned LEB128 varint of at most 4 bytes, minimal: [0, 2^28). Present only    |
|        |      | when the model's decoder draws noise or its encoder uses a shared dither (s = 0 else)    |
|    4+s |    n | payload: packed code (n = ceil(h*w*k*b / 8) from the model) or range-coded string (the  |
|        |      | rest of the file)                                                                       |
|  4+s+n |    4 | check value of bytes [0, 4 + s + n) keyed by the model's whole 8-byte fingerprint:      |
|        |      | version 3: `checkvalue.check32` (KMX-32); version 2: Adler-32 of the fingerprint        |
|        |      | followed by the bytes (`keyed_adler32`)                                                 |

Why version 3: version 2's keyed Adler-32 lets a file of another model with the same 2-byte tag pass
with probability about 1.3e-6 (the fingerprint only sets Adler's two 16-bit sums); version 3's check
mixes the whole fingerprint into every word, so such a file passes with probability about 2^-32
(`tfdplc.codec.checkvalue`; measured in results/codec/check_value.json). Version 2 files stay readable
(with their weaker check); nothing writes them but `Layout.write(..., version=2)` for tests and tools.

The image and code shapes, L, b, the payload kind and the flags are the model's (its fingerprint hashes
its spec), so they are not stored; the payload length is the file's. Overhead: 8 bytes plus the seed
(1 byte for seeds < 128, 4 bytes for seeds >= 2^21): at most 12 bytes. A file is only fully checked with
its model (`Layout.read`); without it `peek` reads the version and the tag.

Version 1 (read only; `pack` still writes it for tests and tools that need the old form).
All integers are big-endian and unsigned:

| offset | size | field                                                                                   |
|-------:|-----:|-----------------------------------------------------------------------------------------|
|      0 |    4 | magic `b"DPLC"`                                                                        |
|      4 |    1 | format version, 1                                                                       |
|      5 |    1 | payload kind: 0 = packed fixed-rate indices, 1 = tfc range-coded string                |
|      6 |    1 | flags: bit 0 = the decoder is stochastic (draws noise from the seed), bit 1 = the       |
|        |      | encoder uses the seed (shared dither; the seed must not be changed); other bits 0       |
|      7 |    1 | bits per packed symbol b = ceil(log2 L) (kind 0), 0 (kind 1)                            |
|      8 |    8 | model fingerprint (`tfdplc.codec.fingerprint`)                                          |
|     16 |   12 | image shape H, W, C and code shape h, w, k (six uint16)                                 |
|     28 |    4 | L, the number of symbols of a fixed-rate code (kind 0), 0 (kind 1)                      |
|     32 |    8 | seed of the shared randomness, < 2^63 (0 when the model uses none)                      |
|     40 |    4 | payload length n in bytes                                                               |
|     44 |    n | payload                                                                                 |
|   44+n |    4 | Adler-32 (RFC 1950, as `zlib.adler32`) of bytes [0, 44 + n)                             |

Payloads:
  * kind 0: the h*w*k code indices in row-major (h, w, k) order, each as b bits, most significant bit
    first, concatenated and zero-padded to whole bytes (`tfdplc.codec.bitpack`): n = ceil(h*w*k*b / 8).
  * kind 1: the string `tfdplc.layers.EntropyBottleneck.compress` writes for one (h, w, k) code.

Every check value is computed in the exported TensorFlow graphs as well, with core ops only and without
a loop (see `tfdplc.codec.graph`). Adler-32 (versions 1 and 2) detects every change of one or two bytes
below 65,521 bytes; KMX-32 (version 3) every change inside one aligned 4-byte word, and other changes
with probability 1 - 2^-32; the length field (version 1), the model's packed size and the length's place
in the check catch truncations.

Reading a version 1 file checks, in this order, and raises the first failure (`tfdplc.codec.errors`): the
magic (`NotAContainerError`), the size of the header (`TruncatedError`), the version
(`UnsupportedVersionError`), the payload length against the data (`TruncatedError` if shorter,
`CorruptedError` for trailing bytes), the checksum (`CorruptedError`), field values that cannot occur
(`CorruptedError`); then, against a model's `Layout`: the fingerprint (`ModelMismatchError`), the other
header fields and the payload's form (`CorruptedError`).

Reading a version 3 or 2 file (`Layout.read`) checks: the magic and version as above, the 8-byte minimum
(`TruncatedError`), the model tag (`ModelMismatchError`; a damaged tag byte reads as another model's
file), the seed varint running past the data (`TruncatedError`) or longer than 4 bytes
(`CorruptedError`), the size a packed code implies (`TruncatedError` if shorter, `CorruptedError` for
trailing bytes), the check value (`CorruptedError`), a non-minimal seed varint (`CorruptedError`), then
the packed payload's form (`CorruptedError`: an index >= L, non-zero padding bits). A truncated
range-coded file fails the check value (`CorruptedError`): its length is the file's. Input longer than
the model's largest container (`Layout.max_size`) is refused before it is parsed (`too_long_error`):
`CorruptedError` when it starts like a container, `NotAContainerError` otherwise (an archive is named).
"""

import dataclasses
import math
import struct
import zlib
from typing import Optional, Tuple

import numpy as np

from tfdplc.codec.checkvalue import check32
from tfdplc.codec.errors import (
    CorruptedError,
    ModelMismatchError,
    NotAContainerError,
    TruncatedError,
    UnsupportedVersionError,
)

__all__ = [
    "CHECKSUM_SIZE",
    "MAX_SEED_V2",
    "MIN_SIZE_V2",
    "OVERHEAD_V2_MAX",
    "TAG_SIZE",
    "VERSION_1",
    "VERSION_2",
    "COMPACT_VERSIONS",
    "Peek",
    "check_value",
    "keyed_adler32",
    "too_long_error",
    "unpack_stream",
    "decode_varint",
    "encode_varint",
    "peek",
    "FINGERPRINT_SIZE",
    "FLAG_SEEDED_ENCODER",
    "FLAG_STOCHASTIC_DECODER",
    "HEADER_SIZE",
    "Header",
    "Layout",
    "MAGIC",
    "MAX_SEED",
    "OVERHEAD",
    "PAYLOAD_PACKED",
    "PAYLOAD_RANGE_CODED",
    "VERSION",
    "bits_per_symbol",
    "pack",
    "unpack",
]

MAGIC = b"DPLC"  # version 1
MAGIC_BYTE = b"D"  # every tfdplc file starts with it; versions 2 and 3: b"D" + the version byte
VERSION = 3  # what writers write
VERSION_2 = 2  # read, and written only on request (its check value is the weaker keyed Adler-32)
VERSION_1 = 1
#: The versions with the compact layout (b"D" + version byte), which differ only in their check value.
COMPACT_VERSIONS = (VERSION_2, VERSION)
ARCHIVE_MARK = ord("A")  # b"DA": an archive (`tfdplc.codec.archive`), not a single file
TAG_SIZE = 2
#: Version 2 seeds: LEB128 varints of at most 4 bytes, so [0, 2^28).
MAX_SEED_V2 = 2**28 - 1
MAX_VARINT_BYTES = 4
MIN_SIZE_V2 = 2 + TAG_SIZE + 4  # magic, version, tag, checksum: no seed, empty payload
OVERHEAD_V2_MAX = MIN_SIZE_V2 + MAX_VARINT_BYTES  # 12
PAYLOAD_PACKED = 0
PAYLOAD_RANGE_CODED = 1
FLAG_STOCHASTIC_DECODER = 1
FLAG_SEEDED_ENCODER = 2
_KNOWN_FLAGS = FLAG_STOCHASTIC_DECODER | FLAG_SEEDED_ENCODER
FINGERPRINT_SIZE = 8
#: Version 1 seeds are stored in 8 bytes but must fit a non-negative int64 (TensorFlow's stateless seeds).
MAX_SEED = 2**63 - 1
_MAX_UINT16 = 2**16 - 1

# Fields before the seed: magic, version, kind, flags, bits, fingerprint, H W C h w k, L.
_PREFIX = struct.Struct(">4sBBBB8s6HI")
PREFIX_SIZE = _PREFIX.size  # 32
_SEED_AND_LENGTH = struct.Struct(">QI")
HEADER_SIZE = PREFIX_SIZE + _SEED_AND_LENGTH.size  # 44
CHECKSUM_SIZE = 4
OVERHEAD = HEADER_SIZE + CHECKSUM_SIZE  # 48 (version 1)


def encode_varint(value: int) -> bytes:
    """The minimal unsigned LEB128 encoding of `value` in [0, 2^28): 7 bits a byte, least significant first.

    Raises:
      ValueError: if `value` is outside [0, 2^28).
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED_V2:
        raise ValueError(f"a varint of this format holds [0, 2^28), got {value!r}.")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _varint(data: bytes, offset: int, what: str) -> Tuple[int, int, bool]:
    """`(value, bytes used, minimal)` of the LEB128 varint at `offset`; raises on truncation or > 4 bytes."""
    value = 0
    for index in range(MAX_VARINT_BYTES):
        if offset + index >= len(data):
            raise TruncatedError(f"truncated: the data ends inside the {what} varint.")
        byte = data[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, index + 1, not (index and byte == 0)
    raise CorruptedError(f"the {what} varint is longer than {MAX_VARINT_BYTES} bytes.")


def decode_varint(data: bytes, offset: int, what: str = "seed") -> Tuple[int, int]:
    """Reads a minimal LEB128 varint of at most 4 bytes at `offset`: `(value, bytes used)`.

    Raises:
      TruncatedError: if the data ends inside the varint.
      CorruptedError: if it is longer than 4 bytes or not minimal (a last byte 0 after others).
    """
    value, used, minimal = _varint(data, offset, what)
    if not minimal:
        raise CorruptedError(f"the {what} varint is not minimal (a trailing zero byte).")
    return value, used


@dataclasses.dataclass(frozen=True)
class Peek:
    """What a file says about itself without its model.

    Attributes:
      version: 1 or 2.
      tag: the model fingerprint (version 1: all 8 bytes) or its first 2 bytes (versions 2 and 3).
      header: the full header (version 1, checked as far as `unpack` checks), else None.
      payload: the payload (version 1), else None (version 2 and 3 payloads need the model to be located).
    """

    version: int
    tag: bytes
    header: Optional["Header"] = None
    payload: Optional[bytes] = None


def _version_of(data: bytes) -> int:
    """The format version a file announces, after the magic checks shared by all versions.

    Raises:
      TruncatedError, NotAContainerError, UnsupportedVersionError.
    """
    size = len(data)
    if size == 0:
        raise TruncatedError("empty input (0 bytes): a tfdplc container has at least 8 bytes.")
    if data[:1] != MAGIC_BYTE:
        raise NotAContainerError(
            f"not a tfdplc container: it starts with {data[:4]!r}, containers start with {MAGIC_BYTE!r}."
        )
    if size == 1:
        raise TruncatedError("truncated: 1 byte, a tfdplc container has at least 8 bytes.")
    mark = data[1]
    if mark == MAGIC[1]:  # "DP...": version 1's 4-byte magic, then its version byte
        if data[: len(MAGIC)] != MAGIC[: min(size, len(MAGIC))]:
            raise NotAContainerError(
                f"not a tfdplc container: it starts with {data[:4]!r}, containers start with {MAGIC!r} "
                f"(version 1) or {MAGIC_BYTE!r} and a version byte."
            )
        if size < OVERHEAD:
            raise TruncatedError(f"truncated: {size} bytes, a version 1 container has at least {OVERHEAD}.")
        if data[4] != VERSION_1:
            raise UnsupportedVersionError(
                f"format version {data[4]} in a version 1 header (this reader supports versions 1, 2 and 3; "
                "a damaged file can also show a wrong version)."
            )
        return VERSION_1
    if mark == ARCHIVE_MARK:
        raise NotAContainerError("a tfdplc archive (.dplca), not a single-image container: extract it.")
    if mark >= 0x20:  # a printable character: some other file that starts with "D"
        raise NotAContainerError(
            f"not a tfdplc container: it starts with {data[:4]!r}, containers start with {MAGIC_BYTE!r} and "
            "a version byte."
        )
    if size < MIN_SIZE_V2:
        raise TruncatedError(f"truncated: {size} bytes, a tfdplc container has at least {MIN_SIZE_V2}.")
    if mark not in COMPACT_VERSIONS:
        raise UnsupportedVersionError(
            f"format version {mark} (this reader supports versions 1, 2 and 3; a damaged file can also show "
            "a wrong version)."
        )
    return mark


def peek(data: bytes) -> Peek:
    """Reads what a file says without its model: version 1 fully (`unpack`), versions 2 and 3 their tag.

    Raises:
      TypeError: if `data` is not bytes-like.
      CodecError: the subclass of the first failed check.
    """
    data = _bytes(data)
    version = _version_of(data)
    if version == VERSION_1:
        header, payload = unpack(data)
        return Peek(version=version, tag=header.fingerprint, header=header, payload=payload)
    if len(data) < MIN_SIZE_V2:
        raise TruncatedError(
            f"truncated: {len(data)} bytes, a version {version} container has at least {MIN_SIZE_V2}."
        )
    return Peek(version=version, tag=bytes(data[2 : 2 + TAG_SIZE]))


def _bytes(data) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a container must be bytes, got {type(data).__name__}.")
    return bytes(data)


def keyed_adler32(fingerprint: bytes, data: bytes) -> int:
    """Adler-32 of the 8-byte fingerprint followed by `data`: version 2's integrity check."""
    return zlib.adler32(data, zlib.adler32(fingerprint))


def check_value(version: int, fingerprint: bytes, data: bytes) -> int:
    """The check value of a version 3 (`checkvalue.check32`) or version 2 (`keyed_adler32`) file or archive.

    Raises:
      ValueError: for another version.
    """
    if version == VERSION:
        return check32(fingerprint, data)
    if version == VERSION_2:
        return keyed_adler32(fingerprint, data)
    raise ValueError(f"no keyed check value in format version {version}.")


def too_long_error(head: bytes, size: int, bound: int, what: str = "this model's containers"):
    """The error for input of `size` > `bound` bytes that starts with `head`, decided from its first bytes.

    A file that starts like a container (version 1, 2 or 3) is a `CorruptedError` (too long); an archive
    is named as such, anything else is a `NotAContainerError`.
    """
    head = bytes(head[:5])
    if head[:2] == MAGIC_BYTE + bytes([ARCHIVE_MARK]):
        return NotAContainerError("a tfdplc archive (.dplca), not a single-image container: extract it.")
    looks_compact = head[:1] == MAGIC_BYTE and len(head) > 1 and head[1] in COMPACT_VERSIONS
    if not (head[: len(MAGIC)] == MAGIC or looks_compact):
        return NotAContainerError(
            f"not a tfdplc container: it starts with {head[:4]!r}, containers start with {MAGIC!r} "
            f"(version 1) or {MAGIC_BYTE!r} and a version byte."
        )
    return CorruptedError(f"{size} bytes: too long, {what} have at most {bound} bytes.")


def bits_per_symbol(levels: int) -> int:
    """The bits b = ceil(log2 L) of one packed index of an L-symbol code (L >= 2)."""
    return max(1, math.ceil(math.log2(levels)))


@dataclasses.dataclass(frozen=True)
class Header:
    """The header fields of one container (everything but the payload and the checksum)."""

    payload_kind: int
    flags: int
    bits_per_symbol: int
    fingerprint: bytes
    image_shape: Tuple[int, int, int]
    code_shape: Tuple[int, int, int]
    levels: int
    seed: int

    @property
    def stochastic_decoder(self) -> bool:
        """Whether the decoder draws noise from the seed."""
        return bool(self.flags & FLAG_STOCHASTIC_DECODER)

    @property
    def seeded_encoder(self) -> bool:
        """Whether the encoder used the seed (shared dither): decoding must use the same seed."""
        return bool(self.flags & FLAG_SEEDED_ENCODER)


@dataclasses.dataclass(frozen=True)
class Layout:
    """What every container of one model has in common: all header fields but the seed.

    Built by the exporter from the model's `CodecSpec` and fingerprint, stored with the export, and used
    on both sides: `prefix()` is the constant first 32 bytes every container of the model starts with.
    """

    fingerprint: bytes
    image_shape: Tuple[int, int, int]
    code_shape: Tuple[int, int, int]
    levels: Optional[int]  # None: range-coded payload.
    stochastic_decoder: bool = False
    seeded_encoder: bool = False

    def __post_init__(self):
        if not isinstance(self.fingerprint, bytes) or len(self.fingerprint) != FINGERPRINT_SIZE:
            raise ValueError(
                f"Layout: fingerprint must be {FINGERPRINT_SIZE} bytes, got {self.fingerprint!r}."
            )
        for name, shape, minimum in (
            ("image_shape", self.image_shape, 1),
            ("code_shape", self.code_shape, 0),
        ):
            if len(shape) != 3 or not all(isinstance(d, int) and minimum <= d <= _MAX_UINT16 for d in shape):
                raise ValueError(
                    f"Layout: {name} must be three ints in [{minimum}, {_MAX_UINT16}], got {shape!r}."
                )
        if min(self.code_shape[:2]) < 1:
            raise ValueError(f"Layout: the code's h and w must be >= 1, got {self.code_shape!r}.")
        if self.levels is not None and not (isinstance(self.levels, int) and 2 <= self.levels < 2**31):
            raise ValueError(f"Layout: levels must be None or an int in [2, 2^31), got {self.levels!r}.")

    @property
    def payload_kind(self) -> int:
        """`PAYLOAD_PACKED` for fixed-rate codes, `PAYLOAD_RANGE_CODED` otherwise."""
        return PAYLOAD_RANGE_CODED if self.levels is None else PAYLOAD_PACKED

    @property
    def bits_per_symbol(self) -> int:
        """The bits per symbol, b = ceil(log2 L), for packed codes, 0 for range-coded ones."""
        return 0 if self.levels is None else bits_per_symbol(self.levels)

    @property
    def flags(self) -> int:
        """The flags byte."""
        return (FLAG_STOCHASTIC_DECODER if self.stochastic_decoder else 0) | (
            FLAG_SEEDED_ENCODER if self.seeded_encoder else 0
        )

    @property
    def num_symbols(self) -> int:
        """The code elements of one image, h * w * k."""
        return int(np.prod(self.code_shape))

    @property
    def packed_size(self) -> Optional[int]:
        """The payload bytes of a packed code, ceil(h*w*k*b / 8); None for range-coded payloads."""
        if self.levels is None:
            return None
        return -(-self.num_symbols * self.bits_per_symbol // 8)

    @property
    def uses_seed(self) -> bool:
        """Whether the decoder needs the seed (stochastic decoder or shared dither): versions 2 and 3 store it."""
        return self.stochastic_decoder or self.seeded_encoder

    @property
    def tag(self) -> bytes:
        """The model tag of version 2 and 3 files: the fingerprint's first 2 bytes."""
        return self.fingerprint[:TAG_SIZE]

    @property
    def max_payload(self) -> int:
        """The largest payload: exact for packed codes, a bound for range coding.

        A range-coded element costs at most a few bytes even for values far in the prior's tails (tfc
        codes overflows with an Elias-gamma escape); 16 bytes per element plus 1 KiB bound it.
        """
        if self.levels is not None:
            return self.packed_size
        return 16 * self.num_symbols + 1024

    @property
    def max_size(self) -> int:
        """The largest container of this model in bytes, of either version (version 1 is the larger).

        Readers refuse longer input before looking at it (the exported graphs before decoding any byte).
        """
        return OVERHEAD + self.max_payload

    @property
    def v2_overhead(self) -> int:
        """The largest version 2 / 3 overhead of this model: 8 bytes, plus up to 4 for the seed."""
        return MIN_SIZE_V2 + (MAX_VARINT_BYTES if self.uses_seed else 0)

    def write(self, seed: int, payload: bytes, version: int = VERSION) -> bytes:
        """Writes one version 3 (or, on request, version 2) container of this model.

        Args:
          seed: the seed, in [0, 2^28) (not stored when the model uses none: it must then be 0).
          payload: the packed code (exactly `packed_size` bytes) or the range-coded string.
          version: 3 (what writers write) or 2 (the same layout with the older check value; for tests
            and tools that need the old form).

        Raises:
          ValueError: if the seed is out of range, or non-zero for a model that uses none, a packed
            payload has the wrong length, or `version` is not 2 or 3.
          TypeError: if `payload` is not bytes.
        """
        if version not in COMPACT_VERSIONS:
            raise ValueError(f"Layout.write writes format versions 2 and 3, not {version!r}.")
        if not isinstance(payload, (bytes, bytearray)):
            raise TypeError(f"payload must be bytes, got {type(payload).__name__}.")
        if self.levels is not None and len(payload) != self.packed_size:
            raise ValueError(
                f"packed payload of {len(payload)} bytes, the model's codes take {self.packed_size}."
            )
        if self.uses_seed:
            seed_bytes = encode_varint(seed)
        elif seed != 0:
            raise ValueError(f"seed {seed}: this model uses no seed (its files store none), pass 0.")
        else:
            seed_bytes = b""
        body = MAGIC_BYTE + bytes([version]) + self.tag + seed_bytes + bytes(payload)
        return body + struct.pack(">I", check_value(version, self.fingerprint, body))

    def read(self, data: bytes) -> Tuple[int, bytes, int]:
        """Reads and checks one container of either version against this model.

        Returns:
          `(seed, payload, version)`.

        Raises:
          TypeError: if `data` is not bytes-like.
          CodecError: the subclass of the first failed check (see the module docstring).
        """
        data = _bytes(data)
        version = _version_of(data)
        if version == VERSION_1:
            header, payload = unpack(data)
            self.check(header, payload)
            return header.seed, payload, VERSION_1
        size = len(data)
        if size < MIN_SIZE_V2:
            raise TruncatedError(
                f"truncated: {size} bytes, a version {version} container has at least {MIN_SIZE_V2}."
            )
        tag = data[2 : 2 + TAG_SIZE]
        if tag != self.tag:
            raise ModelMismatchError(
                f"the file was written by another model (tag {tag.hex()}, this model's is {self.tag.hex()}): "
                "decompress it with the model that compressed it."
            )
        body = data[:-CHECKSUM_SIZE]
        start, seed, minimal = 2 + TAG_SIZE, 0, True
        if self.uses_seed:
            seed, used, minimal = _varint(body, start, "seed")
            start += used
        if self.levels is not None:
            expected = start + self.packed_size + CHECKSUM_SIZE
            if size < expected:
                raise TruncatedError(
                    f"truncated: {size} bytes, this model's file with this seed has {expected}."
                )
            if size > expected:
                raise CorruptedError(
                    f"{size - expected} trailing bytes after the {expected} of this model's file."
                )
        (stored,) = struct.unpack(">I", data[-CHECKSUM_SIZE:])
        actual = check_value(version, self.fingerprint, body)
        if stored != actual:
            raise CorruptedError(
                f"checksum mismatch (stored {stored:08x}, computed {actual:08x}; or a file of another model "
                "with the same tag)."
            )
        if not minimal:
            raise CorruptedError("impossible header values: the seed varint is not minimal.")
        payload = body[start:]
        if self.levels is not None:
            from tfdplc.codec.bitpack import unpack_numpy  # deferred: bitpack imports TensorFlow

            unpack_numpy(
                payload, self.num_symbols, self.bits_per_symbol, self.levels
            )  # raises CorruptedError
        return seed, payload, version

    def prefix(self) -> bytes:
        """The first 32 bytes of every version 1 container of this model (magic to L)."""
        return _PREFIX.pack(
            MAGIC,
            VERSION_1,
            self.payload_kind,
            self.flags,
            self.bits_per_symbol,
            self.fingerprint,
            *self.image_shape,
            *self.code_shape,
            self.levels or 0,
        )

    def header(self, seed: int) -> Header:
        """The version 1 header of this model's container with the given seed."""
        return Header(
            payload_kind=self.payload_kind,
            flags=self.flags,
            bits_per_symbol=self.bits_per_symbol,
            fingerprint=self.fingerprint,
            image_shape=tuple(self.image_shape),
            code_shape=tuple(self.code_shape),
            levels=self.levels or 0,
            seed=seed,
        )

    def check(self, header: Header, payload: bytes) -> None:
        """Checks an intact version 1 container (from `unpack`) against this model.

        Raises:
          ModelMismatchError: if the fingerprint is another model's.
          CorruptedError: if another header field differs from this model's although the fingerprint
            matches, or the payload is not a valid packed code (wrong length, an index >= L, non-zero
            padding bits).
        """
        if header.fingerprint != self.fingerprint:
            raise ModelMismatchError(
                f"the file was written by another model (fingerprint {header.fingerprint.hex()}, this "
                f"model is {self.fingerprint.hex()}): decompress it with the model that compressed it."
            )
        expected = self.header(header.seed)
        if header != expected:
            fields = [
                f.name
                for f in dataclasses.fields(Header)
                if getattr(header, f.name) != getattr(expected, f.name)
            ]
            raise CorruptedError(
                f"header fields {fields} do not match the model although its fingerprint does: "
                f"{header} vs. {expected}."
            )
        if self.levels is None:
            return
        if len(payload) != self.packed_size:
            raise CorruptedError(
                f"packed payload of {len(payload)} bytes, the model's codes take {self.packed_size}."
            )
        # Deferred import: bitpack imports TensorFlow, this module does not need it otherwise.
        from tfdplc.codec.bitpack import unpack_numpy

        unpack_numpy(payload, self.num_symbols, self.bits_per_symbol, self.levels)  # raises CorruptedError


def pack(header: Header, payload: bytes) -> bytes:
    """Writes one version 1 container (writers use version 3, `Layout.write`; this is for tests and tools).

    Args:
      header: the header fields.
      payload: the payload bytes (packed code or range-coded string).

    Returns:
      The container bytes.

    Raises:
      ValueError: if a field is out of range (a seed >= 2^63, a shape dimension > 65535, ...).
      TypeError: if `payload` is not bytes.
    """
    if not isinstance(payload, (bytes, bytearray)):
        raise TypeError(f"payload must be bytes, got {type(payload).__name__}.")
    if not 0 <= header.seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2^63), got {header.seed}.")
    if len(payload) >= 2**32:
        raise ValueError(f"payload of {len(payload)} bytes does not fit the 32-bit length field.")
    if len(header.fingerprint) != FINGERPRINT_SIZE:
        raise ValueError(f"fingerprint must be {FINGERPRINT_SIZE} bytes, got {len(header.fingerprint)}.")
    try:
        prefix = _PREFIX.pack(
            MAGIC,
            VERSION_1,
            header.payload_kind,
            header.flags,
            header.bits_per_symbol,
            header.fingerprint,
            *header.image_shape,
            *header.code_shape,
            header.levels,
        )
    except struct.error as error:
        raise ValueError(f"header field out of range: {error} ({header}).") from error
    body = prefix + _SEED_AND_LENGTH.pack(header.seed, len(payload)) + bytes(payload)
    return body + struct.pack(">I", zlib.adler32(body))


def unpack(data: bytes) -> Tuple[Header, bytes]:
    """Reads one version 1 container and checks everything that does not need the model.

    Args:
      data: the container bytes.

    Returns:
      `(header, payload)`.

    Raises:
      TypeError: if `data` is not bytes.
      NotAContainerError, TruncatedError, UnsupportedVersionError, CorruptedError: see the module docstring.
    """
    data = _bytes(data)
    size = len(data)
    if size == 0:
        raise TruncatedError(f"empty input (0 bytes): a tfdplc container has at least {OVERHEAD} bytes.")
    if size > 1 and data[:1] == MAGIC_BYTE and data[1] in COMPACT_VERSIONS:
        raise UnsupportedVersionError(
            f"a version {data[1]} container: `unpack` reads version 1 only; read it with its model "
            "(`Layout.read`) or `peek`."
        )
    if data[: len(MAGIC)] != MAGIC[: min(size, len(MAGIC))]:
        raise NotAContainerError(
            f"not a tfdplc container: it starts with {data[:4]!r}, containers start with {MAGIC!r}."
        )
    if size < OVERHEAD:
        raise TruncatedError(f"truncated: {size} bytes, a tfdplc container has at least {OVERHEAD}.")
    header, length = _version_1_header(data, size)
    body = data[: HEADER_SIZE + length]
    (stored,) = struct.unpack_from(">I", data, HEADER_SIZE + length)
    actual = zlib.adler32(body)
    if stored != actual:
        raise CorruptedError(f"checksum mismatch (stored {stored:08x}, computed {actual:08x}).")
    _check_fields(header)
    return header, body[HEADER_SIZE:]


def _version_1_header(head: bytes, size: int) -> Tuple[Header, int]:
    """The header of a version 1 container of `size` bytes and its payload length, from its first bytes.

    Checks the version and the announced size; the caller checks the checksum, then `_check_fields`.

    Raises:
      UnsupportedVersionError, TruncatedError, CorruptedError: see the module docstring.
    """
    version = head[4]
    if version != VERSION_1:
        raise UnsupportedVersionError(
            f"format version {version} in a version 1 header (this reader supports versions 1, 2 and 3; a "
            "damaged file can also show a wrong version)."
        )
    fields = _PREFIX.unpack_from(head)
    seed, length = _SEED_AND_LENGTH.unpack_from(head, PREFIX_SIZE)
    expected_size = OVERHEAD + length
    if size < expected_size:
        raise TruncatedError(f"truncated: {size} bytes, the header announces {expected_size}.")
    if size > expected_size:
        raise CorruptedError(f"{size - expected_size} trailing bytes after the announced {expected_size}.")
    _, _, kind, flags, bits, fingerprint, height, width, channels, h, w, k, levels = fields
    header = Header(
        payload_kind=kind,
        flags=flags,
        bits_per_symbol=bits,
        fingerprint=fingerprint,
        image_shape=(height, width, channels),
        code_shape=(h, w, k),
        levels=levels,
        seed=seed,
    )
    return header, length


#: The chunk `unpack_stream` reads at a time (a multiple of every packed symbol width's byte period).
STREAM_CHUNK = 1 << 20


def unpack_stream(stream, size: int, payload_check=None) -> Tuple[Header, int]:
    """Checks a version 1 container read from a file object in chunks: what `unpack` checks, in its order.

    At most one chunk (1 MiB) of the file is held at a time, so a file that announces a huge payload costs
    the time to read it, not memory (`tools/codec.py info` without a model reads files of any size the
    format allows this way).

    Args:
      stream: a binary file object positioned at the file's start (`read(n)` returns at most n bytes).
      size: the file's size in bytes (from `fstat`); a file that is longer or shorter than this when
        read is refused (it changed while it was read).
      payload_check: optional `f(header, payload length) -> consumer or None`, where a consumer has
        `update(chunk)` and `close()` (raising `CorruptedError`): it receives the payload in order; called
        only when the header's fields are possible, and its verdict is raised after the checksum's (as
        `Layout.check` does).

    Returns:
      `(header, payload length)`.

    Raises:
      NotAContainerError, TruncatedError, UnsupportedVersionError, CorruptedError: as `unpack`.
    """
    if size <= STREAM_CHUNK:  # small: read whole, the same code as `unpack`
        data = _read_exactly(stream, size)
        if stream.read(1):
            raise CorruptedError("the file grew while it was read.")
        header, payload = unpack(data)
        consumer = None if payload_check is None else payload_check(header, len(payload))
        if consumer is not None:
            consumer.update(payload)
            consumer.close()
        return header, len(payload)
    head = _read_exactly(stream, HEADER_SIZE)
    if head[: len(MAGIC)] != MAGIC:
        unpack(head)  # raises the magic's error (or names a version 2 / 3 file)
    header, length = _version_1_header(head, size)
    try:
        _check_fields(header)
        field_error = None
    except CorruptedError as error:
        field_error = error
    consumer = payload_check(header, length) if payload_check is not None and field_error is None else None
    checksum, remaining, payload_error = zlib.adler32(head), length, None
    while remaining:
        chunk = _read_exactly(stream, min(remaining, STREAM_CHUNK))
        checksum = zlib.adler32(chunk, checksum)
        remaining -= len(chunk)
        if consumer is not None and payload_error is None:
            try:
                consumer.update(chunk)
            except CorruptedError as error:
                payload_error = error
    (stored,) = struct.unpack(">I", _read_exactly(stream, CHECKSUM_SIZE))
    if stream.read(1):
        raise CorruptedError("the file grew while it was read.")
    if stored != checksum:
        raise CorruptedError(f"checksum mismatch (stored {stored:08x}, computed {checksum:08x}).")
    if field_error is not None:
        raise field_error
    if consumer is not None:
        if payload_error is not None:
            raise payload_error
        consumer.close()
    return header, length


def _read_exactly(stream, count: int) -> bytes:
    """`count` bytes from `stream`; TruncatedError if it ends first (the file shrank while it was read)."""
    data = stream.read(count)
    while len(data) < count:
        more = stream.read(count - len(data))
        if not more:
            raise TruncatedError("truncated: the file ended before its announced size (it changed).")
        data += more
    return data


def _check_fields(header: Header) -> None:
    """Raises CorruptedError on field values no writer produces (the checksum was intact)."""
    problems = []
    if header.payload_kind not in (PAYLOAD_PACKED, PAYLOAD_RANGE_CODED):
        problems.append(f"unknown payload kind {header.payload_kind}")
    if header.flags & ~_KNOWN_FLAGS:
        problems.append(f"unknown flags {header.flags:#04x}")
    if header.payload_kind == PAYLOAD_PACKED and (
        header.levels < 2 or header.bits_per_symbol != bits_per_symbol(header.levels)
    ):
        problems.append(f"packed code with L={header.levels}, b={header.bits_per_symbol}")
    if header.payload_kind == PAYLOAD_RANGE_CODED and (header.levels or header.bits_per_symbol):
        problems.append("range-coded payload with a non-zero L or b")
    if header.seed > MAX_SEED:
        problems.append(f"seed {header.seed} >= 2^63")
    if min(header.image_shape) < 1 or min(header.code_shape[:2]) < 1:
        problems.append(f"zero image/code size {header.image_shape}, {header.code_shape}")
    if problems:
        raise CorruptedError("impossible header values: " + "; ".join(problems) + ".")

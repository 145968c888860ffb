"""The tfdplc container: one compressed image as bytes (format version 1), written and read in Python.

None of the papers' reference code writes a bitstream; this is the file format of this package. One file
holds one image. All integers are big-endian and unsigned:

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

The checksum is Adler-32 because it is computed in the exported TensorFlow graphs as well, with core ops
only and without a loop (see `tfdplc.codec.graph`). Below 65,521 bytes it detects every change of one or
two bytes; the length field and the fixed header catch truncations.

Reading checks, in this order, and raises the first failure (`tfdplc.codec.errors`): the magic
(`NotAContainerError`), the size of the header (`TruncatedError`), the version (`UnsupportedVersionError`),
the payload length against the data (`TruncatedError` if shorter, `CorruptedError` for trailing bytes), the
checksum (`CorruptedError`), field values that cannot occur (`CorruptedError`); then, against a model's
`Layout`: the fingerprint (`ModelMismatchError`), the other header fields and the payload's form
(`CorruptedError`).
"""

import dataclasses
import math
import struct
import zlib
from typing import Optional, Tuple

import numpy as np

from tfdplc.codec.errors import (
    CorruptedError,
    ModelMismatchError,
    NotAContainerError,
    TruncatedError,
    UnsupportedVersionError,
)

__all__ = [
    "CHECKSUM_SIZE",
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

MAGIC = b"DPLC"
VERSION = 1
PAYLOAD_PACKED = 0
PAYLOAD_RANGE_CODED = 1
FLAG_STOCHASTIC_DECODER = 1
FLAG_SEEDED_ENCODER = 2
_KNOWN_FLAGS = FLAG_STOCHASTIC_DECODER | FLAG_SEEDED_ENCODER
FINGERPRINT_SIZE = 8
#: Seeds are stored in 8 bytes but must fit a non-negative int64 (TensorFlow's stateless seeds).
MAX_SEED = 2**63 - 1
_MAX_UINT16 = 2**16 - 1

# Fields before the seed: magic, version, kind, flags, bits, fingerprint, H W C h w k, L.
_PREFIX = struct.Struct(">4sBBBB8s6HI")
PREFIX_SIZE = _PREFIX.size  # 32
_SEED_AND_LENGTH = struct.Struct(">QI")
HEADER_SIZE = PREFIX_SIZE + _SEED_AND_LENGTH.size  # 44
CHECKSUM_SIZE = 4
OVERHEAD = HEADER_SIZE + CHECKSUM_SIZE  # 48


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
    def max_size(self) -> int:
        """The largest container of this model in bytes: exact for packed codes, a bound for range coding.

        Readers refuse longer input before looking at it (the exported graphs before decoding any byte).
        A range-coded element costs at most a few bytes even for values far in the prior's tails (tfc
        codes overflows with an Elias-gamma escape); 16 bytes per element plus 1 KiB bound it.
        """
        if self.levels is not None:
            return OVERHEAD + self.packed_size
        return OVERHEAD + 16 * self.num_symbols + 1024

    def prefix(self) -> bytes:
        """The first 32 bytes of every container of this model (magic to L)."""
        return _PREFIX.pack(
            MAGIC,
            VERSION,
            self.payload_kind,
            self.flags,
            self.bits_per_symbol,
            self.fingerprint,
            *self.image_shape,
            *self.code_shape,
            self.levels or 0,
        )

    def header(self, seed: int) -> Header:
        """The header of this model's container with the given seed."""
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
        """Checks an intact container (from `unpack`) against this model.

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
    """Writes one container.

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
            VERSION,
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
    """Reads one container and checks everything that does not need the model.

    Args:
      data: the container bytes.

    Returns:
      `(header, payload)`.

    Raises:
      TypeError: if `data` is not bytes.
      NotAContainerError, TruncatedError, UnsupportedVersionError, CorruptedError: see the module docstring.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a container must be bytes, got {type(data).__name__}.")
    data = bytes(data)
    size = len(data)
    if size == 0:
        raise TruncatedError(f"empty input (0 bytes): a tfdplc container has at least {OVERHEAD} bytes.")
    if data[: len(MAGIC)] != MAGIC[: min(size, len(MAGIC))]:
        raise NotAContainerError(
            f"not a tfdplc container: it starts with {data[:4]!r}, containers start with {MAGIC!r}."
        )
    if size < OVERHEAD:
        raise TruncatedError(f"truncated: {size} bytes, a tfdplc container has at least {OVERHEAD}.")
    version = data[4]
    if version != VERSION:
        raise UnsupportedVersionError(
            f"format version {version} (this reader supports version {VERSION}; a damaged file can also "
            "show a wrong version)."
        )
    fields = _PREFIX.unpack_from(data)
    seed, length = _SEED_AND_LENGTH.unpack_from(data, PREFIX_SIZE)
    expected_size = OVERHEAD + length
    if size < expected_size:
        raise TruncatedError(f"truncated: {size} bytes, the header announces {expected_size}.")
    if size > expected_size:
        raise CorruptedError(f"{size - expected_size} trailing bytes after the announced {expected_size}.")
    body = data[: HEADER_SIZE + length]
    (stored,) = struct.unpack_from(">I", data, HEADER_SIZE + length)
    actual = zlib.adler32(body)
    if stored != actual:
        raise CorruptedError(f"checksum mismatch (stored {stored:08x}, computed {actual:08x}).")
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
    _check_fields(header)
    return header, body[HEADER_SIZE:]


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

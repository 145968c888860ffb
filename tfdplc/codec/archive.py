"""Archives: many images of one model in one file (format versions 3 and 2), written and read in Python.

One header for all images; fixed-rate codes are bit-packed back to back, so an archive of N images of
b bits each takes at most 12 + ceil(N b / 8) + 4 bytes (the header of at most 12 bytes, the codes, the
checksum). The layout (`.dplca` files):

| offset | size | field                                                                                    |
|-------:|-----:|------------------------------------------------------------------------------------------|
|      0 |    2 | magic `b"DA"`                                                                            |
|      2 |    1 | format version, 3 (written) or 2 (read: the same layout with keyed Adler-32 checks)       |
|      3 |    2 | model tag: the first 2 bytes of the model fingerprint                                    |
|      5 |    v | N, the number of images: a minimal LEB128 varint (`container.encode_varint`), 1..2^20     |
|    5+v |    s | seed: a minimal LEB128 varint in [0, 2^28), only for models that use seeds               |
|        |      | (`Layout.uses_seed`); image i uses the seed (seed + i) mod 2^28                          |
|  5+v+s |    P | packed models: the N codes, each h*w*k indices of b = ceil(log2 L) bits, most significant |
|        |      | bit first, concatenated and zero-padded to whole bytes: P = ceil(N h w k b / 8)            |
|        |      | range-coded models: N entries, each a varint payload length n_i (at most the model's      |
|        |      | `max_payload`), the n_i bytes of tfc's string, and a 4-byte entry check of i as 4        |
|        |      | big-endian bytes followed by the payload, keyed by the fingerprint                        |
|    end |    4 | check value of every byte before, keyed by the model's 8-byte fingerprint                 |

The check values are those of single files (`container.check_value`): version 3 KMX-32
(`tfdplc.codec.checkvalue`), version 2 Adler-32 of the fingerprint followed by the bytes.

Image i of an archive is exactly the single file `Layout.write((seed + i) mod 2^28, payload_i)`
(`Archive.containers`), so it decodes to the same image as that file.

Reading (`read`) checks, in this order, and raises the first failure (`tfdplc.codec.errors`): the magic
(`NotAContainerError`; a single-image file is named as such), the version (`UnsupportedVersionError`),
the 10-byte minimum (`TruncatedError`), the model tag (`ModelMismatchError`), the count and seed varints
running past the data (`TruncatedError`) or longer than 4 bytes (`CorruptedError`), the size the packed
codes imply (`TruncatedError` if shorter, `CorruptedError` for trailing bytes), the checksum, then field
values (a count outside 1..2^20, a varint that is not minimal), the packed codes' padding bits and
indices < L, and every range-coded entry's length and check. Failures after the header raise
`DamagedArchiveError` (a `CorruptedError`) whose `intact` names the entries that are intact: every
range-coded entry whose own check passes (found by walking the entries, as far as their lengths can be
read); none for packed archives, which have one checksum for all their bits. `read(..., salvage=True)`
returns the entries of a damaged range-coded archive as far as their lengths can be walked (the intact
ones with their payloads, the others None) instead of raising; it trusts no count it cannot check: the
header's count of a damaged archive is kept in `Archive.announced`, and only entries found in the bytes
are returned (each takes at least 5 bytes, so a damaged archive cannot claim more entries than its size
allows). Reading takes time proportional to the archive's bytes and entries.
"""

import dataclasses
import struct
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tfdplc.codec import container as fmt
from tfdplc.codec.errors import (
    CorruptedError,
    DamagedArchiveError,
    ModelMismatchError,
    NotAContainerError,
    TruncatedError,
    UnsupportedVersionError,
)

__all__ = [
    "MAGIC",
    "MAX_IMAGES",
    "MIN_SIZE",
    "SUFFIX",
    "VERSION",
    "VERSION_2",
    "Archive",
    "image_seeds",
    "read",
    "write",
]

MAGIC = b"DA"
VERSION = 3  # what writers write (KMX-32 checks)
VERSION_2 = 2  # read (keyed Adler-32 checks)
SUFFIX = ".dplca"
#: The most images one archive holds (a 3-byte varint).
MAX_IMAGES = 2**20
HEADER_FIXED = len(MAGIC) + 1 + fmt.TAG_SIZE  # 5
MIN_SIZE = HEADER_FIXED + 1 + fmt.CHECKSUM_SIZE  # 10: a count, no seed, no code bits
ENTRY_CHECK_SIZE = 4


def image_seeds(seed: int, count: int) -> np.ndarray:
    """The per-image seeds of an archive: (seed + i) mod 2^28 for i < count, int64."""
    return (int(seed) + np.arange(count, dtype=np.int64)) % (fmt.MAX_SEED_V2 + 1)


def _seeds(layout: fmt.Layout, seed: int, count: int) -> np.ndarray:
    """The seeds images decode with: `image_seeds`, or 0 for a model that uses none."""
    return image_seeds(seed, count) if layout.uses_seed else np.zeros([count], np.int64)


@dataclasses.dataclass(frozen=True)
class Archive:
    """The content of an archive.

    Attributes:
      seed: the stored seed (0 for models that use none).
      seeds: (N,) int64, the seed of each image.
      payloads: N payloads (the packed code or range-coded string of each image, as a single file holds
        it); None for an entry that is not intact (only with `read(..., salvage=True)`).
      codes: (N, h*w*k) int32 indices of a packed archive, else None.
      intact: the indices of the intact entries (all of them unless salvaged).
      announced: the image count the header announces. It equals `len(payloads)` unless the archive was
        salvaged (`read(..., salvage=True)` of a damaged archive): then the count is not checked, and
        `payloads` holds only the entries found in the bytes.
      checked: False for a salvaged damaged archive: its header (count, seed) failed or escaped a check,
        so only the entries' own checks vouch for them (and a model's seed is not vouched for).
    """

    seed: int
    seeds: np.ndarray
    payloads: Tuple[Optional[bytes], ...]
    codes: Optional[np.ndarray]
    intact: Tuple[int, ...]
    announced: Optional[int] = None
    checked: bool = True

    def __len__(self) -> int:
        return len(self.payloads)

    def containers(self, layout: fmt.Layout, indices: Sequence[int] = None) -> List[bytes]:
        """Image i as the single version 3 file it equals (`Layout.write(seeds[i], payloads[i])`)."""
        indices = range(len(self)) if indices is None else indices
        out = []
        for index in indices:
            if self.payloads[index] is None:
                raise CorruptedError(f"entry {index} of the archive is damaged.")
            seed = int(self.seeds[index]) if layout.uses_seed else 0
            out.append(layout.write(seed, self.payloads[index]))
        return out


def _entry_check(fingerprint: bytes, index: int, payload: bytes, version: int = VERSION) -> bytes:
    return struct.pack(">I", fmt.check_value(version, fingerprint, struct.pack(">I", index) + payload))


def write(layout: fmt.Layout, seed: int, payloads: Sequence[bytes], version: int = VERSION) -> bytes:
    """Writes an archive of the images whose payloads are given (as single files of the model hold them).

    Args:
      layout: the model's layout.
      seed: the archive's seed in [0, 2^28); image i uses (seed + i) mod 2^28. Must be 0 for models that
        use no seed (none is stored).
      payloads: 1..2^20 payloads: packed codes of `layout.packed_size` bytes, or range-coded strings.
      version: 3 (what writers write) or 2 (the older check values; for tests and tools).

    Returns:
      The archive's bytes.

    Raises:
      ValueError: a count, seed, payload or version the format cannot hold (or an invalid packed code).
    """
    if version not in (VERSION, VERSION_2):
        raise ValueError(f"archives are written in versions 2 and 3, not {version!r}.")
    count = len(payloads)
    if not 1 <= count <= MAX_IMAGES:
        raise ValueError(f"an archive holds 1 to {MAX_IMAGES} images, got {count}.")
    if layout.uses_seed:
        seed_bytes = fmt.encode_varint(seed)
    elif seed != 0:
        raise ValueError(f"seed {seed}: this model uses no seed (an archive of it stores none), pass 0.")
    else:
        seed_bytes = b""
    head = MAGIC + bytes([version]) + layout.tag + fmt.encode_varint(count) + seed_bytes
    if layout.levels is not None:
        from tfdplc.codec import bitpack  # deferred: bitpack imports TensorFlow

        codes = []
        for index, payload in enumerate(payloads):
            try:
                codes.append(
                    bitpack.unpack_numpy(payload, layout.num_symbols, layout.bits_per_symbol, layout.levels)
                )
            except CorruptedError as error:
                raise ValueError(f"payload {index} is not a packed code of this model: {error}") from error
        flat = np.concatenate(codes) if layout.num_symbols else np.zeros([0], np.int32)
        body = head + bitpack.pack_numpy(flat, layout.bits_per_symbol)
    else:
        parts = [head]
        for index, payload in enumerate(payloads):
            payload = bytes(payload)
            if len(payload) > min(layout.max_payload, fmt.MAX_SEED_V2):
                raise ValueError(f"payload {index} of {len(payload)} bytes: longer than this model's bound.")
            parts += [
                fmt.encode_varint(len(payload)),
                payload,
                _entry_check(layout.fingerprint, index, payload, version),
            ]
        body = b"".join(parts)
    return body + struct.pack(">I", fmt.check_value(version, layout.fingerprint, body))


def _check_magic(data: bytes) -> None:
    size = len(data)
    if size == 0:
        raise TruncatedError(f"empty input (0 bytes): a tfdplc archive has at least {MIN_SIZE} bytes.")
    if data[: len(MAGIC)] != MAGIC[: min(size, len(MAGIC))]:
        single = data[:1] == fmt.MAGIC_BYTE and size > 1 and (data[1] < 0x20 or data[1] == fmt.MAGIC[1])
        raise NotAContainerError(
            "a single-image tfdplc container (.dplc), not an archive."
            if single
            else f"not a tfdplc archive: it starts with {data[:3]!r}, archives start with {MAGIC!r}."
        )
    if size < len(MAGIC) + 1:
        raise TruncatedError(f"truncated: {size} bytes, a tfdplc archive has at least {MIN_SIZE}.")
    if data[2] not in (VERSION_2, VERSION):
        raise UnsupportedVersionError(
            f"archive format version {data[2]} (this reader supports versions 2 and 3; a damaged file can "
            "also show a wrong version)."
        )
    if size < MIN_SIZE:
        raise TruncatedError(f"truncated: {size} bytes, a tfdplc archive has at least {MIN_SIZE}.")


def _walk(layout: fmt.Layout, body: bytes, position: int, count: int, version: int):
    """Walks the range-coded entries: `(payloads, intact, problem)`; problem is None if all is well.

    `payloads` holds the entries whose extent was found (None where an entry fails its check); the walk
    stops where a length cannot be read, so it takes time proportional to the bytes, whatever `count`.
    """
    payloads, intact, problem = [], [], None
    bound = min(layout.max_payload, fmt.MAX_SEED_V2)
    for index in range(min(count, MAX_IMAGES)):
        try:
            length, used, minimal = fmt._varint(body, position, f"entry {index} length")
        except (TruncatedError, CorruptedError) as error:
            return payloads, intact, str(error)
        if not minimal or length > bound:
            return payloads, intact, f"entry {index}: impossible length {length}"
        start = position + used
        end = start + length + ENTRY_CHECK_SIZE
        if end > len(body):
            return payloads, intact, f"entry {index} runs past the end of the archive"
        payload = body[start : start + length]
        if body[start + length : end] == _entry_check(layout.fingerprint, index, payload, version):
            payloads.append(payload)
            intact.append(index)
        else:
            payloads.append(None)
            if problem is None:
                problem = f"entry {index} fails its check"
        position = end
    if len(payloads) < count and problem is None:
        problem = f"{count - len(payloads)} announced entries are missing"
    if position != len(body) and problem is None:
        problem = f"{len(body) - position} bytes after the last entry"
    return payloads, intact, problem


def read(layout: fmt.Layout, data: bytes, salvage: bool = False) -> Archive:
    """Reads and checks an archive of the model.

    Args:
      layout: the model's layout.
      data: the archive's bytes.
      salvage: for a damaged range-coded archive, return its intact entries (the others None) instead of
        raising `DamagedArchiveError` (errors of the header are raised all the same).

    Returns:
      An `Archive`.

    Raises:
      TypeError: if `data` is not bytes-like.
      CodecError: the subclass of the first failed check (see the module docstring).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"an archive must be bytes, got {type(data).__name__}.")
    data = bytes(data)  # no copy for bytes
    _check_magic(data)
    version = data[2]
    tag = data[3 : 3 + fmt.TAG_SIZE]
    if tag != layout.tag:
        raise ModelMismatchError(
            f"the archive was written by another model (tag {tag.hex()}, this model's is {layout.tag.hex()})."
        )
    body, size = data[: -fmt.CHECKSUM_SIZE], len(data)
    count, used, minimal = fmt._varint(body, HEADER_FIXED, "image count")
    position, seed = HEADER_FIXED + used, 0
    if layout.uses_seed:
        seed, used, seed_minimal = fmt._varint(body, position, "seed")
        position, minimal = position + used, minimal and seed_minimal
    if layout.levels is not None:
        expected = position + -(-count * layout.num_symbols * layout.bits_per_symbol // 8) + fmt.CHECKSUM_SIZE
        if size < expected:
            raise TruncatedError(
                f"truncated: {size} bytes, an archive of {count} images of this model has {expected}."
            )
        if size > expected:
            raise CorruptedError(
                f"{size - expected} trailing bytes after the {expected} of an archive of {count} images."
            )
    (stored,) = struct.unpack(">I", data[-fmt.CHECKSUM_SIZE :])
    checksum_ok = stored == fmt.check_value(version, layout.fingerprint, body)
    fields_ok = minimal and 1 <= count <= MAX_IMAGES
    if layout.levels is not None:
        if not checksum_ok:
            raise DamagedArchiveError(
                "archive checksum mismatch (a packed archive has one check for all its images)."
            )
        if not fields_ok:
            raise CorruptedError(
                f"impossible archive header: {count} images, or a varint that is not minimal."
            )
        from tfdplc.codec import bitpack  # deferred: bitpack imports TensorFlow

        flat = bitpack.unpack_numpy(
            body[position:], count * layout.num_symbols, layout.bits_per_symbol, layout.levels
        )
        codes = flat.reshape(count, layout.num_symbols)
        payloads = _packed_payloads(codes, layout.bits_per_symbol)
        return Archive(seed, _seeds(layout, seed, count), payloads, codes, tuple(range(count)), count)
    payloads, intact, problem = _walk(layout, body, position, count, version)
    if checksum_ok and not fields_ok:
        raise CorruptedError(f"impossible archive header: {count} images, or a varint that is not minimal.")
    if not checksum_ok or problem is not None:
        if salvage and intact:
            return Archive(
                seed, _seeds(layout, seed, len(payloads)), tuple(payloads), None, tuple(intact), count, False
            )
        reason = (
            "archive checksum mismatch" if not checksum_ok else "a damaged entry under an intact checksum"
        )
        raise DamagedArchiveError(
            f"{reason} ({problem or 'every entry passes its own check'}); intact entries: "
            f"{_ranges(intact) or 'none'} of {len(payloads)} found ({count} announced).",
            intact,
        )
    return Archive(seed, _seeds(layout, seed, count), tuple(payloads), None, tuple(intact), count)


def _packed_payloads(codes: np.ndarray, bits: int) -> Tuple[bytes, ...]:
    """Each row of (N, n) indices packed as a single file holds it (`bitpack.pack_numpy`), vectorised."""
    count, symbols = codes.shape
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    bitmat = (
        ((codes.astype(np.int64)[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(count, symbols * bits)
    )
    packed = np.packbits(bitmat, axis=1)  # pads each row to whole bytes, as pack_numpy does
    return tuple(row.tobytes() for row in packed)


def _ranges(indices: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    out, start = [], None
    for i, index in enumerate(indices):
        if start is None:
            start = index
        if i + 1 == len(indices) or indices[i + 1] != index + 1:
            out.append(str(start) if start == index else f"{start}-{index}")
            start = None
    return ", ".join(out)

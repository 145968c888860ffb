"""The container format (`tfdplc.codec.container`) written and read with core TensorFlow ops.

The exported SavedModels' `compress` / `decompress` signatures use these functions, so that a client of
TensorFlow Serving gets and sends the same container bytes as the Python reader/writer, and a server
refuses damaged or foreign containers by itself. Only core ops are used (string joins and substrings,
`unicode_decode` as ISO-8859-1 to read bytes as integers, ragged segment sums, `Assert`): stock
TensorFlow Serving runs them.

Reading is bounded: a string longer than the model's largest valid container is refused before any
byte of the batch is decoded, and no tensor is padded to the batch's longest string, so the memory and
time of a request stay proportional to its bytes.

Every check of the Python reader is repeated here, in the same order, as an `Assert` that fails the whole
call with an `InvalidArgumentError` whose message starts with "tfdplc container:" and names the problem.
The decoded outputs depend on all the asserts, so a refused batch never yields images.
"""

import struct
import zlib

import tensorflow as tf

from tfdplc.codec import bitpack, checkvalue
from tfdplc.codec import container as fmt

__all__ = [
    "MAX_GRAPH_ARCHIVE_IMAGES",
    "adler32",
    "keyed_check",
    "max_graph_archive_size",
    "read_archive",
    "read_containers",
    "refusals",
    "to_strings",
    "varint_strings",
    "write_archive",
    "write_containers",
]

_ADLER_MOD = 65521
# One single-byte string per byte value: gathering these and joining them turns bytes into a string.
_BYTE_TABLE = [bytes([i]) for i in range(256)]


def to_strings(byte_values: tf.Tensor) -> tf.Tensor:
    """(B, n) integers in [0, 256) -> (B,) strings of n bytes."""
    table = tf.constant(_BYTE_TABLE, dtype=tf.string)
    return tf.strings.reduce_join(tf.gather(table, tf.cast(byte_values, tf.int32)), axis=-1)


def _big_endian_bytes(values: tf.Tensor, size: int) -> tf.Tensor:
    """(B,) non-negative int64 -> (B, size) byte values, most significant first."""
    shifts = tf.constant([8 * (size - 1 - j) for j in range(size)], tf.int64)
    return tf.bitwise.bitwise_and(tf.bitwise.right_shift(tf.cast(values, tf.int64)[:, None], shifts), 255)


def _from_big_endian(byte_values: tf.Tensor, size: int) -> tf.Tensor:
    """(B, size) byte values (int64) -> (B,) int64; the caller keeps the top bit of 8-byte values clear."""
    shifts = tf.constant([8 * (size - 1 - j) for j in range(size)], tf.int64)
    return tf.reduce_sum(tf.bitwise.left_shift(byte_values, shifts), axis=-1)


def _byte_rows(strings: tf.Tensor) -> tf.RaggedTensor:
    """(B,) strings -> ragged (B, None) int64 byte values, one value per byte (no padding).

    ISO-8859-1 maps every byte to the code point of the same value, so `unicode_decode` turns bytes into
    integers without padding the batch to its longest string: memory stays proportional to the bytes of
    the request (a fixed-width `decode_raw` would pad every string to the longest one).
    """
    return tf.cast(tf.strings.unicode_decode(strings, "ISO-8859-1", errors="strict"), tf.int64)


def adler32(strings: tf.Tensor, lengths: tf.Tensor = None, start: int = 1) -> tf.Tensor:
    """Adler-32 (RFC 1950) of the first `lengths[i]` bytes of each string, without a loop or padding.

    With D_1..D_n the bytes and (A_0, B_0) the starting state (1, 0 by default): A = A_0 + sum D_j and
    B = B_0 + n A_0 + sum (n - j + 1) D_j, both mod 65521; the checksum is B * 65536 + A (the same as
    `zlib.adler32(data, start)`, so `start = zlib.adler32(prefix)` continues a checksum of `prefix`). Each
    product is reduced mod 65521 first, so the int64 sums cannot overflow below 2^38 bytes.

    Args:
      strings: (B,) strings, or their ragged byte values (`_byte_rows`).
      lengths: (B,) int64 prefix lengths, each <= the string's length (values beyond are clipped);
        None: whole strings.
      start: the Adler-32 to continue (1: a fresh checksum).

    Returns:
      (B,) int64 checksums.
    """
    a0, b0 = start & 0xFFFF, start >> 16
    rows = strings if isinstance(strings, tf.RaggedTensor) else _byte_rows(strings)
    row_lengths = rows.row_lengths()
    lengths = row_lengths if lengths is None else tf.minimum(tf.cast(lengths, tf.int64), row_lengths)
    row = rows.value_rowids()
    position = tf.range(tf.size(row, out_type=tf.int64), dtype=tf.int64) - tf.gather(rows.row_starts(), row)
    count = tf.gather(lengths, row)
    data = tf.where(position < count, rows.flat_values, tf.zeros_like(rows.flat_values))
    batch = rows.nrows()
    a = tf.math.floormod(a0 + tf.math.unsorted_segment_sum(data, row, batch), _ADLER_MOD)
    weighted = tf.math.floormod(count - position, _ADLER_MOD) * data
    initial = b0 + tf.math.floormod(lengths, _ADLER_MOD) * a0
    b = tf.math.floormod(initial + tf.math.unsorted_segment_sum(weighted, row, batch), _ADLER_MOD)
    return b * 65536 + a


_MASK32 = 0xFFFFFFFF


def _mul32(x: tf.Tensor, constant: int) -> tf.Tensor:
    """(x * constant) mod 2^32 for int64 x in [0, 2^32), without int64 overflow (16-bit halves)."""
    low, high = constant & 0xFFFF, constant >> 16
    product = x * low + tf.bitwise.left_shift(tf.bitwise.bitwise_and(x * high, 0xFFFF), 16)
    return tf.bitwise.bitwise_and(product, _MASK32)


def _mix32(x: tf.Tensor) -> tf.Tensor:
    """`checkvalue.mix32` (murmur3's finaliser) on int64 tensors holding 32-bit values."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = _mul32(x, checkvalue.MIX_1)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 13))
    x = _mul32(x, checkvalue.MIX_2)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def keyed_check(strings, fingerprint: bytes, lengths: tf.Tensor = None) -> tf.Tensor:
    """Version 3's check value (`checkvalue.check32`, KMX-32) of each string's first `lengths[i]` bytes.

    No loop and no padding to the longest string: every byte goes to its 4-byte word by a segment sum,
    every word is mixed on its own, and the words of a row are summed by a second segment sum.

    Args:
      strings: (B,) strings, or their ragged byte values (`_byte_rows`).
      fingerprint: the model's 8-byte fingerprint (the key).
      lengths: (B,) int64 prefix lengths (clipped to each string's length); None: whole strings.

    Returns:
      (B,) int64 check values in [0, 2^32).
    """
    k0, k1 = struct.unpack(">II", fingerprint)
    rows = strings if isinstance(strings, tf.RaggedTensor) else _byte_rows(strings)
    row_lengths = rows.row_lengths()
    lengths = row_lengths if lengths is None else tf.minimum(tf.cast(lengths, tf.int64), row_lengths)
    row = rows.value_rowids()
    position = tf.range(tf.size(row, out_type=tf.int64), dtype=tf.int64) - tf.gather(rows.row_starts(), row)
    words_per_row = (lengths + 3) // 4
    word_starts = tf.cumsum(words_per_row, exclusive=True)
    total_words = tf.reduce_sum(words_per_row)
    inside = position < tf.gather(lengths, row)
    # Bytes past a row's length go to one extra segment that is dropped.
    segment = tf.where(inside, tf.gather(word_starts, row) + position // 4, total_words)
    shifted = tf.bitwise.left_shift(rows.flat_values, 8 * (3 - position % 4))
    words = tf.math.unsorted_segment_sum(shifted, segment, total_words + 1)[:total_words]
    word_row = tf.repeat(tf.range(tf.size(lengths, out_type=tf.int64), dtype=tf.int64), words_per_row)
    index = tf.range(total_words, dtype=tf.int64) - tf.gather(word_starts, word_row)
    position_key = _mix32(tf.bitwise.bitwise_and(index + k0, _MASK32))
    terms = _mix32(tf.bitwise.bitwise_xor(_mix32(tf.bitwise.bitwise_xor(words, position_key)), k1))
    total = tf.math.unsorted_segment_sum(terms, word_row, tf.size(lengths))  # < 2^32 * words: no overflow
    total = tf.bitwise.bitwise_and(total, _MASK32)
    mixed = tf.bitwise.bitwise_and(_mix32(tf.bitwise.bitwise_xor(total, k0)) + lengths, _MASK32)
    return _mix32(tf.bitwise.bitwise_xor(mixed, k1))


def _check_of(rows, lengths, fingerprint: bytes, version_byte: tf.Tensor) -> tf.Tensor:
    """Each row's keyed check value as its version byte says: KMX-32 (3) or the keyed Adler-32 (2)."""
    new = keyed_check(rows, fingerprint, lengths)
    old = adler32(rows, lengths, start=zlib.adler32(fingerprint))
    return tf.where(tf.equal(version_byte, fmt.VERSION_2), old, new)


def _bytes_at(rows: tf.RaggedTensor, offset, count: int) -> tf.Tensor:
    """(B, count) int64: bytes [offset, offset + count) of each row, 0 beyond a row's end.

    `offset` is an int or a (B,) int64 tensor (one offset per row).
    """
    offset = tf.reshape(tf.cast(offset, tf.int64), [-1, 1])
    position = offset + tf.range(count, dtype=tf.int64)[None, :]
    inside = (position >= 0) & (position < rows.row_lengths()[:, None])
    index = tf.where(inside, rows.row_starts()[:, None] + position, tf.zeros_like(position))
    values = tf.concat([rows.flat_values, tf.zeros([1], tf.int64)], 0)  # index 0 exists even if empty
    return tf.where(inside, tf.gather(values, index), tf.zeros_like(index))


def _varint_bytes(values: tf.Tensor):
    """(B,) int64 in [0, 2^28) -> their minimal LEB128 encodings: (B, 4) byte values and (B,) lengths."""
    values = tf.cast(values, tf.int64)
    size = 1 + sum(tf.cast(values >= 2 ** (7 * j), tf.int64) for j in (1, 2, 3))
    shifts = tf.constant([0, 7, 14, 21], tf.int64)
    groups = tf.bitwise.bitwise_and(tf.bitwise.right_shift(values[:, None], shifts), 0x7F)
    more = tf.range(4, dtype=tf.int64)[None, :] < size[:, None] - 1
    return groups + tf.where(more, tf.constant(0x80, tf.int64), tf.constant(0, tf.int64)), size


def varint_strings(values: tf.Tensor) -> tf.Tensor:
    """(B,) int64 in [0, 2^28) -> (B,) strings: their minimal LEB128 encodings (`container.encode_varint`)."""
    groups, size = _varint_bytes(values)
    return tf.strings.substr(to_strings(groups), tf.zeros_like(size, tf.int32), tf.cast(size, tf.int32))


def _parse_varint(rows: tf.RaggedTensor, offset, end: tf.Tensor):
    """Reads a LEB128 varint of at most 4 bytes at `offset` of each row, inside bytes [0, end).

    Returns:
      `(value, used, truncated, too_long, minimal)`, (B,) tensors: as `container.decode_varint` decides
      (truncated: the varint reaches `end`; too_long: 4 bytes all with the continuation bit).
    """
    offset = tf.cast(offset, tf.int64) + tf.zeros_like(end)
    raw = _bytes_at(rows, offset, 4)
    available = offset[:, None] + tf.range(4, dtype=tf.int64)[None, :] < end[:, None]
    more = tf.bitwise.bitwise_and(raw, 0x80) > 0
    # reach[j]: the varint has a byte j (every earlier byte had the continuation bit).
    reach = (
        tf.math.cumprod(tf.concat([tf.ones_like(raw[:, :1]), tf.cast(more[:, :3], tf.int64)], 1), axis=1) > 0
    )
    truncated = tf.reduce_any(reach & ~available, axis=1)
    too_long = reach[:, 3] & more[:, 3]
    used = tf.reduce_sum(tf.cast(reach, tf.int64), axis=1)
    shifts = tf.constant([0, 7, 14, 21], tf.int64)
    groups = tf.bitwise.left_shift(tf.bitwise.bitwise_and(raw, 0x7F), shifts)
    value = tf.reduce_sum(tf.where(reach, groups, tf.zeros_like(groups)), axis=1)
    last = tf.gather(raw, tf.clip_by_value(used - 1, 0, 3), axis=1, batch_dims=1)
    minimal = (used == 1) | (last != 0)
    return value, used, truncated, too_long, minimal


def write_containers(layout: fmt.Layout, seeds: tf.Tensor, payloads: tf.Tensor) -> tf.Tensor:
    """Builds one version 3 container per example.

    Args:
      layout: the model's constant header fields.
      seeds: (B,) int64 seeds in [0, 2^28) (the caller checks the range); not stored for models that use
        none (`Layout.uses_seed`).
      payloads: (B,) payload strings.

    Returns:
      (B,) container strings, byte for byte what `Layout.write` writes.
    """
    head = tf.constant(fmt.MAGIC_BYTE + bytes([fmt.VERSION]) + layout.tag)
    parts = [tf.fill(tf.shape(payloads), head)]
    if layout.uses_seed:
        parts.append(varint_strings(seeds))
    body = tf.strings.join(parts + [payloads])
    checksum = keyed_check(body, layout.fingerprint)
    return tf.strings.join([body, to_strings(_big_endian_bytes(checksum, 4))])


class _Checks:
    """Per-row checks in the reader's order: each fails only rows that passed every earlier one.

    So a damaged string is refused with the message of its first failed check, as in Python, whatever
    order TensorFlow runs the asserts in.
    """

    def __init__(self, batch_shape, raising: bool = True, prefix: str = "tfdplc container"):
        self.raising, self.prefix = raising, prefix
        self.ok = tf.ones(batch_shape, tf.bool)
        self.failure = tf.fill(batch_shape, "")  # each row's first failed check ("" if none)
        self.ops = []

    def add(self, condition: tf.Tensor, message: str, where: tf.Tensor = None) -> None:
        """Checks `condition` on the rows (of `where`, default all) that passed every earlier check."""
        applies = self.ok if where is None else self.ok & where
        if self.raising:
            self.ops.append(_assert(~applies | condition, message, self.prefix))
        failing = applies & ~condition
        self.failure = tf.where(failing, f"{self.prefix}: {message}", self.failure)
        self.ok = self.ok & ~failing


def _assert(condition: tf.Tensor, message: str, prefix: str = "tfdplc container") -> tf.Operation:
    return tf.debugging.Assert(tf.reduce_all(condition), [f"{prefix}: {message}"])


def _prefix_bytes(strings: tf.Tensor, lengths: tf.Tensor, count: int) -> tf.Tensor:
    """(B, count) int64: the first `count` bytes of each string, -1 beyond its end (reads `count` bytes each)."""
    head = tf.strings.substr(
        strings, tf.zeros_like(lengths, tf.int32), tf.cast(tf.minimum(lengths, count), tf.int32)
    )
    return _byte_rows(head).to_tensor(default_value=-1, shape=[None, count])


def read_containers(layout: fmt.Layout, strings: tf.Tensor):
    """Parses and checks a batch of containers of one model, of either format version (see `_read`).

    Returns:
      `(seeds, payload)`: (B,) int64 seeds and, for packed codes, (B, n) int32 indices in [0, L) with
      n = h*w*k; for range-coded payloads, the (B,) payload strings. Both depend on every check.

    Raises:
      tf.errors.InvalidArgumentError: (at run time) naming the first failed check of the batch.
    """
    seeds, payload, checks = _read(layout, strings)
    with tf.control_dependencies(checks.ops):
        return tf.identity(seeds), tf.identity(payload)


def refusals(layout: fmt.Layout, strings: tf.Tensor) -> tf.Tensor:
    """The verdict of `read_containers` on each string alone, without failing: (B,) messages.

    Each is "" for a string the reader accepts, else the message of its first failed check (what
    `read_containers` raises for a batch holding only that string). The same checks as the reader, so a
    test can check many damaged strings in one call.
    """
    return _read(layout, strings, raising=False)[2].failure


def _read(layout: fmt.Layout, strings: tf.Tensor, raising: bool = True):
    """Parses and checks a batch of containers of one model, of either format version.

    The first checks refuse strings longer than the model's largest valid container (`Layout.max_size`),
    without the magic bytes, or shorter than the minimum; they look only at lengths and the first 4 bytes,
    and no other byte is decoded before they pass (control dependency). The bytes are then read without
    padding, so memory and time stay proportional to the bytes of the request whatever its strings'
    lengths. Each string is read as the version its first bytes announce (`container`: b"D" + 2, or
    b"DPLC" + 1), with the checks of the Python reader in the same order; a string is refused with the
    message of its first failed check.

    Returns:
      `(seeds, payload, checks)`: the parsed values (valid where `checks.ok`) and the `_Checks`.
    """
    strings = tf.convert_to_tensor(strings, tf.string)
    lengths = tf.cast(tf.strings.length(strings), tf.int64)
    bound = layout.max_size
    # Checked on the lengths and at most 4 bytes of each string, before any other byte is decoded: what is
    # decoded afterwards is at most the model's largest container per string and at least the 8-byte
    # minimum, so every tensor below stays within a small multiple of the request's bytes.
    first = _prefix_bytes(strings, lengths, 4)
    absent = first < 0
    mark = first[:, 1]
    v1_magic = tf.reduce_all(absent | (first == tf.constant(list(fmt.MAGIC), tf.int64)), axis=1)
    magic_ok = (absent[:, 0] | tf.equal(first[:, 0], fmt.MAGIC_BYTE[0])) & (
        absent[:, 1] | ((mark == fmt.MAGIC[1]) & v1_magic) | ((mark >= 0) & (mark < 0x20))
    )
    early = _Checks(tf.shape(strings), raising)
    early.add(lengths <= bound, f"too long (this model's containers have at most {bound} bytes).")
    early.add(magic_ok, "not a tfdplc container (bad magic bytes).")
    early.add(lengths >= fmt.MIN_SIZE_V2, f"truncated (shorter than the {fmt.MIN_SIZE_V2}-byte minimum).")
    with tf.control_dependencies(early.ops):
        rows = _byte_rows(tf.identity(strings))
    checks = early
    head = _bytes_at(rows, 0, fmt.HEADER_SIZE)
    is_v1 = head[:, 1] == fmt.MAGIC[1]
    is_v2 = ~is_v1
    checks.add(
        lengths >= fmt.OVERHEAD,
        f"truncated (shorter than the {fmt.OVERHEAD}-byte minimum of version 1).",
        is_v1,
    )
    checks.add(
        (is_v1 & tf.equal(head[:, 4], fmt.VERSION_1))
        | (is_v2 & (tf.equal(head[:, 1], fmt.VERSION) | tf.equal(head[:, 1], fmt.VERSION_2))),
        "unsupported format version (this model reads versions 1, 2 and 3).",
    )
    v1_seeds, v1_start, v1_length = _check_v1(layout, rows, head, lengths, checks, is_v1)
    v2_seeds, v2_start, v2_length = _check_v2(layout, rows, head, lengths, checks, is_v2)
    seeds = tf.where(is_v1, v1_seeds, v2_seeds)
    start = tf.where(is_v1, v1_start, v2_start)
    payload_length = tf.where(is_v1, v1_length, v2_length)
    if layout.levels is None:
        # Substr fails on a position beyond the string: cut from a padded copy, and nothing from a string
        # that failed a check (the asserts refuse it).
        padded = tf.strings.join([strings, tf.constant(bytes(fmt.HEADER_SIZE))])
        safe_length = tf.where(checks.ok, payload_length, tf.zeros_like(payload_length))
        safe_start = tf.where(checks.ok, start, tf.zeros_like(start))
        payload = tf.strings.substr(padded, tf.cast(safe_start, tf.int32), tf.cast(safe_length, tf.int32))
    else:
        packed = _bytes_at(rows, start, layout.packed_size)
        payload, padding_ok = bitpack.unpack_bits(packed, layout.num_symbols, layout.bits_per_symbol)
        checks.add(padding_ok, "corrupted (non-zero padding bits after the packed code).")
        checks.add(
            tf.reduce_all(payload < layout.levels, axis=1),
            f"corrupted (a code index >= L = {layout.levels}).",
        )
    return seeds, payload, checks


def _stored_checksum(rows: tf.RaggedTensor, lengths: tf.Tensor) -> tf.Tensor:
    """(B,) int64: the last 4 bytes of each row, big-endian (0-filled where a row is shorter)."""
    return _from_big_endian(_bytes_at(rows, lengths - fmt.CHECKSUM_SIZE, fmt.CHECKSUM_SIZE), 4)


def _check_v1(layout, rows, head, lengths, checks, where):
    """The version 1 checks (`container.unpack`, `Layout.check`) on the rows `where` holds: seeds, payload start and length."""
    prefix = list(layout.prefix())
    payload_length = _from_big_endian(head[:, fmt.PREFIX_SIZE + 8 : fmt.HEADER_SIZE], 4)
    expected_length = fmt.OVERHEAD + payload_length
    checks.add(lengths >= expected_length, "truncated (shorter than the header announces).", where)
    checks.add(lengths <= expected_length, "corrupted (trailing bytes after the announced length).", where)
    body_length = tf.maximum(lengths - 4, 0)
    checks.add(
        _stored_checksum(rows, lengths) == adler32(rows, body_length), "corrupted (checksum mismatch).", where
    )
    checks.add(
        tf.reduce_all(head[:, 8:16] == tf.constant(prefix[8:16], tf.int64), axis=1),
        f"written by another model (fingerprint differs from this model's {layout.fingerprint.hex()}).",
        where,
    )
    fields = tf.constant(prefix[5:8] + prefix[16:], tf.int64)
    checks.add(
        tf.reduce_all(tf.concat([head[:, 5:8], head[:, 16 : fmt.PREFIX_SIZE]], 1) == fields, axis=1),
        "corrupted (header fields differ from the model's although the fingerprint matches).",
        where,
    )
    checks.add(head[:, fmt.PREFIX_SIZE] < 128, "corrupted (seed >= 2^63).", where)
    if layout.levels is not None:
        size = layout.packed_size
        checks.add(payload_length == size, f"corrupted (the packed code takes {size} bytes).", where)
    seed_bytes = head[:, fmt.PREFIX_SIZE : fmt.PREFIX_SIZE + 8]
    seeds = _from_big_endian(tf.concat([seed_bytes[:, :1] % 128, seed_bytes[:, 1:]], 1), 8)
    return seeds, tf.fill(tf.shape(lengths), tf.constant(fmt.HEADER_SIZE, tf.int64)), payload_length


def _check_v2(layout, rows, head, lengths, checks, where):
    """The version 2 / 3 checks (`Layout.read`) on the rows `where` holds: seeds, payload start and length."""
    checks.add(
        tf.reduce_all(head[:, 2 : 2 + fmt.TAG_SIZE] == tf.constant(list(layout.tag), tf.int64), axis=1),
        f"written by another model (its tag differs from this model's {layout.tag.hex()}).",
        where,
    )
    body_length = tf.maximum(lengths - fmt.CHECKSUM_SIZE, 0)
    start = tf.fill(tf.shape(lengths), tf.constant(2 + fmt.TAG_SIZE, tf.int64))
    seeds, minimal = tf.zeros_like(lengths), tf.ones(tf.shape(lengths), tf.bool)
    if layout.uses_seed:
        seeds, used, truncated, too_long, minimal = _parse_varint(rows, start, body_length)
        checks.add(~truncated, "truncated (the data ends inside the seed varint).", where)
        checks.add(~too_long, "corrupted (the seed varint is longer than 4 bytes).", where)
        start = start + used
    if layout.levels is not None:
        expected = start + layout.packed_size + fmt.CHECKSUM_SIZE
        checks.add(lengths >= expected, "truncated (shorter than this model's file with this seed).", where)
        checks.add(lengths <= expected, "corrupted (trailing bytes after this model's file).", where)
    checksum = _check_of(rows, body_length, layout.fingerprint, head[:, 1])
    checks.add(_stored_checksum(rows, lengths) == checksum, "corrupted (checksum mismatch).", where)
    checks.add(minimal, "corrupted (the seed varint is not minimal).", where)
    return seeds, start, tf.maximum(body_length - start, 0)


#: The most images `read_archive` decodes per request: bounds a request's output (a zero-rate model's
#: archive of N images is a few bytes whatever N).
MAX_GRAPH_ARCHIVE_IMAGES = 2**16


def max_graph_archive_size(layout: fmt.Layout) -> int:
    """The longest archive string `read_archive` reads: 16 header bytes, 2^16 codes, the checksum."""
    return 16 + -(-MAX_GRAPH_ARCHIVE_IMAGES * layout.num_symbols * layout.bits_per_symbol // 8) + 4


def _packed_bits(codes: tf.Tensor, bits: int) -> tf.Tensor:
    """(N, n) indices -> (ceil(N n bits / 8),) int64 bytes: every index MSB first, back to back, zero-padded."""
    shifts = tf.range(bits - 1, -1, -1, dtype=tf.int64)
    flat = tf.reshape(
        tf.bitwise.bitwise_and(tf.bitwise.right_shift(tf.cast(codes, tf.int64)[..., None], shifts), 1), [-1]
    )
    total = tf.size(flat, out_type=tf.int64)
    flat = tf.pad(flat, [[0, (-total) % 8]])
    weights = tf.constant([128, 64, 32, 16, 8, 4, 2, 1], tf.int64)
    return tf.reduce_sum(tf.reshape(flat, [-1, 8]) * weights, axis=1)


def write_archive(layout: fmt.Layout, seed: tf.Tensor, codes: tf.Tensor) -> tf.Tensor:
    """A packed archive (`tfdplc.codec.archive`) of N codes, byte for byte what `archive.write` writes.

    Args:
      layout: the model's layout (packed codes only).
      seed: scalar int64 in [0, 2^28) (the caller checks it); not stored for models that use none.
      codes: (N, h, w, k) indices in [0, L), 1 <= N <= 2^20.

    Returns:
      A scalar string.
    """
    from tfdplc.codec import archive

    if layout.levels is None:
        raise ValueError("graph archives hold packed codes only; range-coded archives are written in Python.")
    count = tf.shape(codes, out_type=tf.int64)[:1]
    parts = [tf.constant(archive.MAGIC + bytes([archive.VERSION]) + layout.tag), varint_strings(count)]
    # (archive.VERSION is 3: the check below is KMX-32; version 2 archives are only read.)
    if layout.uses_seed:
        parts.append(varint_strings(tf.reshape(tf.cast(seed, tf.int64), [1])))
    flat = tf.reshape(codes, [-1, max(layout.num_symbols, 1)])[:, : layout.num_symbols]
    packed = _packed_bits(flat, layout.bits_per_symbol)
    parts.append(to_strings(packed[None]))
    body = tf.strings.join(parts)
    checksum = keyed_check(body, layout.fingerprint)
    return tf.strings.join([body, to_strings(_big_endian_bytes(checksum, 4))])[0]


def read_archive(layout: fmt.Layout, string: tf.Tensor):
    """Parses and checks a packed archive with the checks of `archive.read`, in its order.

    A string longer than `max_graph_archive_size` (2^16 images) or without the archive magic is refused
    from its length and first 3 bytes before any byte is decoded; then the announced count must match the
    length exactly, so every tensor stays proportional to the request's bytes (and at most 2^16 images).

    Args:
      layout: the model's layout (packed codes only).
      string: a scalar archive string.

    Returns:
      `(seeds, codes)`: (N,) int64 per-image seeds ((seed + i) mod 2^28, or 0 for models without seeds)
      and (N, h*w*k) int32 indices; both depend on every check.

    Raises:
      tf.errors.InvalidArgumentError: (at run time) "tfdplc archive: ..." naming the first failed check.
    """
    from tfdplc.codec import archive

    if layout.levels is None:
        raise ValueError("graph archives hold packed codes only; range-coded archives are read in Python.")
    strings = tf.reshape(tf.convert_to_tensor(string, tf.string), [1])
    lengths = tf.cast(tf.strings.length(strings), tf.int64)
    bound = max_graph_archive_size(layout)
    first = _prefix_bytes(strings, lengths, 3)
    magic = tf.constant(list(archive.MAGIC), tf.int64)
    early = _Checks(tf.shape(strings), prefix="tfdplc archive")
    early.add(
        lengths <= bound, f"too long (an archive request holds at most {MAX_GRAPH_ARCHIVE_IMAGES} images)."
    )
    early.add(
        tf.reduce_all((first[:, :2] < 0) | (first[:, :2] == magic), axis=1),
        "not a tfdplc archive (bad magic bytes).",
    )
    early.add(lengths >= archive.MIN_SIZE, f"truncated (shorter than the {archive.MIN_SIZE}-byte minimum).")
    early.add(
        tf.equal(first[:, 2], archive.VERSION) | tf.equal(first[:, 2], archive.VERSION_2),
        "unsupported archive format version.",
    )
    with tf.control_dependencies(early.ops):
        rows = _byte_rows(tf.identity(strings))
    checks = early
    head = _bytes_at(rows, 0, archive.HEADER_FIXED)
    checks.add(
        tf.reduce_all(head[:, 3:5] == tf.constant(list(layout.tag), tf.int64), axis=1),
        f"written by another model (its tag differs from this model's {layout.tag.hex()}).",
    )
    body_length = tf.maximum(lengths - fmt.CHECKSUM_SIZE, 0)
    count, used, truncated, too_long, minimal = _parse_varint(rows, archive.HEADER_FIXED, body_length)
    checks.add(~truncated, "truncated (the data ends inside the image count varint).")
    checks.add(~too_long, "corrupted (the image count varint is longer than 4 bytes).")
    start = archive.HEADER_FIXED + used
    seed = tf.zeros_like(count)
    if layout.uses_seed:
        seed, used, truncated, too_long, seed_minimal = _parse_varint(rows, start, body_length)
        checks.add(~truncated, "truncated (the data ends inside the seed varint).")
        checks.add(~too_long, "corrupted (the seed varint is longer than 4 bytes).")
        start, minimal = start + used, minimal & seed_minimal
    bits = layout.num_symbols * layout.bits_per_symbol
    code_bytes = (count * bits + 7) // 8
    expected = start + code_bytes + fmt.CHECKSUM_SIZE
    checks.add(lengths >= expected, "truncated (shorter than the announced images take).")
    checks.add(lengths <= expected, "corrupted (trailing bytes after the announced images).")
    checksum = _check_of(rows, body_length, layout.fingerprint, first[:, 2])
    checks.add(_stored_checksum(rows, lengths) == checksum, "corrupted (archive checksum mismatch).")
    checks.add(minimal & (count >= 1), "corrupted (no images, or a varint that is not minimal).")
    checks.add(
        count <= MAX_GRAPH_ARCHIVE_IMAGES,
        f"too many images (at most {MAX_GRAPH_ARCHIVE_IMAGES} per request).",
    )
    # Only a string that passed every check above is unpacked (others: nothing), so sizes are bounded.
    ok = checks.ok[0]
    safe_count = tf.where(ok, count[0], tf.constant(0, tf.int64))
    safe_start = tf.where(ok, start[0], tf.constant(0, tf.int64))
    packed = tf.slice(rows.flat_values, [safe_start], [(safe_count * bits + 7) // 8])
    unpacked = tf.reshape(
        tf.bitwise.bitwise_and(
            tf.bitwise.right_shift(packed[:, None], tf.range(7, -1, -1, dtype=tf.int64)), 1
        ),
        [-1],
    )
    used_bits = safe_count * bits
    padding = unpacked[used_bits:]
    weights = tf.bitwise.left_shift(
        tf.constant(1, tf.int64), tf.range(layout.bits_per_symbol - 1, -1, -1, dtype=tf.int64)
    )
    codes = tf.reduce_sum(
        tf.reshape(unpacked[:used_bits], [safe_count, layout.num_symbols, layout.bits_per_symbol]) * weights,
        axis=-1,
    )
    checks.add(
        tf.reshape(tf.reduce_all(tf.equal(padding, 0)), [1]),
        "corrupted (non-zero padding bits after the codes).",
    )
    checks.add(
        tf.reshape(tf.reduce_all(codes < layout.levels), [1]),
        f"corrupted (a code index >= L = {layout.levels}).",
    )
    if layout.uses_seed:
        seeds = tf.math.floormod(seed[0] + tf.range(safe_count, dtype=tf.int64), fmt.MAX_SEED_V2 + 1)
    else:
        seeds = tf.zeros([safe_count], tf.int64)
    with tf.control_dependencies(checks.ops):
        return tf.identity(seeds), tf.cast(tf.identity(codes), tf.int32)

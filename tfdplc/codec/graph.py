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

import tensorflow as tf

from tfdplc.codec import bitpack
from tfdplc.codec import container as fmt

__all__ = ["adler32", "read_containers", "to_strings", "write_containers"]

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


def adler32(strings: tf.Tensor, lengths: tf.Tensor = None) -> tf.Tensor:
    """Adler-32 (RFC 1950) of the first `lengths[i]` bytes of each string, without a loop or padding.

    With D_1..D_n the bytes: A = 1 + sum D_j and B = n + sum (n - j + 1) D_j, both mod 65521; the checksum
    is B * 65536 + A (the same as `zlib.adler32`). Each product is reduced mod 65521 first, so the int64
    sums cannot overflow below 2^38 bytes.

    Args:
      strings: (B,) strings, or their ragged byte values (`_byte_rows`).
      lengths: (B,) int64 prefix lengths, each <= the string's length (values beyond are clipped);
        None: whole strings.

    Returns:
      (B,) int64 checksums.
    """
    rows = strings if isinstance(strings, tf.RaggedTensor) else _byte_rows(strings)
    row_lengths = rows.row_lengths()
    lengths = row_lengths if lengths is None else tf.minimum(tf.cast(lengths, tf.int64), row_lengths)
    row = rows.value_rowids()
    position = tf.range(tf.size(row, out_type=tf.int64), dtype=tf.int64) - tf.gather(rows.row_starts(), row)
    count = tf.gather(lengths, row)
    data = tf.where(position < count, rows.flat_values, tf.zeros_like(rows.flat_values))
    batch = rows.nrows()
    a = tf.math.floormod(1 + tf.math.unsorted_segment_sum(data, row, batch), _ADLER_MOD)
    weighted = tf.math.floormod(count - position, _ADLER_MOD) * data
    b = tf.math.floormod(lengths + tf.math.unsorted_segment_sum(weighted, row, batch), _ADLER_MOD)
    return b * 65536 + a


def _bytes_at(rows: tf.RaggedTensor, offset: int, count: int) -> tf.Tensor:
    """(B, count) int64: bytes [offset, offset + count) of each row, 0 beyond a row's end."""
    position = offset + tf.range(count, dtype=tf.int64)[None, :]
    inside = position < rows.row_lengths()[:, None]
    index = tf.where(inside, rows.row_starts()[:, None] + position, tf.zeros_like(position))
    values = tf.concat([rows.flat_values, tf.zeros([1], tf.int64)], 0)  # index 0 exists even if empty
    return tf.where(inside, tf.gather(values, index), tf.zeros_like(index))


def write_containers(layout: fmt.Layout, seeds: tf.Tensor, payloads: tf.Tensor) -> tf.Tensor:
    """Builds one container per example.

    Args:
      layout: the model's constant header fields.
      seeds: (B,) int64 seeds in [0, 2^63).
      payloads: (B,) payload strings.

    Returns:
      (B,) container strings, byte for byte what `container.pack` writes.
    """
    seeds = tf.cast(seeds, tf.int64)
    lengths = tf.cast(tf.strings.length(payloads), tf.int64)
    body = tf.strings.join(
        [
            tf.constant(layout.prefix()),
            to_strings(_big_endian_bytes(seeds, 8)),
            to_strings(_big_endian_bytes(lengths, 4)),
            payloads,
        ]
    )
    checksum = adler32(body)
    return tf.strings.join([body, to_strings(_big_endian_bytes(checksum, 4))])


def _assert(condition: tf.Tensor, message: str) -> tf.Operation:
    return tf.debugging.Assert(tf.reduce_all(condition), [f"tfdplc container: {message}"])


def read_containers(layout: fmt.Layout, strings: tf.Tensor):
    """Parses and checks a batch of containers of one model.

    The first checks refuse strings longer than the model's largest valid container (`Layout.max_size`),
    without the magic bytes, or shorter than the minimum; they look only at lengths and the first 4 bytes,
    and no byte is decoded before they pass (control dependency). The bytes are then read without padding,
    so memory and time stay proportional to the bytes of the request whatever its strings' lengths.

    Args:
      layout: the model's constant header fields.
      strings: (B,) container strings.

    Returns:
      `(seeds, payload)`: (B,) int64 seeds and, for packed codes, (B, n) int32 indices in [0, L) with
      n = h*w*k; for range-coded payloads, the (B,) payload strings. Both depend on every check.

    Raises:
      tf.errors.InvalidArgumentError: (at run time) naming the first failed check of the batch: too long,
        bad magic, truncated, unsupported version, trailing bytes, checksum mismatch, another model's
        fingerprint, header fields that differ from the model's, a seed >= 2^63, a bad packed payload.
    """
    strings = tf.convert_to_tensor(strings, tf.string)
    lengths = tf.cast(tf.strings.length(strings), tf.int64)
    bound = layout.max_size
    # Checked on the strings as they are (lengths, a 4-byte substring), before any byte is decoded: what
    # is decoded afterwards is at most the model's largest container per string and at least the
    # 48-byte minimum, so every tensor below stays within a small multiple of the request's bytes.
    magic = tf.fill(tf.shape(strings), fmt.MAGIC)
    short = tf.cast(tf.minimum(lengths, len(fmt.MAGIC)), tf.int32)
    early = [
        _assert(lengths <= bound, f"too long (this model's containers have at most {bound} bytes)."),
        _assert(
            tf.strings.substr(strings, tf.zeros_like(short), short)
            == tf.strings.substr(magic, tf.zeros_like(short), short),
            "not a tfdplc container (bad magic bytes).",
        ),
        _assert(lengths >= fmt.OVERHEAD, f"truncated (shorter than the {fmt.OVERHEAD}-byte minimum)."),
    ]
    with tf.control_dependencies(early):
        rows = _byte_rows(tf.identity(strings))
    head = _bytes_at(rows, 0, fmt.HEADER_SIZE)
    prefix = list(layout.prefix())
    checks = early + [
        _assert(head[:, 4] == fmt.VERSION, f"unsupported format version (this model writes {fmt.VERSION})."),
    ]
    payload_length = _from_big_endian(head[:, fmt.PREFIX_SIZE + 8 : fmt.HEADER_SIZE], 4)
    expected_length = fmt.OVERHEAD + payload_length
    checks += [
        _assert(lengths >= expected_length, "truncated (shorter than the header announces)."),
        _assert(lengths <= expected_length, "corrupted (trailing bytes after the announced length)."),
    ]
    # The stored checksum is the last 4 bytes (where the length is right; the asserts above refuse the rest).
    body_length = tf.maximum(lengths - 4, 0)
    last = tf.gather(
        tf.concat([rows.flat_values, tf.zeros([4], tf.int64)], 0),
        rows.row_starts()[:, None] + body_length[:, None] + tf.range(4, dtype=tf.int64)[None, :],
    )
    stored = _from_big_endian(last, 4)
    checks.append(_assert(stored == adler32(rows, body_length), "corrupted (checksum mismatch)."))
    fingerprint = tf.constant(prefix[8:16], tf.int64)
    checks.append(
        _assert(
            head[:, 8:16] == fingerprint,
            f"written by another model (fingerprint differs from this model's {layout.fingerprint.hex()}).",
        )
    )
    fields = tf.constant(prefix[5:8] + prefix[16:], tf.int64)
    checks += [
        _assert(
            tf.concat([head[:, 5:8], head[:, 16 : fmt.PREFIX_SIZE]], 1) == fields,
            "corrupted (header fields differ from the model's although the fingerprint matches).",
        ),
        _assert(head[:, fmt.PREFIX_SIZE] < 128, "corrupted (seed >= 2^63)."),
    ]
    seed_bytes = head[:, fmt.PREFIX_SIZE : fmt.PREFIX_SIZE + 8]
    seeds = _from_big_endian(tf.concat([seed_bytes[:, :1] % 128, seed_bytes[:, 1:]], 1), 8)
    if layout.levels is None:
        # Substr fails on a position beyond the string: cut from a padded copy, and nothing from a string
        # whose length is wrong (the asserts above refuse it).
        padded = tf.strings.join([strings, tf.constant(bytes(fmt.HEADER_SIZE))])
        safe_length = tf.where(lengths == expected_length, payload_length, tf.zeros_like(payload_length))
        payload = tf.strings.substr(
            padded, tf.fill(tf.shape(strings), fmt.HEADER_SIZE), tf.cast(safe_length, tf.int32)
        )
    else:
        size = layout.packed_size
        checks.append(_assert(payload_length == size, f"corrupted (the packed code takes {size} bytes)."))
        packed = _bytes_at(rows, fmt.HEADER_SIZE, size)
        payload, padding_ok = bitpack.unpack_bits(packed, layout.num_symbols, layout.bits_per_symbol)
        checks += [
            _assert(padding_ok, "corrupted (non-zero padding bits after the packed code)."),
            _assert(payload < layout.levels, f"corrupted (a code index >= L = {layout.levels})."),
        ]
    with tf.control_dependencies(checks):
        return tf.identity(seeds), tf.identity(payload)

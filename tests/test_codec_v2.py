"""Format version 2 (compact single files): layout, overhead bound, every damage class refused by both readers."""

import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from test_codec import (  # noqa: F401 (dplc is a fixture)
    _GRAPH_MESSAGES,
    CODES,
    LAYOUT,
    RANGE_LAYOUT,
    _graph_read,
    _graph_read_range,
    _mutate,
    _mutations,
    dplc,
)

from tfdplc import codec
from tfdplc.codec import bitpack, graph
from tfdplc.codec import container as fmt

PAYLOAD = bitpack.pack_numpy(CODES, 2)  # LAYOUT: 10 ternary indices, 20 bits in 3 bytes
# The case: DPLC at 8 bits per digit (8 binary entries: 1 byte of payload), stochastic decoder.
DPLC8 = fmt.Layout(
    fingerprint=b"\x5a" * 8, image_shape=(32, 32, 1), code_shape=(1, 1, 8), levels=2, stochastic_decoder=True
)
_VARINT_EDGES = [
    (0, 1),
    (127, 1),
    (128, 2),
    (2**14 - 1, 2),
    (2**14, 3),
    (2**21 - 1, 3),
    (2**21, 4),
    (2**28 - 1, 4),
]


def _keyed(layout, body: bytes) -> bytes:
    """`body` with version 2's checksum: Adler-32 of the whole fingerprint, then the body (zlib, independently)."""
    return body + struct.pack(">I", zlib.adler32(layout.fingerprint + body))


def _resealed(data: bytes, offset: int, new: bytes, layout=LAYOUT) -> bytes:
    body = bytearray(data[:-4])
    body[offset : offset + len(new)] = new
    return _keyed(layout, bytes(body))


@pytest.mark.parametrize("seed, size", _VARINT_EDGES)
def test_v2_layout_and_overhead_bound(seed, size):
    data = LAYOUT.write(seed, PAYLOAD)
    varint = bytes(
        [((seed >> (7 * i)) & 0x7F) | (0x80 if i < size - 1 else 0) for i in range(size)]
    )  # LEB128 by hand
    assert data == _keyed(LAYOUT, b"D\x02" + LAYOUT.fingerprint[:2] + varint + PAYLOAD)
    assert LAYOUT.read(data) == (seed, PAYLOAD, 2)
    overhead = len(data) - len(PAYLOAD)
    assert overhead == 8 + size <= 12 == fmt.OVERHEAD_V2_MAX
    # DPLC at 8 bits per digit: 1 byte of payload plus at most 12 bytes (version 1: 48).
    dplc8 = DPLC8.write(seed, b"\xa5")
    assert len(dplc8) == 1 + 8 + size <= 13 and DPLC8.read(dplc8) == (seed, b"\xa5", 2)
    # A model without seeds stores none: 8 bytes of overhead.
    assert RANGE_LAYOUT.write(0, b"xyz") == _keyed(RANGE_LAYOUT, b"D\x02\xaa\xaaxyz")
    assert fmt.peek(data) == fmt.Peek(version=2, tag=LAYOUT.fingerprint[:2])


def test_v2_writer_refuses_what_it_cannot_store():
    with pytest.raises(ValueError, match=r"\[0, 2\^28\)"):
        LAYOUT.write(2**28, PAYLOAD)
    with pytest.raises(ValueError, match=r"\[0, 2\^28\)"):
        LAYOUT.write(-1, PAYLOAD)
    with pytest.raises(ValueError, match="packed payload of 4 bytes"):
        LAYOUT.write(1, PAYLOAD + b"\x00")


def _refusals():
    valid = LAYOUT.write(300, PAYLOAD)  # a 2-byte seed varint: bytes 4-5, payload 6-8, checksum 9-12
    other_model = fmt.Layout(**{**LAYOUT.__dict__, "fingerprint": b"\x07\x07" + LAYOUT.fingerprint[2:]})
    same_tag = fmt.Layout(**{**LAYOUT.__dict__, "fingerprint": LAYOUT.fingerprint[:2] + b"\x00" * 6})
    wrong_index = bitpack.pack_numpy(np.r_[CODES[:-1], 3], 2)  # 3 >= L
    return [
        ("empty", b"", codec.TruncatedError, "empty"),
        ("one byte", b"D", codec.TruncatedError, "truncated"),
        ("text", b"Dear reader", codec.NotAContainerError, "not a tfdplc container"),
        ("archive", b"DA\x02" + bytes(20), codec.NotAContainerError, "archive"),
        ("short", valid[:7], codec.TruncatedError, "truncated"),
        ("version", _resealed(valid, 1, b"\x03"), codec.UnsupportedVersionError, "version 3"),
        ("other model", other_model.write(300, PAYLOAD), codec.ModelMismatchError, "another model"),
        (
            "tag byte",
            valid[:3] + bytes([valid[3] ^ 1]) + valid[4:],
            codec.ModelMismatchError,
            "another model",
        ),
        ("same tag, other model", same_tag.write(300, PAYLOAD), codec.CorruptedError, "checksum"),
        ("varint runs out", _keyed(LAYOUT, b"D\x02\x01\x02\xff\xff"), codec.TruncatedError, "varint"),
        ("varint > 4 bytes", _resealed(valid, 4, b"\xff\xff\xff\xff"), codec.CorruptedError, "longer than 4"),
        ("one byte short", valid[:-1], codec.TruncatedError, "truncated"),
        ("trailing", valid + b"\x00", codec.CorruptedError, "trailing"),
        ("seed bit", valid[:4] + bytes([valid[4] ^ 2]) + valid[5:], codec.CorruptedError, "checksum"),
        ("payload bit", valid[:7] + bytes([valid[7] ^ 1]) + valid[8:], codec.CorruptedError, "checksum"),
        ("checksum", valid[:-1] + bytes([valid[-1] ^ 0x80]), codec.CorruptedError, "checksum"),
        (
            "non-minimal varint",
            _keyed(LAYOUT, b"D\x02\x01\x02\x85\x00" + PAYLOAD),
            codec.CorruptedError,
            "minimal",
        ),
        ("index >= L", LAYOUT.write(300, wrong_index), codec.CorruptedError, "out of range"),
        ("padding", _resealed(valid, 8, bytes([valid[8] | 1])), codec.CorruptedError, "padding"),
    ]


@pytest.mark.parametrize("name, data, error, message", _refusals(), ids=[r[0] for r in _refusals()])
def test_every_v2_refusal_has_its_error_in_python_and_the_graph(name, data, error, message):
    with pytest.raises(error, match=message):
        LAYOUT.read(data)
    expected = _GRAPH_MESSAGES.get(error, "corrupted")
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"tfdplc container: .*{expected}"):
        _graph_read(tf.constant([LAYOUT.write(1, PAYLOAD), data]))


def _damaged(valid: bytes):
    """Every single-bit flip, every truncation and every one-byte deletion of a file."""
    for position in range(len(valid)):
        for bit in range(8):
            yield valid[:position] + bytes([valid[position] ^ (1 << bit)]) + valid[position + 1 :]
        yield valid[:position] + valid[position + 1 :]
        yield valid[:position]


@pytest.mark.parametrize(
    "layout, payload", [(LAYOUT, PAYLOAD), (RANGE_LAYOUT, b"range coded")], ids=["packed", "range"]
)
def test_every_bit_flip_truncation_and_deletion_is_refused_by_both_readers(layout, payload):
    valid = layout.write(2**21 if layout.uses_seed else 0, payload)
    read = _graph_read if layout is LAYOUT else _graph_read_range
    damaged = list(_damaged(valid))
    assert len(damaged) == 10 * len(valid)
    for data in damaged:
        with pytest.raises(codec.CodecError):
            layout.read(data)
    # The graph's checks refuse each one alone (`graph.refusals`: the reader's verdict per string, one call).
    verdicts = graph.refusals(layout, tf.constant(damaged)).numpy()
    assert all(v.startswith(b"tfdplc container: ") for v in verdicts), [
        d for d, v in zip(damaged, verdicts) if not v
    ]
    assert graph.refusals(layout, tf.constant([valid])).numpy().tolist() == [b""]
    with pytest.raises(tf.errors.InvalidArgumentError, match="tfdplc container:"):
        read(tf.constant(damaged[:1]))  # and the reader raises


def test_graph_writes_and_reads_v2_as_python_does_and_still_reads_v1():
    seeds = [seed for seed, _ in _VARINT_EDGES]
    payloads = [bitpack.pack_numpy(np.roll(CODES, i), 2) for i in range(len(seeds))]
    written = graph.write_containers(LAYOUT, tf.constant(seeds, tf.int64), tf.constant(payloads)).numpy()
    assert written.tolist() == [LAYOUT.write(s, p) for s, p in zip(seeds, payloads)]
    # One batch mixing both versions: each string is read as the version it announces.
    mixed = list(written) + [fmt.pack(LAYOUT.header(2**62 + 5), payloads[0])]
    read_seeds, codes = _graph_read(tf.constant(mixed))
    assert read_seeds.numpy().tolist() == seeds + [2**62 + 5]
    np.testing.assert_array_equal(codes, np.stack([np.roll(CODES, i) for i in range(len(seeds))] + [CODES]))


def test_graph_adler32_continues_a_checksum():
    blobs = [b"", b"a", bytes(range(256)) * 40]
    start = zlib.adler32(LAYOUT.fingerprint)
    got = graph.adler32(tf.constant(blobs), start=start).numpy().tolist()
    assert got == [zlib.adler32(LAYOUT.fingerprint + b) for b in blobs]


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(_mutations(size=len(LAYOUT.write(2**20, PAYLOAD))))
def test_fuzz_v2_damage_raises_only_documented_errors(mutation):
    valid = LAYOUT.write(2**20, PAYLOAD)
    data = _mutate(valid, mutation)
    if data == valid:
        return
    with pytest.raises(codec.CodecError):
        LAYOUT.read(data)


def test_a_model_writes_v2_and_still_decodes_its_v1_files(dplc):  # noqa: F811 (the fixture)
    _, dplc_codec = dplc
    images = np.random.default_rng(3).integers(0, 256, size=(6, 32, 32, 1), dtype=np.uint8)
    files = dplc_codec.compress(images)  # random seeds in [0, 2^28)
    parsed = [dplc_codec.parse(f) for f in files]
    assert {version for _, _, version in parsed} == {2}
    overheads = [len(f) - len(payload) for f, (_, payload, _) in zip(files, parsed)]
    assert all(8 < overhead <= 12 for overhead in overheads), overheads
    # The same seeds and codes as version 1 files (48-byte overhead) decode to the same images on every path.
    old = [fmt.pack(dplc_codec.layout.header(seed), payload) for seed, payload, _ in parsed]
    assert [len(o) - len(f) for o, f in zip(old, files)] == [48 - h for h in overheads]
    expected = dplc_codec.decompress(files)
    np.testing.assert_array_equal(dplc_codec.decompress(old), expected)
    np.testing.assert_array_equal(dplc_codec.graph_decompress(old[:3] + files[3:]), expected)
    codes, seeds = dplc_codec.decompress_codes(old)
    assert seeds.tolist() == [seed for seed, _, _ in parsed]
    np.testing.assert_array_equal(codes, dplc_codec.decompress_codes(files)[0])

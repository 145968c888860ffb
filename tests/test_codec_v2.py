"""Format versions 3 and 2 (compact single files): layout, overhead bound, every damage class refused by both
readers, and version 3's check value (KMX-32) against an independent computation."""

import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


VERSIONS = [3, 2]


def _fmix(x: int) -> int:
    """murmur3's 32-bit finaliser with Python ints (an independent reference for `checkvalue.mix32`)."""
    x ^= x >> 16
    x = (x * 0x85EBCA6B) % 2**32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) % 2**32
    return x ^ (x >> 16)


def _kmx32(key: bytes, data: bytes) -> int:
    """KMX-32 as the module docstring of `tfdplc.codec.checkvalue` defines it, word by word with ints."""
    k0, k1 = int.from_bytes(key[:4], "big"), int.from_bytes(key[4:], "big")
    total = 0
    for j in range(0, len(data), 4):
        word = int.from_bytes(data[j : j + 4].ljust(4, b"\0"), "big")
        total += _fmix(_fmix(word ^ _fmix((j // 4 + k0) % 2**32)) ^ k1)
    return _fmix(((_fmix((total % 2**32) ^ k0) + len(data)) % 2**32) ^ k1)


def _keyed(layout, body: bytes, version: int = None) -> bytes:
    """`body` with its check value, computed independently: the version is the body's second byte.

    Version 3: KMX-32 (`_kmx32`); version 2: Adler-32 of the whole fingerprint, then the body (zlib).
    """
    version = body[1] if version is None else version
    check = _kmx32(layout.fingerprint, body) if version == 3 else zlib.adler32(layout.fingerprint + body)
    return body + struct.pack(">I", check)


def _resealed(data: bytes, offset: int, new: bytes, layout=LAYOUT) -> bytes:
    body = bytearray(data[:-4])
    body[offset : offset + len(new)] = new
    return _keyed(layout, bytes(body), version=data[1])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("seed, size", _VARINT_EDGES)
def test_v2_layout_and_overhead_bound(seed, size, version):
    data = LAYOUT.write(seed, PAYLOAD, version=version)
    varint = bytes(
        [((seed >> (7 * i)) & 0x7F) | (0x80 if i < size - 1 else 0) for i in range(size)]
    )  # LEB128 by hand
    assert data == _keyed(LAYOUT, b"D" + bytes([version]) + LAYOUT.fingerprint[:2] + varint + PAYLOAD)
    assert LAYOUT.read(data) == (seed, PAYLOAD, version)
    overhead = len(data) - len(PAYLOAD)
    assert overhead == 8 + size <= 12 == fmt.OVERHEAD_V2_MAX
    # DPLC at 8 bits per digit: 1 byte of payload plus at most 12 bytes (version 1: 48).
    dplc8 = DPLC8.write(seed, b"\xa5", version=version)
    assert len(dplc8) == 1 + 8 + size <= 13 and DPLC8.read(dplc8) == (seed, b"\xa5", version)
    # A model without seeds stores none: 8 bytes of overhead.
    expected = _keyed(RANGE_LAYOUT, b"D" + bytes([version]) + b"\xaa\xaaxyz")
    assert RANGE_LAYOUT.write(0, b"xyz", version=version) == expected
    assert fmt.peek(data) == fmt.Peek(version=version, tag=LAYOUT.fingerprint[:2])
    if version == fmt.VERSION:
        assert LAYOUT.write(seed, PAYLOAD) == data  # writers write version 3


def test_v2_writer_refuses_what_it_cannot_store():
    with pytest.raises(ValueError, match=r"\[0, 2\^28\)"):
        LAYOUT.write(2**28, PAYLOAD)
    with pytest.raises(ValueError, match=r"\[0, 2\^28\)"):
        LAYOUT.write(-1, PAYLOAD)
    with pytest.raises(ValueError, match="packed payload of 4 bytes"):
        LAYOUT.write(1, PAYLOAD + b"\x00")
    for version in (1, 4):
        with pytest.raises(ValueError, match="versions 2 and 3"):
            LAYOUT.write(1, PAYLOAD, version=version)


def _refusals(version):
    # A 2-byte seed varint: bytes 4-5, payload 6-8, checksum 9-12.
    valid = LAYOUT.write(300, PAYLOAD, version=version)
    mark = b"D" + bytes([version])
    other_model = fmt.Layout(**{**LAYOUT.__dict__, "fingerprint": b"\x07\x07" + LAYOUT.fingerprint[2:]})
    same_tag = fmt.Layout(**{**LAYOUT.__dict__, "fingerprint": LAYOUT.fingerprint[:2] + b"\x00" * 6})
    wrong_index = bitpack.pack_numpy(np.r_[CODES[:-1], 3], 2)  # 3 >= L
    return [
        ("empty", b"", codec.TruncatedError, "empty"),
        ("one byte", b"D", codec.TruncatedError, "truncated"),
        ("text", b"Dear reader", codec.NotAContainerError, "not a tfdplc container"),
        ("archive", b"DA\x02" + bytes(20), codec.NotAContainerError, "archive"),
        ("short", valid[:7], codec.TruncatedError, "truncated"),
        ("version", _resealed(valid, 1, b"\x04"), codec.UnsupportedVersionError, "version 4"),
        (
            "other model",
            other_model.write(300, PAYLOAD, version=version),
            codec.ModelMismatchError,
            "another model",
        ),
        (
            "tag byte",
            valid[:3] + bytes([valid[3] ^ 1]) + valid[4:],
            codec.ModelMismatchError,
            "another model",
        ),
        (
            "same tag, other model",
            same_tag.write(300, PAYLOAD, version=version),
            codec.CorruptedError,
            "checksum",
        ),
        ("varint runs out", _keyed(LAYOUT, mark + b"\x01\x02\xff\xff"), codec.TruncatedError, "varint"),
        ("varint > 4 bytes", _resealed(valid, 4, b"\xff\xff\xff\xff"), codec.CorruptedError, "longer than 4"),
        ("one byte short", valid[:-1], codec.TruncatedError, "truncated"),
        ("trailing", valid + b"\x00", codec.CorruptedError, "trailing"),
        ("seed bit", valid[:4] + bytes([valid[4] ^ 2]) + valid[5:], codec.CorruptedError, "checksum"),
        ("payload bit", valid[:7] + bytes([valid[7] ^ 1]) + valid[8:], codec.CorruptedError, "checksum"),
        ("checksum", valid[:-1] + bytes([valid[-1] ^ 0x80]), codec.CorruptedError, "checksum"),
        (
            "non-minimal varint",
            _keyed(LAYOUT, mark + b"\x01\x02\x85\x00" + PAYLOAD),
            codec.CorruptedError,
            "minimal",
        ),
        (
            "index >= L",
            LAYOUT.write(300, wrong_index, version=version),
            codec.CorruptedError,
            "out of range",
        ),
        ("padding", _resealed(valid, 8, bytes([valid[8] | 1])), codec.CorruptedError, "padding"),
    ]


_CASES = [(version, *case) for version in VERSIONS for case in _refusals(version)]


@pytest.mark.parametrize(
    "version, name, data, error, message", _CASES, ids=[f"v{c[0]}-{c[1]}" for c in _CASES]
)
def test_every_v2_refusal_has_its_error_in_python_and_the_graph(version, name, data, error, message):
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


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "layout, payload", [(LAYOUT, PAYLOAD), (RANGE_LAYOUT, b"range coded")], ids=["packed", "range"]
)
def test_every_bit_flip_truncation_and_deletion_is_refused_by_both_readers(layout, payload, version):
    valid = layout.write(2**21 if layout.uses_seed else 0, payload, version=version)
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


def test_graph_writes_v3_as_python_does_and_still_reads_v2_and_v1():
    seeds = [seed for seed, _ in _VARINT_EDGES]
    payloads = [bitpack.pack_numpy(np.roll(CODES, i), 2) for i in range(len(seeds))]
    written = graph.write_containers(LAYOUT, tf.constant(seeds, tf.int64), tf.constant(payloads)).numpy()
    assert written.tolist() == [LAYOUT.write(s, p) for s, p in zip(seeds, payloads)]
    assert {w[1] for w in written} == {3}
    # One batch mixing all versions: each string is read as the version it announces.
    old = [_keyed(LAYOUT, w[:1] + b"\x02" + w[2:-4]) for w in written]  # the same files in version 2
    mixed = list(written) + old + [fmt.pack(LAYOUT.header(2**62 + 5), payloads[0])]
    read_seeds, codes = _graph_read(tf.constant(mixed))
    assert read_seeds.numpy().tolist() == seeds + seeds + [2**62 + 5]
    rolled = [np.roll(CODES, i) for i in range(len(seeds))]
    np.testing.assert_array_equal(codes, np.stack(rolled + rolled + [CODES]))


def test_graph_adler32_continues_a_checksum():
    blobs = [b"", b"a", bytes(range(256)) * 40]
    start = zlib.adler32(LAYOUT.fingerprint)
    got = graph.adler32(tf.constant(blobs), start=start).numpy().tolist()
    assert got == [zlib.adler32(LAYOUT.fingerprint + b) for b in blobs]


@pytest.mark.parametrize("version", VERSIONS)
@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(_mutations(size=len(LAYOUT.write(2**20, PAYLOAD))))
def test_fuzz_v2_damage_raises_only_documented_errors(version, mutation):
    valid = LAYOUT.write(2**20, PAYLOAD, version=version)
    data = _mutate(valid, mutation)
    if data == valid:
        return
    with pytest.raises(codec.CodecError):
        LAYOUT.read(data)


def test_a_model_writes_v3_and_still_decodes_its_v2_and_v1_files(dplc):  # noqa: F811 (the fixture)
    _, dplc_codec = dplc
    images = np.random.default_rng(3).integers(0, 256, size=(6, 32, 32, 1), dtype=np.uint8)
    files = dplc_codec.compress(images)  # random seeds in [0, 2^28)
    parsed = [dplc_codec.parse(f) for f in files]
    assert {version for _, _, version in parsed} == {3}
    # Version 2 files of the same images (assembled independently with zlib) decode to the same images.
    v2 = [_keyed(dplc_codec.layout, f[:1] + b"\x02" + f[2:-4]) for f in files]
    assert [dplc_codec.parse(f)[2] for f in v2] == [2] * len(files)
    np.testing.assert_array_equal(dplc_codec.decompress(v2), dplc_codec.decompress(files))
    np.testing.assert_array_equal(
        dplc_codec.graph_decompress(v2[:3] + files[3:]), dplc_codec.decompress(files)
    )
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


# ------------------------------------------------------------------------------------------------------
# Version 3's check value (issue 29): KMX-32 in Python and in the graph against the word-by-word reference,
# and a file of another model with the same tag refused where version 2's keyed Adler-32 accepts it.


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(st.binary(max_size=70), min_size=1, max_size=5), st.binary(min_size=8, max_size=8))
def test_kmx32_in_python_and_the_graph_equals_the_reference(blobs, key):
    from tfdplc.codec import checkvalue

    expected = [_kmx32(key, b) for b in blobs]
    assert [checkvalue.check32(key, b) for b in blobs] == expected
    assert graph.keyed_check(tf.constant(blobs), key).numpy().tolist() == expected
    # Prefixes (the graph checks all but a file's last 4 bytes): lengths inside each string.
    lengths = [len(b) // 2 for b in blobs]
    got = graph.keyed_check(tf.constant(blobs), key, tf.constant(lengths, tf.int64)).numpy().tolist()
    assert got == [_kmx32(key, b[:n]) for b, n in zip(blobs, lengths)]


def test_kmx32_detects_every_change_inside_a_word_and_depends_on_the_length():
    key = bytes(range(8))
    data = bytes(range(40, 52))
    reference = _kmx32(key, data)
    for position in range(len(data)):  # every value of every byte (a bijection per word and position)
        for value in range(256):
            if value != data[position]:
                changed = data[:position] + bytes([value]) + data[position + 1 :]
                assert _kmx32(key, changed) != reference
    assert _kmx32(key, data + b"\0") != reference  # zero padding inside the last word: the length differs
    # Two words swapped: the position enters each word's mix.
    assert _kmx32(key, data[4:8] + data[:4] + data[8:]) != reference


def test_a_same_tag_file_of_another_model_passes_v2_but_not_v3():
    # Fingerprints whose Adler-32 states agree: +1, -2, +1 at bytes 2, 3, 4 keep both sums (weights 6, 5, 4).
    first = bytes([0x12, 0x34, 50, 60, 70, 80, 90, 100])
    second = bytes([0x12, 0x34, 51, 58, 71, 80, 90, 100])
    assert zlib.adler32(first) == zlib.adler32(second)
    one, two = (fmt.Layout(**{**DPLC8.__dict__, "fingerprint": f}) for f in (first, second))
    for seed in (0, 5, 300):
        # Version 2: every file of one model is a valid file of the other (the weakness version 3 fixes).
        assert two.read(one.write(seed, b"\xa5", version=2)) == (seed, b"\xa5", 2)
        with pytest.raises(codec.CorruptedError, match="checksum mismatch"):
            two.read(one.write(seed, b"\xa5"))
        verdict = graph.refusals(two, tf.constant([one.write(seed, b"\xa5")])).numpy()[0]
        assert b"checksum mismatch" in verdict


def test_v3_refuses_same_tag_files_of_random_models():
    from tfdplc.codec import checkvalue

    # 20,000 random same-tag fingerprint pairs on the 10-byte quickstart file: a check that separates
    # models passes about 2^-32 of them (0 expected here), and each 16-bit half about 2^-16 (0.3 expected);
    # version 2's keyed Adler-32 lets its low half pass about 1.6e-3 of them (33 expected).
    rng = np.random.default_rng(0)
    low_v3 = low_v2 = accepted = 0
    for _ in range(20000):
        fingerprint = bytes(rng.integers(0, 256, 8, dtype=np.uint8))
        other = fingerprint[:2] + bytes(rng.integers(0, 256, 6, dtype=np.uint8))
        body = b"D\x03" + fingerprint[:2] + bytes([int(rng.integers(128)), int(rng.integers(256))])
        difference = checkvalue.check32(fingerprint, body) ^ checkvalue.check32(other, body)
        accepted += difference == 0
        low_v3 += difference & 0xFFFF == 0
        low_v2 += (fmt.keyed_adler32(fingerprint, body) ^ fmt.keyed_adler32(other, body)) & 0xFFFF == 0
    assert accepted == 0 and low_v3 <= 3 and low_v2 >= 15, (accepted, low_v3, low_v2)

"""The container format, bit packing, the container in TF ops, fuzzing, and the objectives' codec interface."""

import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfdplc import codec, nets
from tfdplc.codec import bitpack, graph
from tfdplc.codec import container as fmt
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import CAE, DPLC, GC, WGANGP

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

# A 3-symbol code of 10 indices: 2 bits each, 20 bits in 3 bytes, so an index of 3 and the 4 padding bits
# are representable but invalid.
LAYOUT = fmt.Layout(
    fingerprint=bytes(range(1, 9)),
    image_shape=(32, 32, 1),
    code_shape=(1, 2, 5),
    levels=3,
    stochastic_decoder=True,
)
RANGE_LAYOUT = fmt.Layout(fingerprint=b"\xaa" * 8, image_shape=(28, 28, 1), code_shape=(7, 7, 4), levels=None)
CODES = np.array([0, 1, 2, 2, 1, 0, 0, 2, 1, 1])


def _valid(seed=12345, codes=CODES, layout=LAYOUT):
    return fmt.pack(layout.header(seed), bitpack.pack_numpy(codes, layout.bits_per_symbol))


def _resealed(data: bytes, offset: int, new: bytes) -> bytes:
    """Overwrites bytes and recomputes the checksum: an intact file with other field values."""
    body = bytearray(data[:-4])
    body[offset : offset + len(new)] = new
    return bytes(body) + struct.pack(">I", zlib.adler32(bytes(body)))


# ------------------------------------------------------------------------------------------------------
# The container in Python.


def test_container_has_the_documented_layout():
    data = _valid(seed=2**63 - 1)
    payload = bitpack.pack_numpy(CODES, 2)
    assert len(data) == fmt.OVERHEAD + len(payload) == 48 + 3
    assert data[:4] == b"DPLC" and data[4] == 1 and data[5] == fmt.PAYLOAD_PACKED
    assert data[6] == fmt.FLAG_STOCHASTIC_DECODER and data[7] == 2
    assert data[8:16] == LAYOUT.fingerprint
    assert struct.unpack(">6HI", data[16:32]) == (32, 32, 1, 1, 2, 5, 3)
    assert struct.unpack(">QI", data[32:44]) == (2**63 - 1, len(payload))
    assert data[44:-4] == payload
    assert struct.unpack(">I", data[-4:])[0] == zlib.adler32(data[:-4])
    header, read_payload = fmt.unpack(data)
    assert header == LAYOUT.header(2**63 - 1) and read_payload == payload
    LAYOUT.check(header, read_payload)
    np.testing.assert_array_equal(bitpack.unpack_numpy(read_payload, 10, 2, 3), CODES)


def _refusals():
    valid = _valid()
    other_model = fmt.Layout(**{**LAYOUT.__dict__, "fingerprint": b"\x00" * 8})
    wrong_index = bitpack.pack_numpy(np.r_[CODES[:-1], 3], 2)  # 3 >= L
    return [
        ("empty", b"", codec.TruncatedError, "empty input"),
        ("magic prefix", b"DP", codec.TruncatedError, "truncated"),
        ("png", b"\x89PNG\r\n\x1a\n" + bytes(60), codec.NotAContainerError, "not a tfdplc container"),
        ("short", valid[:40], codec.TruncatedError, "truncated"),
        ("one byte short", valid[:-1], codec.TruncatedError, "announces"),
        ("trailing", valid + b"\x00", codec.CorruptedError, "trailing"),
        ("version", _resealed(valid, 4, b"\x02"), codec.UnsupportedVersionError, "version 2"),
        ("payload bit", valid[:45] + bytes([valid[45] ^ 1]) + valid[46:], codec.CorruptedError, "checksum"),
        ("checksum", valid[:-1] + bytes([valid[-1] ^ 0x80]), codec.CorruptedError, "checksum"),
        (
            "other model",
            fmt.pack(other_model.header(5), valid[44:-4]),
            codec.ModelMismatchError,
            "another model",
        ),
        ("image shape", _resealed(valid, 16, struct.pack(">H", 64)), codec.CorruptedError, "image_shape"),
        ("seed >= 2^63", _resealed(valid, 32, b"\x80"), codec.CorruptedError, r"2\^63"),
        ("flags", _resealed(valid, 6, b"\x05"), codec.CorruptedError, "flags"),
        ("kind", _resealed(valid, 5, b"\x07"), codec.CorruptedError, "payload kind"),
        ("index >= L", fmt.pack(LAYOUT.header(1), wrong_index), codec.CorruptedError, "out of range"),
        ("padding", _resealed(valid, 46, bytes([valid[46] | 1])), codec.CorruptedError, "padding"),
        (
            "payload length",
            fmt.pack(LAYOUT.header(1), valid[44:-4] + b"\x00"),
            codec.CorruptedError,
            "payload of 4 bytes",
        ),
    ]


@pytest.mark.parametrize("name, data, error, message", _refusals(), ids=[r[0] for r in _refusals()])
def test_every_refusal_has_its_specific_error(name, data, error, message):
    with pytest.raises(error, match=message):
        LAYOUT.check(*fmt.unpack(data))
    with pytest.raises(error, match=message):  # the reader of both versions dispatches to version 1
        LAYOUT.read(data)


def test_pack_refuses_out_of_range_fields():
    with pytest.raises(ValueError, match="seed"):
        fmt.pack(LAYOUT.header(2**63), b"")
    with pytest.raises(ValueError, match="seed"):
        fmt.pack(LAYOUT.header(-1), b"")
    with pytest.raises(ValueError, match=r"image_shape must be three ints in \[1, 65535\]"):
        fmt.Layout(fingerprint=b"x" * 8, image_shape=(70000, 1, 1), code_shape=(1, 1, 1), levels=2)
    with pytest.raises(TypeError):
        fmt.unpack("DPLC")


# ------------------------------------------------------------------------------------------------------
# Bit packing.


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8, 13])
@pytest.mark.parametrize("n", [0, 1, 7, 13])
def test_tf_bit_packing_matches_numpy_and_round_trips(bits, n):
    rng = np.random.default_rng(bits * 100 + n)
    codes = rng.integers(0, 2**bits, size=(3, n)).astype(np.int32)
    packed = bitpack.pack_bits(tf.constant(codes), bits).numpy()
    assert packed.shape == (3, bitpack.packed_size(n, bits))
    for row in range(3):
        assert packed[row].tobytes() == bitpack.pack_numpy(codes[row], bits)
        np.testing.assert_array_equal(bitpack.unpack_numpy(packed[row].tobytes(), n, bits), codes[row])
    unpacked, padding_ok = bitpack.unpack_bits(tf.constant(packed), n, bits)
    np.testing.assert_array_equal(unpacked, codes)
    assert padding_ok.numpy().all()


def test_pack_bits_is_msb_first_and_pads_with_zeros():
    assert bitpack.pack_numpy([1, 0, 1], 1) == bytes([0b10100000])
    assert bitpack.pack_numpy([2, 1, 3], 2) == bytes([0b10011100])
    _, padding_ok = bitpack.unpack_bits(tf.constant([[0b10100001]], tf.uint8), 3, 1)
    assert not padding_ok.numpy()[0]
    with pytest.raises(ValueError, match="indices"):
        bitpack.pack_numpy([4], 2)


@pytest.mark.parametrize("n, bits", [(10, 2), (3, 1), (1, 3), (5, 5), (2, 13)])
def test_every_padding_bit_is_checked_by_both_readers(n, bits):
    """Each of the 8 - (n * bits) % 8 padding bits alone is refused by the NumPy and the graph reader."""
    codes = np.arange(n) % (2**bits)
    payload = bitpack.pack_numpy(codes, bits)
    pad = 8 * len(payload) - n * bits
    assert 0 < pad < 8
    damaged = []
    for position in range(n * bits, 8 * len(payload)):  # bit index, MSB first
        data = bytearray(payload)
        data[position // 8] |= 0x80 >> (position % 8)
        damaged.append(bytes(data))
        with pytest.raises(codec.CorruptedError, match="padding"):
            bitpack.unpack_numpy(bytes(data), n, bits)
    rows = np.frombuffer(b"".join([payload, *damaged]), np.uint8).reshape(pad + 1, len(payload))
    unpacked, padding_ok = bitpack.unpack_bits(tf.constant(rows), n, bits)
    assert padding_ok.numpy().tolist() == [True] + [False] * pad
    np.testing.assert_array_equal(unpacked[0], codes)
    # The container reader in TF ops refuses each of them as well.
    layout = fmt.Layout(fingerprint=b"p" * 8, image_shape=(8, 8, 1), code_shape=(1, 1, n), levels=2**bits)
    good = fmt.pack(layout.header(0), payload)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def read(strings):
        return graph.read_containers(layout, strings)

    read(tf.constant([good]))
    for data in damaged:
        with pytest.raises(tf.errors.InvalidArgumentError, match="non-zero padding bits"):
            read(tf.constant([good, fmt.pack(layout.header(0), data)]))


# ------------------------------------------------------------------------------------------------------
# The container in TF ops: same bytes, same checks.


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
def _graph_read(strings):
    return graph.read_containers(LAYOUT, strings)


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
def _graph_read_range(strings):
    return graph.read_containers(RANGE_LAYOUT, strings)


def test_graph_writes_the_same_bytes_as_python():
    # Version 2 (what writers write); RANGE_LAYOUT's model uses no seed, so none is stored.
    payloads = [b"", b"\x00", bytes(range(256)) * 3, b"abc"]
    strings = graph.write_containers(RANGE_LAYOUT, tf.zeros([4], tf.int64), tf.constant(payloads))
    for payload, written in zip(payloads, strings.numpy()):
        assert written == RANGE_LAYOUT.write(0, payload)
    read_seeds, read_payloads = _graph_read_range(strings)
    assert read_seeds.numpy().tolist() == [0] * 4 and read_payloads.numpy().tolist() == payloads
    # Version 1 files are still read, with their 63-bit seeds.
    seeds = [0, 1, 2**40 + 7, 2**63 - 1]
    old = [fmt.pack(RANGE_LAYOUT.header(seed), payload) for seed, payload in zip(seeds, payloads)]
    read_seeds, read_payloads = _graph_read_range(tf.constant(old))
    assert read_seeds.numpy().tolist() == seeds and read_payloads.numpy().tolist() == payloads


def test_graph_reads_packed_codes_and_seeds():
    data = [_valid(seed=7), _valid(seed=2**62 + 3, codes=CODES[::-1])]
    seeds, codes = _graph_read(tf.constant(data))
    assert seeds.numpy().tolist() == [7, 2**62 + 3]
    np.testing.assert_array_equal(codes, np.stack([CODES, CODES[::-1]]))


_GRAPH_MESSAGES = {
    codec.TruncatedError: "truncated",
    codec.NotAContainerError: "bad magic",
    codec.UnsupportedVersionError: "version",
    codec.ModelMismatchError: "another model",
}


@pytest.mark.parametrize("name, data, error, message", _refusals(), ids=[r[0] for r in _refusals()])
def test_graph_refuses_what_python_refuses(name, data, error, message):
    # Longer than any container of the model: refused before anything else is read.
    expected = "too long" if len(data) > LAYOUT.max_size else _GRAPH_MESSAGES.get(error, "corrupted")
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"tfdplc container: .*{expected}"):
        _graph_read(tf.constant([_valid(), data]))


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
@settings(max_examples=50, deadline=None, derandomize=True)
def test_graph_adler32_equals_zlib(blobs):
    assert graph.adler32(tf.constant(blobs)).numpy().tolist() == [zlib.adler32(b) for b in blobs]
    cut = [len(b) // 2 for b in blobs]
    prefixes = graph.adler32(tf.constant(blobs), tf.constant(cut, tf.int64)).numpy().tolist()
    assert prefixes == [zlib.adler32(b[:n]) for b, n in zip(blobs, cut)]


# ------------------------------------------------------------------------------------------------------
# Fuzzing: random damage to valid files gives only the documented errors, never a decoded payload.


def _mutations(size=None):
    size = size or len(_valid())
    position = st.integers(0, size - 1)
    return st.one_of(
        st.lists(st.tuples(position, st.integers(0, 7)), min_size=1, max_size=8).map(
            lambda flips: ("flip", flips)
        ),
        st.lists(st.tuples(position, st.integers(0, 255)), min_size=1, max_size=8).map(lambda s: ("set", s)),
        st.integers(0, size - 1).map(lambda n: ("truncate", n)),
        st.binary(min_size=1, max_size=64).map(lambda b: ("append", b)),
        st.tuples(position, st.binary(min_size=1, max_size=8)).map(lambda t: ("insert", t)),
        st.tuples(position, st.integers(1, 8)).map(lambda t: ("delete", t)),
        st.binary(max_size=200).map(lambda b: ("random", b)),
        st.binary(max_size=100).map(lambda b: ("magic+random", b)),
    )


def _mutate(valid: bytes, mutation) -> bytes:
    kind, arg = mutation
    data = bytearray(valid)
    if kind == "flip":
        for pos, bit in arg:
            data[pos] ^= 1 << bit
    elif kind == "set":
        for pos, value in arg:
            data[pos] = value
    elif kind == "truncate":
        del data[arg:]
    elif kind == "append":
        data += arg
    elif kind == "insert":
        data[arg[0] : arg[0]] = arg[1]
    elif kind == "delete":
        del data[arg[0] : arg[0] + arg[1]]
    elif kind == "random":
        data = bytearray(arg)
    else:
        data = bytearray(b"DPLC" + arg)
    return bytes(data)


@FUZZ
@given(_mutations())
def test_fuzz_damaged_containers_raise_only_documented_errors(mutation):
    valid = _valid()
    data = _mutate(valid, mutation)
    if data == valid:
        return  # e.g. setting a byte to its own value: nothing was damaged
    with pytest.raises(codec.CodecError):
        LAYOUT.check(*fmt.unpack(data))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(_mutations(), st.booleans())
def test_fuzz_graph_refuses_damaged_containers(mutation, range_coded):
    # Both payload kinds: the packed reader unpacks bits, the range-coded one cuts a substring.
    valid = fmt.pack(RANGE_LAYOUT.header(9), b"range coded payload") if range_coded else _valid()
    data = _mutate(valid, mutation)
    if data == valid:
        return
    with pytest.raises(tf.errors.InvalidArgumentError, match="tfdplc container:"):
        (_graph_read_range if range_coded else _graph_read)(tf.constant([data]))


# ------------------------------------------------------------------------------------------------------
# The objectives' codec interface, through an in-memory codec.


def _sensitive(model):
    """Scales kernels: with N(0, 0.02) weights a tiny generator outputs a near-constant image."""
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * 20.0)
    return model


def _tiny_cae(k=4, seed=0):
    tf.keras.utils.set_random_seed(seed)
    model = CAE(
        encoder=nets.encoder_E(32, k, width=4, channels=1),
        mapping=nets.mapping_B(32, k, m=8, n_blocks=1, width=8, noise=False),
        generator=_sensitive(nets.generator_G(32, m=8, width=4, channels=1)),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        optimizer=tf.keras.optimizers.Adam(1e-2),
    )
    model(tf.zeros([1, 32, 32, 1]))
    return model


def _tiny_dplc(k=2, seed=0):
    tf.keras.utils.set_random_seed(seed)
    model = DPLC(
        encoder=nets.encoder_E(32, k, width=4, channels=1),
        mapping=nets.mapping_B(32, k, m=8, n_blocks=1, width=8, noise=True, seed=1),
        quantizer=ScalarQuantizer((-1.0, 0.0, 1.0)),
        optimizer=tf.keras.optimizers.Adam(1e-2),
        lambda_mmd=1.0,
        generator=_sensitive(nets.generator_G(32, m=8, width=4, channels=1)),
        seed=2,
    )
    model(tf.zeros([1, 32, 32, 1]))
    return model


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 1), dtype=np.uint8)


def _as_uint8(images):
    return np.round(np.clip(np.asarray(images), 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cae():
    model = _tiny_cae()
    return model, codec.Codec.from_model(model)


@pytest.fixture(scope="module")
def dplc():
    model = _tiny_dplc()
    return model, codec.Codec.from_model(model)


def test_cae_round_trip_is_bit_exact(cae):
    model, cae_codec = cae
    assert cae_codec.spec == codec.CodecSpec(
        image_shape=(32, 32, 1), code_shape=(2, 2, 4), levels=2, method="cae"
    )
    images = _images(5)
    files = cae_codec.compress(images)
    assert [len(f) for f in files] == [fmt.MIN_SIZE_V2 + 2] * 5  # 16 bits of code, 2 bytes; no seed
    assert cae_codec.payload_bits(files[0]) == model.rate_bits == 16
    floats = images.astype(np.float32) / 255.0
    expected_codes = model.quantizer.indices(model.encoder(floats)).numpy()
    codes, seeds = cae_codec.decompress_codes(files)
    np.testing.assert_array_equal(codes, expected_codes)
    assert seeds.tolist() == [0] * 5  # deterministic model: no seed
    np.testing.assert_array_equal(cae_codec.decompress(files), _as_uint8(model.reconstruct(floats)))
    # A file alone decodes as in a batch.
    np.testing.assert_array_equal(cae_codec.decompress(files[3]), cae_codec.decompress(files)[3])


def test_dplc_decodes_reproducibly_from_the_seed(dplc):
    model, dplc_codec = dplc
    spec = dplc_codec.spec
    assert spec.stochastic_decoder and spec.can_sample and spec.levels == 3
    images = _images(4, seed=1)
    files = dplc_codec.compress(images, seeds=[11, 12, 13, 14])
    assert len(files[0]) == fmt.MIN_SIZE_V2 + 1 + 2  # a 1-byte seed, 8 ternary indices x 2 bits
    first = dplc_codec.decompress(files)
    np.testing.assert_array_equal(first, dplc_codec.decompress(files))
    np.testing.assert_array_equal(dplc_codec.decompress(files[2]), first[2])
    other = dplc_codec.decompress(files, seeds=99)
    assert np.abs(other.astype(int) - first).max() > 0  # another draw of the stochastic decoder
    # Exactly the objective's decoder with the noise drawn from each image's seed.
    floats = images.astype(np.float32) / 255.0
    seeds = tf.constant([11, 12, 13, 14], tf.int64)
    noise = codec.per_example_uniform(seeds, [8])
    expected = model.decode(model.encode(floats), noise=noise)
    np.testing.assert_array_equal(first, _as_uint8(expected))
    codes, read_seeds = dplc_codec.decompress_codes(files)
    np.testing.assert_array_equal(codes, model.quantizer.indices(model.encoder(floats)))
    assert read_seeds.tolist() == [11, 12, 13, 14]
    samples = dplc_codec.sample([5, 6])
    np.testing.assert_array_equal(samples, dplc_codec.sample([5, 6]))
    np.testing.assert_array_equal(samples[1], dplc_codec.sample([6])[0])


def test_dplc_at_rate_zero_writes_an_empty_payload():
    model = _tiny_dplc(k=0)
    zero_codec = codec.Codec.from_model(model)
    files = zero_codec.compress(_images(2), seeds=[1, 2])
    assert [len(f) for f in files] == [fmt.MIN_SIZE_V2 + 1] * 2 and zero_codec.payload_bits(files[0]) == 0
    decoded = zero_codec.decompress(files)
    assert decoded.shape == (2, 32, 32, 1)
    assert np.abs(decoded[0].astype(int) - decoded[1]).max() > 0  # different seeds, different draws


def test_gc_and_generator_objectives():
    tf.keras.utils.set_random_seed(0)
    gc = GC(
        encoder=nets.encoder_E(32, 2, width=4, channels=1),
        mapping=nets.mapping_B(32, 2, m=8, n_blocks=1, width=8, noise=True, seed=1),
        generator=_sensitive(nets.generator_G(32, m=8, width=4, channels=1)),
        critic=nets.critic_f(32, width=4, channels=1),
        quantizer=ScalarQuantizer(),
        optimizer=tf.keras.optimizers.Adam(),
        critic_optimizer=tf.keras.optimizers.Adam(),
        lambda_wd=1.0,
    )
    gc(tf.zeros([1, 32, 32, 1]))
    gc_codec = codec.Codec.from_model(gc)
    assert gc_codec.spec.stochastic_decoder and not gc_codec.spec.can_sample
    images = _images(3)
    files = gc_codec.compress(images, seeds=5)
    noise = codec.per_example_uniform(tf.constant([5, 5, 5], tf.int64), [8])
    expected = gc.decode(gc.encode(images.astype(np.float32) / 255.0), noise=noise)
    np.testing.assert_array_equal(gc_codec.decompress(files), _as_uint8(expected))

    wgan = WGANGP(
        generator=nets.generator_G(32, m=8, width=4, channels=1),
        critic=nets.critic_f(32, width=4, channels=1),
        generator_optimizer=tf.keras.optimizers.Adam(),
        critic_optimizer=tf.keras.optimizers.Adam(),
    )
    sampler = codec.Codec.from_model(wgan)
    assert sampler.spec == codec.CodecSpec(image_shape=(32, 32, 1), can_sample=True, method="wgan_gp")
    z = codec.per_example_normal(tf.constant([3, 4], tf.int64), [8], stream=codec.interface.SAMPLER)
    np.testing.assert_array_equal(sampler.sample([3, 4]), _as_uint8(wgan.generator(z, training=False)))
    with pytest.raises(ValueError, match="no encoder"):
        sampler.compress(_images(1))


def test_files_of_another_model_are_refused(cae):
    model, cae_codec = cae
    files = cae_codec.compress(_images(2))
    retrained = codec.Codec.from_model(_tiny_cae(seed=1))  # same architecture, other weights
    assert retrained.fingerprint != cae_codec.fingerprint
    with pytest.raises(codec.ModelMismatchError, match="container 1: .*another model"):
        retrained.decompress([retrained.compress(_images(1))[0], files[1]])
    with pytest.raises(codec.CorruptedError, match="another model"):
        retrained._call(
            "decompress", compressed_bytes=np.asarray(files, dtype=object)
        )  # the graph's own check
    # The same weights give the same fingerprint, hence the same bytes.
    copy = _tiny_cae(seed=1)
    copy.set_weights(model.get_weights())
    assert codec.Codec.from_model(copy).compress(_images(2)) == files


def test_bad_inputs_get_clear_errors(cae, dplc):
    _, cae_codec = cae
    _, dplc_codec = dplc
    with pytest.raises(TypeError, match="uint8"):
        cae_codec.compress(_images(1).astype(np.float32))
    with pytest.raises(ValueError, match=r"\(B, 32, 32, 1\).*\(1, 28, 28, 1\)"):
        cae_codec.compress(np.zeros((1, 28, 28, 1), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        cae_codec.compress(np.zeros((32, 32, 1), np.uint8))
    with pytest.raises(ValueError, match=r"\(1, 4096, 4096, 3\)"):
        cae_codec.compress(np.zeros((1, 4096, 4096, 3), np.uint8))
    assert cae_codec.compress(np.zeros((0, 32, 32, 1), np.uint8)) == []
    assert cae_codec.decompress([]).shape == (0, 32, 32, 1)
    with pytest.raises(codec.TruncatedError, match="empty"):
        cae_codec.decompress(b"")
    with pytest.raises(codec.NotAContainerError):
        cae_codec.decompress(bytes(10_000_000))
    # Longer than the model's largest container: refused before it is parsed.
    with pytest.raises(codec.CorruptedError, match="10000005 bytes: too long, .* at most 50"):
        cae_codec.decompress(b"DPLC\x01" + bytes(10_000_000))
    with pytest.raises(codec.TruncatedError, match="announces 4294967343"):
        cae_codec.decompress(b"DPLC\x01" + bytes(35) + b"\xff" * 4 + bytes(6))
    # bytes-like containers are accepted (as bytes), anything else refused before TensorFlow sees it.
    file = cae_codec.compress(_images(1))[0]
    expected = cae_codec.decompress(file)
    np.testing.assert_array_equal(cae_codec.decompress(bytearray(file)), expected)
    np.testing.assert_array_equal(cae_codec.decompress([memoryview(file)])[0], expected)
    with pytest.raises(TypeError, match="bytes"):
        cae_codec.decompress("DPLC")
    with pytest.raises(TypeError, match="bytes"):
        cae_codec.decompress([np.zeros(3)])
    file = cae_codec.compress(_images(1))[0]
    with pytest.raises(ValueError, match="deterministic"):
        cae_codec.decompress(file, seeds=1)
    with pytest.raises(ValueError, match=r"\[0, 2\^28"):
        dplc_codec.compress(_images(1), seeds=-1)
    with pytest.raises(ValueError, match=r"\[0, 2\^28"):  # stored in the file: a 4-byte varint at most
        dplc_codec.compress(_images(1), seeds=2**28)
    with pytest.raises(ValueError, match="2 seeds for 1 images"):
        dplc_codec.compress(_images(1), seeds=[1, 2])


def test_codec_spec_validates_and_the_interface_is_checked():
    with pytest.raises(ValueError, match="levels"):
        codec.CodecSpec(image_shape=(8, 8, 1), code_shape=(2, 2, 1), levels=1)
    with pytest.raises(ValueError, match="image_shape"):
        codec.CodecSpec(image_shape=(8, 0, 1), code_shape=(2, 2, 1), levels=2)
    with pytest.raises(ValueError, match="must be able to sample"):
        codec.CodecSpec(image_shape=(8, 8, 1))

    class NoDecoder(tf.Module):
        def codec_spec(self):
            return codec.CodecSpec(image_shape=(8, 8, 1), code_shape=(2, 2, 1), levels=2)

        def encode_codes(self, images, seeds):
            return tf.zeros([tf.shape(images)[0], 2, 2, 1], tf.int32)

    with pytest.raises(TypeError, match="decode_codes"):
        codec.codec_spec_of(NoDecoder())
    with pytest.raises(TypeError, match="codec interface"):
        codec.codec_spec_of(tf.Module())

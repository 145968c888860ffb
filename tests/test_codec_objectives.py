"""The codec interface of the perceptual (G1, G2, DAL) and shift-compression objectives: containers from
`tfdplc.codec.Codec.from_model` decode bit-exactly to the objectives' own reconstructions, and export works."""

import numpy as np
import pytest
import tensorflow as tf

from tfdplc import codec, layers, metrics, nets
from tfdplc.codec import container as fmt
from tfdplc.codec.interface import ENCODER_DITHER
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import DAL, PerceptualG1, PerceptualG2, ShiftCompression

D = 4  # code entries of the perceptual models (1 bit each)
WIDTH = 4
YAN_SHAPE = (32, 32, 1)
LIU_SHAPE = (28, 28, 1)


def _sensitive(model, factor=20.0):
    """Scales the kernels: with N(0, 0.02) weights a tiny network's output barely depends on its input."""
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.Layer) and hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * factor)
    return model


def _uint8_images(n, shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _floats(images):
    return images.astype(np.float32) / 255.0


def _as_uint8(images):
    return np.round(np.clip(np.asarray(images), 0, 1) * 255).astype(np.uint8)


def _train(model, *batch, steps=1):
    model.compile(run_eagerly=True)  # eager: no tracing, fast tests
    for _ in range(steps):
        model.train_on_batch(*batch)
    return model


# ------------------------------------------------------------------------------------------------------
# Models.


def _tiny_g1(seed=0):
    tf.keras.utils.set_random_seed(seed)
    model = PerceptualG1(
        encoder=_sensitive(nets.yan_encoder(D, width=WIDTH)),
        decoder=nets.yan_decoder(D, width=WIDTH),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="straight_through"),
        optimizer=tf.keras.optimizers.RMSprop(1e-3),
    )
    return _train(model, _floats(_uint8_images(8, YAN_SHAPE, seed=seed)), steps=2)


def _tiny_dal(seed=0):
    tf.keras.utils.set_random_seed(seed)
    model = DAL(
        encoder=_sensitive(nets.yan_encoder(D, width=WIDTH)),
        decoder=nets.yan_decoder(D, width=WIDTH),
        critic=nets.yan_critic(1, width=WIDTH),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        optimizer=tf.keras.optimizers.RMSprop(1e-3),
        critic_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        lambda_adv=1.0,
    )
    return _train(model, _floats(_uint8_images(8, YAN_SHAPE, seed=seed)))


def _tiny_g2(encoder, seed=0):
    tf.keras.utils.set_random_seed(seed)
    model = PerceptualG2(
        generator=_sensitive(nets.yan_generator(D, width=WIDTH, seed=seed + 1)),
        critic=nets.yan_critic(D, width=WIDTH),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        generator_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        critic_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        encoder=encoder,
    )
    return _train(model, _floats(_uint8_images(8, YAN_SHAPE, seed=seed + 1)))


def _tiny_shift(quantizer, seed=0, **kwargs):
    tf.keras.utils.set_random_seed(seed)
    model = ShiftCompression(
        encoder=nets.liu_encoder(3, width=4),
        decoder=nets.liu_decoder(3),
        critic=nets.liu_critic(width=4),
        quantizer=quantizer,
        optimizer=tf.keras.optimizers.Adam(1e-3, beta_1=0.5),
        critic_optimizer=tf.keras.optimizers.Adam(1e-3, beta_1=0.5),
        **kwargs,
    )
    clean = tf.random.stateless_uniform((8, *LIU_SHAPE), seed=[seed, 1])
    degraded = tf.clip_by_value(clean + 0.1 * tf.random.stateless_normal(tf.shape(clean), [seed, 2]), 0, 1)
    return _train(model, degraded, clean)


@pytest.fixture(scope="module")
def g1():
    return _tiny_g1()


@pytest.fixture(scope="module")
def g2(g1):
    return _tiny_g2(g1.encoder)


@pytest.fixture(scope="module")
def shift_cr():
    return _tiny_shift(layers.UniversalQuantizer(levels=4, common_randomness=True, seed=1))


@pytest.fixture(scope="module")
def shift_ncr():
    return _tiny_shift(layers.UniversalQuantizer(levels=4, common_randomness=False, seed=1))


@pytest.fixture(scope="module")
def codec_of():
    """`codec.Codec.from_model` of a model, built once per model for the module's tests.

    Each build traces every signature twice (seconds on the shared CPU); the codec holds no state but
    its traced functions, which read the model's variables, so sharing it changes no test's outcome.
    """
    built = {}  # id(model) -> (model, codec); the model is kept so that its id cannot be reused

    def get(model):
        if id(model) not in built:
            built[id(model)] = (model, codec.Codec.from_model(model))
        return built[id(model)][1]

    return get


@pytest.fixture(scope="module")
def shift_vr():
    model = _tiny_shift(layers.EntropyBottleneck(), rate_weight=1e-2, code_scale=3.0)
    model.prepare_for_coding()
    return model


# ------------------------------------------------------------------------------------------------------
# Perceptual decoder (Yan et al.) and DAL.


@pytest.mark.parametrize("make", [_tiny_g1, _tiny_dal], ids=["g1", "dal"])
def test_deterministic_perceptual_codecs_round_trip_bit_exactly(make, g1, codec_of):
    model = g1 if make is _tiny_g1 else make()
    model_codec = codec_of(model)
    _assert_exportable(model_codec)
    assert model_codec.spec == codec.CodecSpec(
        image_shape=YAN_SHAPE, code_shape=(1, 1, D), levels=2, method=model.name
    )
    images = _uint8_images(5, YAN_SHAPE, seed=3)
    files = model_codec.compress(images)
    assert [len(f) for f in files] == [fmt.MIN_SIZE_V2 + 1] * 5  # d = 4 binary entries: 4 bits in 1 byte
    assert model.rate_bits == D and model_codec.spec.nominal_rate_bits == D
    codes, seeds = model_codec.decompress_codes(files)
    floats = _floats(images)
    expected_codes = model.quantizer.indices(model.encoder(floats, training=False)).numpy()
    np.testing.assert_array_equal(codes, expected_codes.reshape(5, 1, 1, D))
    assert seeds.tolist() == [0] * 5  # deterministic: no seed is stored
    decoded = model_codec.decompress(files)
    np.testing.assert_array_equal(decoded, _as_uint8(model(floats, training=False)))
    np.testing.assert_array_equal(decoded, model_codec.decode(codes))
    np.testing.assert_array_equal(model_codec.decompress(files[2]), decoded[2])
    with pytest.raises(ValueError, match="deterministic"):
        model_codec.decompress(files, seeds=1)


def test_g2_decodes_the_frozen_e_code_with_noise_from_the_seed(g1, g2, codec_of):
    g2_codec = codec_of(g2)
    _assert_exportable(g2_codec)
    spec = g2_codec.spec
    assert spec.stochastic_decoder and not spec.seeded_encoder and not spec.can_sample
    assert spec.code_shape == (1, 1, D) and spec.levels == 2
    images = _uint8_images(4, YAN_SHAPE, seed=5)
    seeds = [21, 22, 23, 24]
    files = g2_codec.compress(images, seeds=seeds)
    codes, read_seeds = g2_codec.decompress_codes(files)
    assert read_seeds.tolist() == seeds
    # Stage 2 reuses stage 1's E: the same images give the same bits as G1's codec.
    np.testing.assert_array_equal(codes, codec_of(g1).encode(images))
    first = g2_codec.decompress(files)
    np.testing.assert_array_equal(first, g2_codec.decompress(files))
    np.testing.assert_array_equal(g2_codec.decompress(files[1]), first[1])
    noise = codec.per_example_normal(tf.constant(seeds, tf.int64), [g2.generator.noise_layer.m])
    expected = g2.decode(g2.encode(_floats(images)), noise=noise)
    np.testing.assert_array_equal(first, _as_uint8(expected))
    np.testing.assert_array_equal(first, g2_codec.decode(codes, seeds))
    other = g2_codec.decompress(files, seeds=99)  # another draw of the stochastic decoder
    assert np.abs(other.astype(int) - first).max() > 0


def test_g2_with_a_stage1_file_loads_e_only_when_it_encodes(g1, tmp_path, codec_of):
    """The stage-2 workdir case: E comes from stage 1's encoder.keras, loaded inside the traced encoder."""
    g1.save_artifacts(str(tmp_path))
    tf.keras.utils.set_random_seed(0)
    model = PerceptualG2(
        generator=nets.yan_generator(D, width=WIDTH, seed=1),
        critic=nets.yan_critic(D, width=WIDTH),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        generator_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        critic_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        encoder_path=str(tmp_path / "encoder.keras"),
    )
    assert model.codec_spec().code_shape == (1, 1, D) and model.encoder is None  # the spec needs no file
    images = _uint8_images(3, YAN_SHAPE, seed=4)
    codes = codec.Codec.from_model(model).encode(images)
    assert model.encoder is not None
    np.testing.assert_array_equal(codes, codec_of(g1).encode(images))


def test_perceptual_codecs_refuse_a_quantizer_without_indices(g1):
    model = PerceptualG1(
        encoder=nets.yan_encoder(D, width=WIDTH),
        decoder=nets.yan_decoder(D, width=WIDTH),
        quantizer=layers.UniversalQuantizer(levels=2),
        optimizer=tf.keras.optimizers.RMSprop(1e-3),
    )
    with pytest.raises(TypeError, match="indices/dequantize"):
        codec.Codec.from_model(model)


# ------------------------------------------------------------------------------------------------------
# Shift compression (Liu et al.).


def _reconstruct_per_image(model, floats, encoder_seeds, decoder_seeds=None):
    """The objective's own codec path, one image at a time with seed pair [s_i, ENCODER_DITHER]."""
    decoder_seeds = encoder_seeds if decoder_seeds is None else decoder_seeds
    out = []
    for image, s_enc, s_dec in zip(floats, encoder_seeds, decoder_seeds):
        indices = model.compress(image[None], seed=tf.constant([s_enc, ENCODER_DITHER], tf.int64))
        out.append(model.decompress(indices, seed=tf.constant([s_dec, ENCODER_DITHER], tf.int64))[0])
    return np.stack(out)


@pytest.mark.parametrize("common_randomness", [True, False], ids=["cr", "ncr"])
def test_shift_fixed_rate_round_trip_keeps_the_dither_semantics(
    common_randomness, shift_cr, shift_ncr, codec_of
):
    model = shift_cr if common_randomness else shift_ncr
    shift_codec = codec_of(model)
    _assert_exportable(shift_codec)
    spec = shift_codec.spec
    assert (
        spec.code_shape == (1, 1, 3) and spec.levels == 4 and spec.nominal_rate_bits == model.rate_bits == 6
    )
    assert spec.seeded_encoder is common_randomness and spec.stochastic_decoder is not common_randomness
    images = _uint8_images(4, LIU_SHAPE, seed=7)
    floats = _floats(images)
    seeds = [3, 4, 5, 2**28 - 1]  # stored: 1-byte varints, and the largest (4 bytes)
    files = shift_codec.compress(images, seeds=seeds)
    assert [len(f) for f in files] == [fmt.MIN_SIZE_V2 + 1 + 1] * 3 + [fmt.MIN_SIZE_V2 + 4 + 1]  # 3 x 2 bits
    codes, read_seeds = shift_codec.decompress_codes(files)
    assert read_seeds.tolist() == seeds
    np.testing.assert_array_equal(codes, shift_codec.encode(images, seeds=seeds))
    # Image i is quantized with its own dither seed: the objective's compress on that image alone.
    for i, seed in enumerate(seeds):
        expected = model.compress(floats[i : i + 1], seed=tf.constant([seed, ENCODER_DITHER], tf.int64))
        np.testing.assert_array_equal(codes[i].reshape(1, 3), expected)
    decoded = shift_codec.decompress(files)
    np.testing.assert_array_equal(decoded, _as_uint8(_reconstruct_per_image(model, floats, seeds)))
    np.testing.assert_array_equal(decoded, shift_codec.decode(codes, seeds))
    # The dither depends on the seed: some index changes with another seed (fixed images).
    assert not np.array_equal(shift_codec.encode(images, seeds=[9, 9, 9, 9]), codes)
    if common_randomness:  # the decoder must subtract the encoder's dither: no other seed is allowed
        with pytest.raises(ValueError, match="same seed"):
            shift_codec.decompress(files, seeds=1)
        assert "decompress_seeded" not in shift_codec.description["signatures"]
    else:  # eq. 16: another independent decoder dither, still Q(f(X) + U1) with the container's U1
        other = shift_codec.decompress(files, seeds=[7, 7, 7, 7])
        np.testing.assert_array_equal(
            other, _as_uint8(_reconstruct_per_image(model, floats, seeds, decoder_seeds=[7] * 4))
        )
        assert not np.array_equal(other, decoded)


def test_compress_archive_signature_seeds_image_i_with_s_plus_i(shift_cr, codec_of):
    """Issue 29: the graph's archive writer must dither image i with (S + i) mod 2^28 as Python does.

    A DPLC encoder ignores seeds, so only a model whose encoder dither depends on the seed (shift
    compression with common randomness) tells S + i from S.
    """
    shift_codec = codec_of(shift_cr)
    images = np.repeat(_uint8_images(1, LIU_SHAPE, seed=11), 24, axis=0)  # one image: only seeds differ
    for seed in (5, 2**28 - 3):  # the per-image seeds wrap around 2^28
        expected = shift_codec.compress_archive(images, seed=seed)
        written = shift_codec._signatures["compress_archive"](
            images=tf.constant(images), seed=tf.constant(seed, tf.int64)
        )["archive_bytes"].numpy()
        assert written == expected
    # The test is informative: the same seed for every image gives other codes than S + i.
    read = shift_codec.read_archive(expected)
    same_seed = shift_codec.encode(images, seeds=[int(read.seeds[0])] * len(images)).reshape(len(images), -1)
    assert not np.array_equal(read.codes, same_seed)


def test_shift_independent_decoder_dither_is_not_the_encoder_dither(shift_ncr, codec_of):
    """Without common randomness the decoded value differs from the common-randomness decode of the same
    indices (the decoder subtracts an independent U2, not U1)."""
    quantizer = shift_ncr.quantizer
    pair = tf.constant([5, ENCODER_DITHER], tf.int64)
    u1 = quantizer.encoder_dither([3], pair)
    u2 = quantizer.decoder_dither([3], pair)
    assert not np.allclose(u1, u2)
    shift_codec = codec_of(shift_ncr)
    codes = shift_codec.encode(_uint8_images(1, LIU_SHAPE, seed=2), seeds=[5])
    expected = shift_ncr.decoder(quantizer.codewords(codes.reshape(1, 3)) - u2[None], training=False)
    np.testing.assert_array_equal(shift_codec.decode(codes, [5]), _as_uint8(expected))


def test_shift_variable_rate_range_codes_with_the_entropy_bottleneck(shift_vr, codec_of):
    vr_codec = codec_of(shift_vr)
    spec = vr_codec.spec
    assert spec.entropy_coded and spec.code_shape == (1, 1, 3)
    assert not spec.stochastic_decoder and not spec.seeded_encoder
    images = _uint8_images(5, LIU_SHAPE, seed=9)
    floats = _floats(images)
    files = vr_codec.compress(images)
    codes, seeds = vr_codec.decompress_codes(files)
    assert seeds.tolist() == [0] * 5
    latents = shift_vr.encoder(floats, training=False) * shift_vr.code_scale
    np.testing.assert_array_equal(
        codes.reshape(5, 3), codec.bottleneck_codes(shift_vr.codec_bottleneck, latents)
    )
    decoded = vr_codec.decompress(files)
    np.testing.assert_array_equal(decoded, _as_uint8(shift_vr.decompress(shift_vr.compress(floats))))
    np.testing.assert_array_equal(decoded, _as_uint8(shift_vr.reconstruct(floats)))
    # The payload is the objective's own range-coded string for that image.
    strings = shift_vr.compress(floats).numpy()
    assert [vr_codec.payload_bits(f) for f in files] == [8 * len(s) for s in strings]


def test_shift_refuses_universal_bottleneck_export(tmp_path):
    model = _tiny_shift(layers.UniversalBottleneck(), rate_weight=1e-2)
    with pytest.raises(TypeError, match="UniversalBottleneck cannot be exported"):
        model.codec_spec()
    with pytest.raises(TypeError, match="dither"):
        codec.Codec.from_model(model)
    with pytest.raises(TypeError, match="UniversalBottleneck"):
        codec.export_model(model, str(tmp_path / "export"))
    assert not (tmp_path / "export").exists()


# ------------------------------------------------------------------------------------------------------
# Export.


def _assert_exportable(model_codec):
    """What `export_model` requires beyond saving: every signature of a fixed-rate model uses core TF ops."""
    description = model_codec.description
    assert description["stock_signatures"] == description["signatures"]
    assert {"compress", "decompress", "encode", "decode"} <= set(description["signatures"])


@pytest.mark.parametrize("name", ["g2", "shift_vr"])
def test_exported_models_decode_what_the_models_in_memory_write(name, g2, shift_vr, tmp_path, codec_of):
    """Writes and reloads two exports (about 15 s each on the shared CPU): the perceptual family with
    its stochastic decoder, and the range-coded shift model (the bottleneck built on (B, d) vectors). The
    other models' signatures are traced and checked for core ops by `_assert_exportable`."""
    model = {"g2": g2, "shift_vr": shift_vr}[name]
    images = _uint8_images(3, YAN_SHAPE if name == "g2" else LIU_SHAPE, seed=11)
    info = codec.export_model(model, str(tmp_path / name))
    memory = codec_of(model)
    files = memory.compress(images, seeds=[31, 32, 33])
    loaded = codec.load(info.export_dir)
    assert loaded.fingerprint == memory.fingerprint
    assert loaded.compress(images, seeds=[31, 32, 33]) == files
    np.testing.assert_array_equal(loaded.decompress(files), memory.decompress(files))
    assert info.description["needs_tensorflow_compression"] is (name == "shift_vr")
    stock = set(info.description["stock_signatures"])
    assert {"encode", "decode"} <= stock
    if name == "g2":  # fixed-rate codes: the whole container path is core TF ops (stock TF Serving)
        assert {"compress", "decompress", "decompress_seeded"} <= stock
        np.testing.assert_array_equal(loaded.decompress(files, seeds=5), memory.decompress(files, seeds=5))


def test_estimated_rate_is_the_per_image_prior_bits_and_the_strings_hold_about_that(shift_vr):
    # tfdplc.metrics.estimated_rate_metrics (tools/evaluate.py): the entropy model's bits of each test image
    # in inference mode, averaged over images of several batches, against the range coder's strings.
    images = _floats(_uint8_images(7, LIU_SHAPE, seed=4))
    dataset = tf.data.Dataset.from_tensor_slices((images, images)).batch(3)  # batches of 3, 3, 1
    rate = metrics.estimated_rate_metrics(shift_vr, dataset)
    latents = shift_vr.encoder(images, training=False) * shift_vr.code_scale
    _, per_image = shift_vr.quantizer(latents, training=False)  # -log2 p(code) of each image
    np.testing.assert_allclose(rate["estimated_bits"], np.mean(per_image), rtol=1e-5)
    assert rate["estimated_bits_min"] == pytest.approx(float(np.min(per_image)), rel=1e-5)
    real = 8.0 * tf.strings.length(shift_vr.compress(images)).numpy()
    assert abs(real.mean() - rate["estimated_bits"]) <= 16.0  # whole bytes and the coder's own overhead
    with pytest.raises(ValueError, match="fixed rate"):
        fixed = _tiny_shift(layers.UniversalQuantizer(levels=4, common_randomness=False, seed=1))
        metrics.estimated_rate_metrics(fixed, dataset)

"""The decode-time distortion-perception slider (issue 13, item 4) in exports, `Codec` and tools/codec.py.

One tiny PerceptualG2 is exported with its stage-1 G1 (the `decompress_realism` signature); the same G2
without G1 is built in memory (`Codec.from_model`, the functions its export would hold). Decoding with realism alpha must give (1 - alpha) G1(c) + alpha G2(c, n), n from each file's
seed: checked against G1 run by Keras and the blend computed in NumPy, not against the export's own path.
"""

import os
import shutil

import gin
import numpy as np
import pytest
import tensorflow as tf
from inprocess_tools import load_tool
from PIL import Image
from test_perceptual import _images, _sensitive, _tiny_g1, _tiny_g2

from tfdplc import codec, metrics
from tfdplc.codec.export import REALISM_SIGNATURE, has_realism_decoder
from tfdplc.objectives.base import ENCODER_FILE
from tfdplc.objectives.perceptual import DECODER_FILE

SEEDS = [11, 12, 13, 14]
BAD_REALISM = (-0.1, 1.5, float("nan"), float("inf"))


def _stage1(directory):
    """A stage-1 workdir's E and G1; G1's kernels scaled up so its decode depends on the code."""
    model = _tiny_g1(seed=0)
    _sensitive(model.decoder)
    model.save_artifacts(str(directory))
    return str(directory / ENCODER_FILE)


@pytest.fixture(scope="module")
def slider(tmp_path_factory):
    """One export of a G2 with its G1, and the same G2 without G1 in memory (its stage-1 folder holds no
    decoder.keras: G2 built the same way, E from a file). About 40 s on the shared 2-core CPU at a load of
    6 (export ~20 s, load ~8 s, from_model ~9 s); the tests after it take ~3 s together."""
    gin.clear_config()
    root = tmp_path_factory.mktemp("slider")
    encoder_path = _stage1(root)
    (root / "e_only").mkdir()
    shutil.copy(encoder_path, root / "e_only" / ENCODER_FILE)
    with_g1 = _tiny_g2(encoder_path, seed=0)  # G1: decoder.keras beside encoder.keras (the default)
    without_g1 = _tiny_g2(str(root / "e_only" / ENCODER_FILE), seed=0)
    info = codec.export_model(with_g1, str(root / "g2"))
    loaded = codec.load(info.export_dir)
    images = np.random.default_rng(0).integers(0, 256, size=(len(SEEDS), 32, 32, 1), dtype=np.uint8)
    return {
        "model": with_g1,
        "without_g1": without_g1,
        "info": info,
        "codec": loaded,
        "plain": codec.Codec.from_model(without_g1),
        "files": loaded.compress(images, seeds=SEEDS),
        "g1": tf.keras.models.load_model(str(root / DECODER_FILE), compile=False),
    }


def _reference(slider):
    """G1's and G2's float decodes of the files, computed outside the export: Keras G1 on the NumPy-
    dequantized code (one image per call, as the export decodes), G2 from the model in memory."""
    codes, seeds = slider["codec"].decompress_codes(slider["files"])
    np.testing.assert_array_equal(seeds, SEEDS)  # each file's stored seed
    code = np.asarray([-1.0, 1.0], np.float32)[codes.reshape(len(codes), -1)]  # centre indices -> values
    g1 = np.concatenate([slider["g1"](code[i : i + 1], training=False).numpy() for i in range(len(code))])
    model = slider["model"]
    g2 = np.concatenate(
        [model.decode_codes(codes[i : i + 1], seeds[i : i + 1]).numpy() for i in range(len(codes))]
    )
    return g1, g2


def _uint8(images):
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def _near(actual, expected):
    """Equal up to one 8-bit level at a few pixels: a blend computed in NumPy and in the graph may differ
    in the last float bit, which moves a value on a rounding boundary by one level."""
    diff = np.abs(actual.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (diff.max(), (diff == 0).mean())


def test_export_holds_the_slider_only_with_both_decoders_and_keeps_the_files(slider):
    assert has_realism_decoder(slider["model"]) and not has_realism_decoder(slider["without_g1"])
    description = slider["info"].description
    assert REALISM_SIGNATURE in description["signatures"]
    assert REALISM_SIGNATURE in description["stock_signatures"]  # core ops: stock TF Serving runs it too
    assert REALISM_SIGNATURE not in slider["plain"].description["signatures"]
    # G1 is a second decoder of the same files: same fingerprint, so each codec reads the other's files.
    assert slider["plain"].fingerprint == slider["codec"].fingerprint
    assert slider["plain"].compress(np.zeros((1, 32, 32, 1), np.uint8), seeds=[3]) == slider[
        "codec"
    ].compress(np.zeros((1, 32, 32, 1), np.uint8), seeds=[3])
    assert slider["codec"].can_decode_realism and not slider["plain"].can_decode_realism


def test_realism_zero_is_g1_one_is_the_plain_decompress_and_between_the_blend(slider):
    loaded, files = slider["codec"], slider["files"]
    g1, g2 = _reference(slider)
    assert np.abs(_uint8(g1).astype(int) - _uint8(g2)).max() > 50  # the two decoders differ visibly
    assert np.abs(np.diff(_uint8(g1).astype(int), axis=0)).max() > 50  # G1's decode depends on the code
    plain = loaded.decompress(files)
    np.testing.assert_array_equal(plain, _uint8(g2))  # the reference G2 is the plain decompress
    np.testing.assert_array_equal(loaded.decompress(files, realism=1.0), plain)  # G2 with the files' seeds
    np.testing.assert_array_equal(loaded.decompress(files, realism=0), _uint8(g1))
    for alpha in (0.25, 0.5):
        blend = loaded.decompress(files, realism=alpha)
        _near(blend, _uint8((1.0 - alpha) * g1 + alpha * g2))
    # One file at a time: the same images (a file's decode does not depend on the batch).
    np.testing.assert_array_equal(
        loaded.decompress(files[2], realism=0.25), loaded.decompress(files, realism=0.25)[2]
    )


def test_exported_signature_refuses_a_bad_realism(slider):
    signature = slider["codec"]._signatures[REALISM_SIGNATURE]
    strings = tf.constant(np.asarray(slider["files"], dtype=object))
    images = signature(compressed_bytes=strings, realism=tf.constant(0.25))["images"].numpy()
    np.testing.assert_array_equal(images, slider["codec"].decompress(slider["files"], realism=0.25))
    for bad in BAD_REALISM:
        with pytest.raises(tf.errors.InvalidArgumentError, match="realism must be a number from 0 to 1"):
            signature(compressed_bytes=strings, realism=tf.constant(bad, tf.float32))
    # What a client of the graph alone reads (Codec's report of a graph refusal): the whole reason.
    with pytest.raises(codec.CorruptedError, match=r"from 0 to 1 \(0: the MSE decoder, 1: the perceptual"):
        slider["codec"]._call(REALISM_SIGNATURE, compressed_bytes=strings.numpy(), realism=np.float32(2))


def test_python_api_refuses_a_bad_realism_and_a_model_without_g1(slider):
    loaded, files = slider["codec"], slider["files"]
    for bad in (*BAD_REALISM, "0.5", True, np.array([0.5])):
        with pytest.raises(ValueError, match="realism") as refused:
            loaded.decompress(files, realism=bad)
        assert not isinstance(refused.value, codec.CodecError)  # refused in Python, before the graph
    with pytest.raises(ValueError, match="seed"):
        loaded.decompress(files, seeds=5, realism=0.5)
    with pytest.raises(ValueError, match="decompress_realism.*both an MSE decoder"):
        slider["plain"].decompress(files, realism=0.5)
    archive = loaded.compress_archive(np.zeros((2, 32, 32, 1), np.uint8), seed=7)
    with pytest.raises(ValueError, match="decompress_realism"):
        slider["plain"].decompress_archive(archive, realism=0.5)
    np.testing.assert_array_equal(
        loaded.decompress_archive(archive, realism=0.25),
        loaded.decompress(loaded.read_archive(archive).containers(loaded.layout), realism=0.25),
    )


# ------------------------------------------------------------------------------------------------------
# tools/codec.py, run in this process (its absl flags parsed per call).


def _tool():
    return load_tool("codec")  # one copy per process, its flags active


PLAIN = "plain-g2-in-memory"  # the --model name under which the CLI gets the G2 without G1


@pytest.fixture
def cli(slider, capsys, monkeypatch):
    """Runs `tools/codec.py ARGS` in this process: (exit code, stdout, stderr).

    The tool's `_load_codec` (`codec.load(--model)`, ~8 s per call on the loaded CPU) is replaced by the
    codecs the fixture already holds: the export's, loaded by `codec.load`, and the G2 without G1.
    """
    tool = _tool()
    codecs = {slider["info"].export_dir: slider["codec"], PLAIN: slider["plain"]}
    monkeypatch.setattr(tool, "_load_codec", lambda: codecs[tool.FLAGS.model])

    def run(*args):
        tool.FLAGS.unparse_flags()
        code = tool.main(tool.FLAGS(["codec.py", *args]))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _png(path):
    with Image.open(path) as image:
        return np.asarray(image)[..., None]


def _folder(directory, files):
    directory.mkdir()
    for index, data in enumerate(files):
        (directory / f"im{index}.dplc").write_bytes(data)
    return str(directory)


def test_cli_decompress_and_extract_with_realism(slider, cli, tmp_path):
    inputs = _folder(tmp_path / "files", slider["files"])
    model = f"--model={slider['info'].export_dir}"
    code, out, _ = cli("decompress", model, inputs, f"--output={tmp_path / 'a'}", "--realism=0.25")
    assert code == 0 and "realism 0.25" in out
    expected = slider["codec"].decompress(slider["files"], realism=0.25)
    for index in range(len(SEEDS)):
        np.testing.assert_array_equal(_png(tmp_path / "a" / f"im{index}.png"), expected[index])
    archive = tmp_path / "all.dplca"
    archive.write_bytes(slider["codec"].compress_archive(expected, seed=5))
    code, _, _ = cli("extract", model, str(archive), f"--output={tmp_path / 'x'}", "--realism=0")
    assert code == 0
    decoded = slider["codec"].decompress_archive(archive.read_bytes(), realism=0)
    assert np.abs(decoded.astype(int) - slider["codec"].decompress_archive(archive.read_bytes())).max() > 50
    for index in range(len(SEEDS)):
        np.testing.assert_array_equal(_png(tmp_path / "x" / f"all_{index}.png"), decoded[index])


@pytest.mark.parametrize("value", ["abc", "nan", "-0.5", "1.5", "inf", ""])
def test_cli_refuses_a_bad_realism(slider, cli, tmp_path, value):
    inputs = _folder(tmp_path / "files", slider["files"][:1])
    output = tmp_path / "out"
    model = f"--model={slider['info'].export_dir}"
    code, _, err = cli("decompress", model, inputs, f"--output={output}", f"--realism={value}")
    assert code == 2 and f"--realism={value}: give a number in [0, 1]" in err and "Traceback" not in err
    assert not output.exists()  # refused before anything was written


def test_cli_refuses_realism_without_both_decoders_or_with_seed(slider, cli, tmp_path):
    inputs = _folder(tmp_path / "files", slider["files"][:1])
    output = f"--output={tmp_path / 'out'}"
    code, _, err = cli("decompress", f"--model={PLAIN}", inputs, output, "--realism=0.5")
    assert code == 2 and "has no decompress_realism signature" in err
    assert not os.listdir(tmp_path / "out")  # nothing decoded
    code, _, err = cli("decompress", f"--model={PLAIN}", inputs, output)  # without --realism it decodes
    assert code == 0 and len(os.listdir(tmp_path / "out")) == 1
    model = f"--model={slider['info'].export_dir}"
    code, _, err = cli("decompress", model, inputs, output, "--overwrite", "--realism=0.5", "--seed=3")
    assert code == 2 and "give --seed or --realism, not both" in err
    garbage = tmp_path / "garbage.dplca"  # refused for the model before the archive is read
    garbage.write_bytes(b"not an archive")
    code, _, err = cli(
        "extract", f"--model={PLAIN}", str(garbage), f"--output={tmp_path / 'x'}", "--realism=1"
    )
    assert code == 2 and "has no decompress_realism signature" in err
    code, _, err = cli("info", inputs, "--realism=0.5")
    assert code == 2 and "--realism applies to decompress and extract" in err


def test_realism_curve_decodes_every_weight_from_the_same_codes_and_noise(tmp_path):
    # tfdplc.metrics.realism_curve (tools/evaluate.py --realism): image i's G2 noise is codec_noise(i) at
    # every weight, across batches, so each point is the NumPy blend of the same G1 and G2 decodes.
    model = _tiny_g2(_stage1(tmp_path), seed=0)
    images = _images(6).numpy()
    curve = metrics.realism_curve(
        model, images, [0.0, 0.5, 1.0], pv_images=images[:3], pv_decodes=3, batch_size=4
    )
    code = model.encode(images)
    g1 = tf.keras.models.load_model(str(tmp_path / DECODER_FILE), compile=False)(code, training=False).numpy()
    g2 = model.decode(code, noise=model.codec_noise(tf.range(6, dtype=tf.int64))).numpy()
    other = model.decode(code, noise=model.codec_noise(tf.range(1, 7, dtype=tf.int64))).numpy()
    assert np.abs(g2 - other).mean() > 0.01 and np.abs(g1 - g2).mean() > 0.01  # noise and decoder matter
    assert [point["realism"] for point in curve] == [0.0, 0.5, 1.0]
    for point in curve:
        blend = (1 - point["realism"]) * g1 + point["realism"] * g2
        np.testing.assert_allclose(point["mse"], np.mean((images - blend) ** 2), rtol=1e-5)
    assert curve[0]["pv"] == 0.0 and curve[2]["pv"] > curve[1]["pv"] > 0.0  # PV(a) = a^2 PV(G2)
    with pytest.raises(ValueError, match="realism"):
        metrics.realism_curve(model, images, [1.5])

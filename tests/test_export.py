"""SavedModel export: layout, determinism, the stock-servable model without tfc, saved_model_cli, the tools."""

import json
import os
import struct
import subprocess
import sys
import zlib

import gin
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfdplc import codec, nets
from tfdplc import train as tr
from tfdplc.codec import container as fmt
from tfdplc.layers import EntropyBottleneck
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import DPLC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def _run(args, timeout=240):
    return subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def _resealed(data: bytes, offset: int, new: bytes) -> bytes:
    """Overwrites bytes of a container and recomputes its checksum."""
    body = bytearray(data[:-4])
    body[offset : offset + len(new)] = new
    return bytes(body) + struct.pack(">I", zlib.adler32(bytes(body)))


def _tiny_dplc(seed=0, m=8, width=4, mapping_width=8, learning_rate=1e-2):
    """An untrained DPLC on 32x32x1 images, K = 2; the sizes default to the smallest that export fast."""
    tf.keras.utils.set_random_seed(seed)
    generator = nets.generator_G(32, m=m, width=width, channels=1)
    for layer in generator.layers:  # a tiny G with N(0, 0.02) weights outputs a near-constant image
        if hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * 20.0)
    model = DPLC(
        encoder=nets.encoder_E(32, 2, width=width, channels=1),
        mapping=nets.mapping_B(32, 2, m=m, n_blocks=1, width=mapping_width, noise=True, seed=1),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        lambda_mmd=1.0,
        generator=generator,
        seed=2,
    )
    model(tf.zeros([1, 32, 32, 1]))
    return model


class _EntropyCodec(tf.keras.Model):
    """A small codec whose integer codes are range coded by an EntropyBottleneck (tfc ops)."""

    def __init__(self):
        super().__init__()
        self.analysis = tf.keras.layers.Conv2D(4, 5, strides=4, padding="same")
        self.codec_bottleneck = EntropyBottleneck()
        self.synthesis = tf.keras.layers.Conv2DTranspose(
            1, 5, strides=4, padding="same", activation="sigmoid"
        )

    def call(self, images, training=False):
        return self.synthesis(self.codec_bottleneck(self.analysis(images), training=training)[0])

    def codec_spec(self):
        return codec.CodecSpec(image_shape=(28, 28, 1), code_shape=(7, 7, 4), method="entropy")

    def encode_codes(self, images, seeds):
        return codec.bottleneck_codes(self.codec_bottleneck, self.analysis(images))

    def decode_codes(self, codes, seeds):
        return self.synthesis(codec.bottleneck_values(self.codec_bottleneck, codes))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A DPLC (fixed-rate, stochastic, samples) and an entropy-coded export, with reference outputs."""
    root = tmp_path_factory.mktemp("exports")
    dplc = _tiny_dplc()
    dplc_info = codec.export_model(dplc, str(root / "dplc"))
    tf.keras.utils.set_random_seed(0)
    entropy = _EntropyCodec()
    entropy(tf.zeros([1, 28, 28, 1]))  # builds; export_model builds the range-coding tables
    entropy_info = codec.export_model(entropy, str(root / "entropy"))
    rng = np.random.default_rng(0)
    dplc_images = rng.integers(0, 256, (3, 32, 32, 1), dtype=np.uint8)
    entropy_images = rng.integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    memory = codec.Codec.from_model(dplc)
    files = memory.compress(dplc_images, seeds=[4, 5, 6])
    entropy_memory = codec.Codec.from_model(entropy)
    reference = {
        "files": np.asarray(files, dtype=object),
        "decoded": memory.decompress(files),
        "samples": memory.sample([7, 8]),
        "entropy_images": entropy_images,
        "entropy_codes": entropy_memory.encode(entropy_images),
    }
    reference["entropy_decoded"] = entropy_memory.decode(reference["entropy_codes"])
    np.savez(root / "reference.npz", **reference)
    return {
        "root": root,
        "memory_fingerprint": memory.fingerprint.hex(),
        "dplc": dplc,
        "dplc_info": dplc_info,
        "entropy": entropy,
        "entropy_info": entropy_info,
        "dplc_images": dplc_images,
        **reference,
    }


@pytest.fixture(scope="module")
def loaded(exports):
    """Both exports read back with `codec.load`, once for the module's tests (seconds each)."""
    return {name: codec.load(exports[f"{name}_info"].export_dir) for name in ("dplc", "entropy")}


def test_export_layout_and_signatures(exports):
    info = exports["dplc_info"]
    for sub in ("codec.json", "codec/saved_model.pb", "serving/1/saved_model.pb"):
        assert os.path.exists(os.path.join(info.export_dir, sub)), sub
    description = json.load(open(os.path.join(info.export_dir, "codec.json")))
    assert description["fingerprint"] == info.description["fingerprint"]
    assert description["spec"]["stochastic_decoder"] and description["payload"] == "packed"
    full = codec.export.read_description(info.codec_dir)
    stock = codec.export.read_description(info.serving_version_dir)
    every = {
        "compress",
        "compress_seeded",
        "decompress",
        "decompress_seeded",
        "decompress_codes",
        "encode",
        "decode",
        "sample",
        "compress_archive",
        "decompress_archive",
    }
    assert set(full["signatures"]) == set(stock["signatures"]) == every | {"serving_default"}
    assert full["serving_default"] == "compress"
    entropy = exports["entropy_info"]
    assert set(codec.export.read_description(entropy.codec_dir)["signatures"]) == (
        every - {"decompress_seeded", "sample", "compress_archive", "decompress_archive"}
    ) | {"serving_default"}  # range-coded archives are written and read in Python
    entropy_stock = codec.export.read_description(entropy.serving_version_dir)
    assert set(entropy_stock["signatures"]) == {"encode", "decode", "serving_default"}
    assert entropy_stock["serving_default"] == "encode"


def test_loaded_export_writes_what_the_model_writes(exports, loaded):
    dplc = loaded["dplc"]
    assert dplc.compress(exports["dplc_images"], seeds=[4, 5, 6]) == list(exports["files"])
    np.testing.assert_array_equal(dplc.decompress(list(exports["files"])), exports["decoded"])
    np.testing.assert_array_equal(dplc.sample([7, 8]), exports["samples"])
    entropy = loaded["entropy"]
    files = entropy.compress(exports["entropy_images"])
    np.testing.assert_array_equal(entropy.decompress(files), exports["entropy_decoded"])
    np.testing.assert_array_equal(entropy.decompress_codes(files)[0], exports["entropy_codes"])


def test_export_is_deterministic_and_does_not_overwrite(exports, tmp_path):
    # The same weights traced again (what a second export does) give the same fingerprint.
    assert exports["memory_fingerprint"] == exports["dplc_info"].description["fingerprint"]
    with pytest.raises(FileExistsError, match="overwrite"):
        codec.export_model(exports["dplc"], exports["dplc_info"].export_dir)
    with pytest.raises(TypeError, match="codec interface"):
        codec.export_model(tf.keras.Sequential([tf.keras.layers.Dense(1)]), str(tmp_path / "none"))
    assert not os.path.exists(tmp_path / "none")  # nothing half-written


def test_served_graph_refuses_damaged_and_foreign_files(exports, loaded):
    archived = tf.saved_model.load(exports["dplc_info"].serving_version_dir).signatures
    served = archived["decompress"]
    good = exports["files"][0]
    layout = loaded["dplc"].layout
    seed, payload, version = layout.read(good)
    assert version == 3 and seed == 4
    old = fmt.pack(layout.header(seed), payload)
    cases = {
        "checksum mismatch": good[:-1] + bytes([good[-1] ^ 1]),
        "truncated": good[:-3],
        "bad magic": b"GIF89a" + good[6:],
        "another model": good[:2] + bytes([good[2] ^ 0xFF]) + good[3:],  # the version 2 model tag
        "fingerprint differs": _resealed(old, 8, b"\x00" * 8),  # a version 1 file's fingerprint
        # Longer than any file of this model (version 1 files included): refused before parsing.
        "too long": good + bytes(48),
    }
    for message, data in cases.items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=f"tfdplc container: .*{message}"):
            served(compressed_bytes=tf.constant([good, data]))
    # The stock graph's archive signatures: Python's bytes, the single files' images, damage refused.
    data = loaded["dplc"].compress_archive(exports["dplc_images"], seed=4)
    written = archived["compress_archive"](
        images=tf.constant(exports["dplc_images"]), seed=tf.constant(4, tf.int64)
    )
    assert written["archive_bytes"].numpy() == data
    images = archived["decompress_archive"](archive_bytes=tf.constant(data))["images"].numpy()
    np.testing.assert_array_equal(images, exports["decoded"])  # the files were written with seeds 4, 5, 6
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"tfdplc archive: corrupted \(archive checksum mismatch"
    ):
        archived["decompress_archive"](archive_bytes=tf.constant(data[:-1] + bytes([data[-1] ^ 1])))
    # The same image from the version 1 form of the file (48-byte header), alone and beside version 2 ones.
    decoded = served(compressed_bytes=tf.constant([old, good]))["images"].numpy()
    np.testing.assert_array_equal(decoded, exports["decoded"][[0, 0]])


def test_tampered_range_coded_payloads_decode_or_are_refused(exports, loaded):
    """A payload changed under an intact checksum is a valid file for Python; tfc decodes or refuses it."""
    entropy = loaded["entropy"]
    good = entropy.compress(exports["entropy_images"][:1])[0]
    rng = np.random.default_rng(0)
    outcomes = set()
    _, payload, _ = entropy.parse(good)
    for _ in range(40):
        body = bytearray(payload)
        body[rng.integers(len(body))] = int(rng.integers(256))
        data = entropy.layout.write(0, bytes(body))
        try:
            decoded = entropy.decompress(data)
            assert decoded.shape == (28, 28, 1)
            outcomes.add("decoded")
        except codec.CorruptedError as error:
            assert "range-coded payload does not decode" in str(error)
            outcomes.add("refused")
    assert "decoded" in outcomes


_FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf

root = sys.argv[1]
ref = np.load(root + "/reference.npz", allow_pickle=True)
dplc = tf.saved_model.load(root + "/dplc/serving/1")
images = dplc.signatures["decompress"](compressed_bytes=tf.constant(list(ref["files"])))["images"]
decoded_ok = bool(np.array_equal(images.numpy(), ref["decoded"]))
samples = dplc.signatures["sample"](seeds=tf.constant([7, 8], tf.int64))["images"]
entropy = tf.saved_model.load(root + "/entropy/serving/1")
seeds = tf.zeros([2], tf.int64)
codes = entropy.signatures["encode"](images=tf.constant(ref["entropy_images"]), seeds=seeds)["codes"]
again = entropy.signatures["decode"](codes=codes, seeds=seeds)["images"]
try:
    tf.saved_model.load(root + "/entropy/codec")
    full_error = None
except Exception as error:  # the range-coding ops are not registered without tensorflow_compression
    full_error = str(error).splitlines()[0]
print(json.dumps({
    "decoded": decoded_ok,
    "samples": bool(np.array_equal(samples.numpy(), ref["samples"])),
    "codes": bool(np.array_equal(codes.numpy(), ref["entropy_codes"])),
    "entropy_decoded": bool(np.array_equal(again.numpy(), ref["entropy_decoded"])),
    "full_error": full_error,
    "tfc_imported": "tensorflow_compression" in sys.modules,
}))
"""


def test_stock_savedmodel_runs_in_a_process_without_tensorflow_compression(exports):
    result = _run([sys.executable, "-c", _FRESH_PROCESS, str(exports["root"])])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tfc_imported"] is False
    assert report["decoded"] and report["samples"] and report["codes"] and report["entropy_decoded"], report
    # The full SavedModel of an entropy-coded model needs tensorflow_compression, as documented.
    assert "CreateRangeEncoder" in report["full_error"] or "not registered" in report["full_error"], report


def test_saved_model_cli_runs_the_stock_model(exports, tmp_path):
    np.save(tmp_path / "files.npy", exports["files"])
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = _run(
        [
            cli,
            "run",
            "--dir",
            exports["dplc_info"].serving_version_dir,
            "--tag_set",
            "serve",
            "--signature_def",
            "decompress",
            "--inputs",
            f"compressed_bytes={tmp_path / 'files.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "images.npy"), exports["decoded"])


# ------------------------------------------------------------------------------------------------------
# tools/export.py and tools/codec.py on a trained workdir.

_TINY_CAE_BINDINGS = [
    "input_pipeline.batch_size = 8",
    "train.steps_per_epoch = 2",
    "train.total_steps = 2",
    "train.eval_steps = 1",
    "train.num_grid_images = 2",
    "train.verbose = 0",
    "encoder_E.width = 4",
    "mapping_B.width = 8",
    "generator_G.width = 4",
]


@pytest.fixture(scope="module")
def cae_export(tmp_path_factory, mnist5k_dir):
    """A CAE workdir trained for 2 steps, exported by tools/export.py and read back, and test digits as PNGs."""
    root = tmp_path_factory.mktemp("cae")
    workdir = root / "workdir"
    gin.clear_config()
    tr.config.parse_gin([f"{ROOT}/gin/cae_mnist5k.gin"], _TINY_CAE_BINDINGS)
    tr.train(str(workdir), mnist5k_dir)
    gin.clear_config()
    result = _run([sys.executable, "tools/export.py", f"--workdir={workdir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stock serving:" in result.stdout
    from tfdplc import data

    pngs = root / "pngs"
    pngs.mkdir()
    digits = data.load_images("mnist5k", "test", data_dir=mnist5k_dir, resolution=32).take(5)
    for index, digit in enumerate(digits):
        Image.fromarray(np.round(digit.numpy()[..., 0] * 255).astype(np.uint8)).save(
            pngs / f"digit{index}.png"
        )
    # Read back once here: each codec.load takes seconds, and the tests only read from it.
    loaded = codec.load(str(workdir / "export"))
    return {"root": root, "workdir": workdir, "export": workdir / "export", "pngs": pngs, "loaded": loaded}


def test_restore_for_export_refuses_what_is_not_a_workdir(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a tfdplc workdir"):
        codec.restore_for_export(str(tmp_path))


def test_codec_cli_compresses_and_decompresses_a_folder(cae_export):
    root, export = cae_export["root"], str(cae_export["export"])
    Image.new("L", (28, 28)).save(cae_export["pngs"] / "wrong_shape.png")
    result = _run(
        [
            sys.executable,
            "tools/codec.py",
            "compress",
            f"--model={export}",
            str(cae_export["pngs"]),
            f"--output={root / 'c'}",
            "-v",
        ]
    )
    assert result.returncode == 3, result.stderr[-3000:]  # one image was refused, the others compressed
    assert (
        "wrong_shape.png: refused: ValueError: 28x28x1 image, the model takes 32x32x1 images" in result.stderr
    )
    lines = [line for line in result.stdout.splitlines() if " -> " in line]
    assert len(lines) == 5
    # Format version 2: 8 bytes of header and checksum (a CAE stores no seed) around the 2-byte code.
    assert all("16 bits (0.0156 bpp), file 10 bytes (0.0781 bpp), PSNR" in line for line in lines), lines
    assert "compressed 5 images: 16.0 payload bits/image" in result.stdout
    files = sorted(os.listdir(root / "c"))
    assert files == [f"digit{i}.dplc" for i in range(5)]

    damaged = bytearray((root / "c" / "digit0.dplc").read_bytes())
    damaged[5] ^= 4  # one bit of the code (bytes 4-5; the checksum is bytes 6-9)
    (root / "c" / "zz_damaged.dplc").write_bytes(bytes(damaged))
    (root / "c" / "zz_huge.dplc").write_bytes(b"DPLC\x01" + bytes(5_000_000))
    result = _run(
        [
            sys.executable,
            "tools/codec.py",
            "decompress",
            f"--model={export}",
            str(root / "c"),
            f"--output={root / 'd'}",
            "-v",
            f"--originals={cae_export['pngs']}",
        ]
    )
    assert result.returncode == 3, result.stderr[-3000:]
    assert "zz_damaged.dplc: refused: CorruptedError: checksum mismatch" in result.stderr
    assert (
        "zz_huge.dplc: refused: CorruptedError: 5000005 bytes: too long, this model's containers have at "
        "most 50 bytes." in result.stderr
    )
    assert "decompressed 5 images" in result.stdout and "mean PSNR" in result.stdout
    # The PNGs are what the library decodes from the same files.
    containers = [(root / "c" / f).read_bytes() for f in files]
    expected = cae_export["loaded"].decompress(containers)
    for index in range(5):
        png = np.asarray(Image.open(root / "d" / f"digit{index}.png"))
        np.testing.assert_array_equal(png, expected[index][..., 0])


def test_codec_cli_info(cae_export):
    root, export = cae_export["root"], str(cae_export["export"])
    data = cae_export["loaded"].compress(np.zeros((1, 32, 32, 1), np.uint8))[0]
    (root / "one").mkdir(exist_ok=True)
    (root / "one" / "x.dplc").write_bytes(data)
    (root / "one" / "y.dplc").write_bytes(b"GIF89a")
    result = _run([sys.executable, "tools/codec.py", "info", str(root / "one"), f"--model={export}"])
    assert result.returncode == 3, result.stderr[-3000:]  # y.dplc is refused
    x_line, y_line = result.stdout.strip().splitlines()[-2:]
    assert "packed payload of 16 bits" in x_line and "image 32x32x1, code 2x2x4, L=2" in x_line
    assert (
        f"model tag {cae_export['loaded'].fingerprint[:2].hex()}" in x_line and "matches the model" in x_line
    )
    assert "y.dplc: refused: NotAContainerError" in y_line

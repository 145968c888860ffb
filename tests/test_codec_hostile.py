"""Hostile input at the codec's boundaries (issue 14): requests, folders, files and outputs made by hand."""

import json
import os
import re
import resource
import struct
import subprocess
import zlib

import numpy as np
import pytest
import tensorflow as tf
from inprocess_tools import load_tool
from PIL import Image
from test_codec import RANGE_LAYOUT, _graph_read, _graph_read_range, _tiny_cae, _valid
from test_export import _EntropyCodec, _tiny_dplc

from tfdplc import codec, nets
from tfdplc.codec import container as fmt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A packed (CAE, 32x32x1, 50-byte files) and a range-coded (28x28x1) export."""
    root = tmp_path_factory.mktemp("hostile")
    cae = codec.export_model(_tiny_cae(), str(root / "cae"))
    tf.keras.utils.set_random_seed(0)
    entropy = _EntropyCodec()
    entropy(tf.zeros([1, 28, 28, 1]))
    entropy_info = codec.export_model(entropy, str(root / "entropy"))
    _SHARED_LOADS.clear()
    _SHARED_LOADS.update({cae.export_dir: None, entropy_info.export_dir: None})
    return {"root": root, "cae": cae, "entropy": entropy_info}


# ------------------------------------------------------------------------------------------------------
# Finding 1: request amplification. Strings longer than the model's largest container are refused before
# any byte is decoded; nothing is padded to the longest string.


def test_graph_refuses_strings_longer_than_the_largest_container():
    valid = _valid()
    assert len(valid) == fmt.OVERHEAD + 3  # the largest (and only) size of LAYOUT's containers
    seeds, _ = _graph_read(tf.constant([valid] * 3))  # at the bound: read
    assert seeds.numpy().tolist() == [12345] * 3
    for extra in (1, 2**16):  # one byte over the bound, and a long one (the old reader padded to it)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"too long \(.* at most 51 bytes\)"):
            _graph_read(tf.constant([valid] * 300 + [valid + bytes(extra)]))
    range_valid = fmt.pack(RANGE_LAYOUT.header(1), b"x" * 10)
    bound = fmt.OVERHEAD + 16 * 7 * 7 * 4 + 1024  # range coded: 16 bytes per code element + 1 KiB
    with pytest.raises(tf.errors.InvalidArgumentError, match="too long"):
        _graph_read_range(tf.constant([range_valid, b"DPLC" + bytes(bound - 3)]))


# ------------------------------------------------------------------------------------------------------
# Finding 5: the exported graphs check shapes exactly, and an empty batch gets a clear error.


def test_exported_graphs_refuse_other_shapes_and_empty_batches(exports):
    info = exports["cae"]
    for folder in (info.codec_dir, info.serving_version_dir):
        signatures = tf.saved_model.load(folder).signatures
        good = signatures["compress"](images=tf.zeros([2, 32, 32, 1], tf.uint8))["compressed_bytes"]
        assert good.shape == (2,)
        for shape in ([1, 17, 17, 1], [1, 28, 28, 1], [1, 32, 28, 1], [1, 33, 33, 1], [1, 32, 32, 3]):
            with pytest.raises(tf.errors.InvalidArgumentError, match=r"must have shape \(B, 32, 32, 1\)"):
                signatures["compress"](images=tf.zeros(shape, tf.uint8))
        with pytest.raises(tf.errors.InvalidArgumentError, match="empty batch"):
            signatures["compress"](images=tf.zeros([0, 32, 32, 1], tf.uint8))
        with pytest.raises(tf.errors.InvalidArgumentError, match="empty batch"):
            signatures["decompress"](compressed_bytes=tf.constant([], tf.string))
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"codes must have shape \(B, 2, 2, 4\)"):
            signatures["decode"](codes=tf.zeros([1, 2, 2, 3], tf.int32), seeds=tf.zeros([1], tf.int64))


# ------------------------------------------------------------------------------------------------------
# Finding 7: decoding does not depend on the batch size.


def test_decoding_does_not_depend_on_the_batch_size():
    # Mnist5k-sized networks (untrained, sensitive weights): their float kernels pick other blockings for
    # other batch sizes, which used to move a few 8-bit pixels by one level (6 of 512,000 at batch 3).
    model = _tiny_dplc(m=32, width=16, mapping_width=64, learning_rate=1e-3)
    memory = codec.Codec.from_model(model)
    images = np.random.default_rng(0).integers(0, 256, (300, 32, 32, 1), dtype=np.uint8)
    files = memory.compress(images, seeds=np.arange(300), batch_size=100)
    assert memory.compress(images[:7], seeds=np.arange(7), batch_size=1) == files[:7]
    reference = memory.decompress(files, batch_size=100)
    for batch_size in (3, 300):
        np.testing.assert_array_equal(memory.decompress(files, batch_size=batch_size), reference)
    codes, seeds = memory.decompress_codes(files)
    np.testing.assert_array_equal(memory.decode(codes[:50], seeds[:50]), reference[:50])


# ------------------------------------------------------------------------------------------------------
# Findings 3 and 4 in the library: regular files only, bounded reads, atomic writes never via a symlink.


def test_read_regular_refuses_special_files_and_bounds_reads(tmp_path):
    from tfdplc.codec import files as safe_files

    (tmp_path / "ok").write_bytes(b"12345")
    assert safe_files.read_regular(str(tmp_path / "ok"), 5) == b"12345"
    with pytest.raises(safe_files.FileTooLargeError, match="more than 4 bytes"):
        safe_files.read_regular(str(tmp_path / "ok"), 4)
    os.mkfifo(tmp_path / "fifo")  # no writer: a blocking open would hang
    (tmp_path / "zero").symlink_to("/dev/zero")
    for name, kind in (("fifo", "a FIFO"), ("zero", "a character device"), (".", "a folder")):
        with pytest.raises(safe_files.NotARegularFileError, match=kind):
            safe_files.read_regular(str(tmp_path / name), 100)


def test_write_atomic_never_follows_symlinks_and_leaves_nothing_on_failure(tmp_path):
    from tfdplc.codec import files as safe_files

    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "dangling").symlink_to(outside / "created")
    with pytest.raises(FileExistsError):
        safe_files.write_atomic(str(out / "dangling"), b"x")
    assert not (outside / "created").exists()
    (outside / "keep").write_bytes(b"keep")
    (out / "live").symlink_to(outside / "keep")
    safe_files.write_atomic(str(out / "live"), b"new", overwrite=True)
    assert (outside / "keep").read_bytes() == b"keep"  # the target is untouched
    assert not (out / "live").is_symlink() and (out / "live").read_bytes() == b"new"
    # A write that fails (here: the file-size limit, as a full disk would) leaves no file at all.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (10, hard))
    try:
        with pytest.raises(OSError):
            safe_files.write_atomic(str(out / "big"), bytes(1000))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert sorted(os.listdir(out)) == ["dangling", "live"]


# ------------------------------------------------------------------------------------------------------
# Findings 2, 3, 4, 6 through tools/codec.py, run in this process (its absl flags parsed per call).


def _tool():
    return load_tool("codec")  # its flags active (other in-process tools define --output too)


#: The module's two exports (the `exports` fixture; tests damage copies only) -> the codec first loaded from
#: it, by the tool's own `_load_codec` or by `_loaded`. A `Codec` is immutable; loading an export takes
#: about a second, and the tests below load them about 40 times.
_SHARED_LOADS = {}


def _shared(path, load):
    """`load()`, called once per module export (`_SHARED_LOADS`) and reused; other paths load afresh."""
    if path not in _SHARED_LOADS:
        return load()
    if _SHARED_LOADS[path] is None:
        _SHARED_LOADS[path] = load()
    return _SHARED_LOADS[path]


def _loaded(path):
    """`codec.load(path)`, once per module export (`_shared`)."""
    return _shared(path, lambda: codec.load(path))


def _main(tool, args):
    """`tool.main` on ARGS; the tool's `_load_codec` runs as it is, except that a second load of one of
    the module's exports returns the codec its first load gave (a `Codec` is immutable)."""
    tool.FLAGS.unparse_flags()
    argv = tool.FLAGS(["codec.py", *args])
    load = tool._load_codec
    tool._load_codec = lambda: _shared(tool.FLAGS.model, load)
    try:
        return tool.main(argv)
    finally:
        tool._load_codec = load


def _cli(capsys, *args):
    """Runs `tools/codec.py ARGS` in this process; returns (exit code, stdout, stderr)."""
    code = _main(_tool(), args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _bomb_png() -> bytes:
    """A 61-byte PNG whose header claims 20000x20000 pixels (beyond Pillow's decompression-bomb limit)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"x\x9c\x03\x00") + chunk(b"IEND", b"")
    )


def test_cli_compress_isolates_bad_inputs_and_writes_atomically(exports, tmp_path, capsys):
    model = f"--model={exports['cae'].export_dir}"
    pngs, out, outside = tmp_path / "pngs", tmp_path / "out", tmp_path / "outside"
    for folder in (pngs, out, outside):
        folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(pngs / f"{name}.png")
    (pngs / "bomb.png").write_bytes(_bomb_png())
    os.mkfifo(pngs / "fifo.png")
    (pngs / "zero.png").symlink_to("/dev/zero")
    # A dangling symlink where an output goes: it exists, so without --overwrite nothing is written.
    (out / "a.dplc").symlink_to(outside / "escaped.dplc")
    code, _, err = _cli(capsys, "compress", model, str(pngs), f"--output={out}")
    assert code == 2 and "a.dplc exists" in err
    assert not (outside / "escaped.dplc").exists()
    # With --overwrite a live symlink is replaced, never its target.
    (outside / "escaped.dplc").write_bytes(b"keep")
    code, out_text, err = _cli(capsys, "compress", model, str(pngs), f"--output={out}", "--overwrite")
    assert code == 3, err
    assert "bomb.png: refused: ValueError: image too large" in err
    assert "fifo.png: refused: NotARegularFileError" in err and "a FIFO" in err
    assert "zero.png: refused: NotARegularFileError" in err and "a character device" in err
    assert "compressed 2 images" in out_text
    assert (outside / "escaped.dplc").read_bytes() == b"keep"
    assert not (out / "a.dplc").is_symlink()
    loaded = _loaded(exports["cae"].export_dir)
    for name in ("a", "b"):
        loaded.parse((out / f"{name}.dplc").read_bytes())
    assert sorted(os.listdir(out)) == ["a.dplc", "b.dplc"]  # no temporary file left behind


def test_cli_decompress_and_info_isolate_bad_files(exports, tmp_path, capsys):
    model = f"--model={exports['cae'].export_dir}"
    loaded = _loaded(exports["cae"].export_dir)
    files, out = tmp_path / "files", tmp_path / "out"
    files.mkdir()
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    for name, data in zip("ab", loaded.compress(images)):
        (files / f"{name}.dplc").write_bytes(data)
    os.mkfifo(files / "fifo.dplc")
    (files / "zero.dplc").symlink_to("/dev/zero")
    code, out_text, err = _cli(capsys, "decompress", model, str(files), f"--output={out}")
    assert code == 3, err
    assert "fifo.dplc: refused: NotARegularFileError" in err
    assert (
        "zero.dplc: refused: NotAContainerError" in err or "zero.dplc: refused: NotARegularFileError" in err
    )
    assert "decompressed 2 images" in out_text
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "a.png"))[..., None], loaded.decompress((files / "a.dplc").read_bytes())
    )
    code, out_text, _ = _cli(capsys, "info", str(files))
    assert code == 3 and "fifo.dplc: refused: NotARegularFileError" in out_text

    # A version 1 packed file whose payload length contradicts its code shape x bits (checksum intact).
    seed, payload, _ = loaded.parse((files / "a.dplc").read_bytes())
    header = loaded.layout.header(seed)
    (files / "a.dplc").unlink()
    (files / "b.dplc").unlink()
    (files / "fifo.dplc").unlink()
    (files / "zero.dplc").unlink()
    (files / "long.dplc").write_bytes(fmt.pack(header, payload + b"\x00"))
    code, out_text, _ = _cli(capsys, "info", str(files))
    assert code == 3 and "long.dplc: refused: CorruptedError: packed payload of 3 bytes" in out_text


def test_cli_range_coded_payload_refused_by_tfc_is_isolated(exports, tmp_path, capsys):
    entropy = _loaded(exports["entropy"].export_dir)
    images = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    good = entropy.compress(images)
    refused = None
    rng = np.random.default_rng(0)
    _, payload, _ = entropy.parse(good[0])
    for _ in range(200):  # a payload changed under a valid checksum that tfc's decoder refuses
        body = bytearray(payload)
        body[rng.integers(len(body))] = int(rng.integers(256))
        candidate = entropy.layout.write(0, bytes(body))
        try:
            entropy.decompress(candidate)
        except codec.CorruptedError:
            refused = candidate
            break
    assert refused is not None
    files = tmp_path / "files"
    files.mkdir()
    (files / "bad.dplc").write_bytes(refused)
    (files / "good.dplc").write_bytes(good[1])
    model = f"--model={exports['entropy'].export_dir}"
    code, out_text, err = _cli(capsys, "decompress", model, str(files), f"--output={tmp_path / 'out'}")
    assert code == 3 and "bad.dplc: refused: CorruptedError" in err and "decompressed 1 images" in out_text
    assert os.listdir(tmp_path / "out") == ["good.png"]
    code, out_text, _ = _cli(capsys, "info", str(files), model)
    assert code == 3
    assert "bad.dplc: refused: CorruptedError" in out_text and "good.dplc:" in out_text
    assert "matches the model" in out_text.split("good.dplc:")[1]


def test_cli_usage_errors_exit_2_without_a_traceback(exports, tmp_path, capsys):
    export = exports["cae"].export_dir
    model = f"--model={export}"
    loaded = _loaded(export)
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.dplc").write_bytes(loaded.compress(np.zeros((1, 32, 32, 1), np.uint8))[0])
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(files / "a.png")
    (tmp_path / "a_file").write_bytes(b"")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    cases = [
        (["decompress", model, str(files), f"--output={tmp_path / 'a_file'}"], "is not a folder"),
        (
            [
                "decompress",
                model,
                str(files),
                f"--output={files}",
                "--overwrite",
                f"--originals={files}",
                "-v",
            ],
            "would replace the originals",
        ),
    ]
    if os.geteuid() != 0:  # root writes into read-only folders
        cases.append((["decompress", model, str(files), f"--output={readonly}"], "not a writable folder"))
    for args, message in cases:
        code, _, err = _cli(capsys, *[("--verbose" if a == "-v" else a) for a in args])
        assert code == 2 and message in err, (args, err)
    assert (files / "a.png").exists() and len(os.listdir(files)) == 2  # the originals are untouched

    # A damaged export: truncated saved_model.pb, an edited codec.json.
    damaged = tmp_path / "damaged"
    subprocess.run(["cp", "-r", export, str(damaged)], check=True)
    description = json.loads((damaged / "codec.json").read_text())
    (damaged / "codec.json").write_text(json.dumps(dict(description, fingerprint="00" * 8)))
    code, _, err = _cli(capsys, "info", str(files), f"--model={damaged}")
    assert code == 2 and "does not describe the model" in err
    (damaged / "codec.json").write_text(json.dumps(description))
    pb = damaged / "codec" / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])
    code, _, err = _cli(capsys, "info", str(files), f"--model={damaged}")
    assert code == 2 and "cannot load the model" in err


def test_cli_sample_refuses_seeds_past_2_63(tmp_path, capsys):
    from tfdplc.objectives import WGANGP

    wgan = WGANGP(
        generator=nets.generator_G(32, m=8, width=4, channels=1),
        critic=nets.critic_f(32, width=4, channels=1),
        generator_optimizer=tf.keras.optimizers.Adam(),
        critic_optimizer=tf.keras.optimizers.Adam(),
    )
    info = codec.export_model(wgan, str(tmp_path / "wgan"))
    args = ["sample", f"--model={info.export_dir}", f"--output={tmp_path / 's'}", "--num=2"]
    code, _, err = _cli(capsys, *args, f"--seed={2**63 - 1}")
    assert code == 2 and "pass 2^63 - 1" in err
    code, _, err = _cli(capsys, *args, f"--seed={2**63 - 2}")
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "s")) == [f"sample_{2**63 - 2}.png", f"sample_{2**63 - 1}.png"]


# ------------------------------------------------------------------------------------------------------
# Archives on the command line: compress --archive, list, extract (one, all, salvaged), damage refused.


def test_cli_archives_compress_list_extract_and_refuse_damage(exports, tmp_path, capsys):
    model = f"--model={exports['cae'].export_dir}"
    loaded = _loaded(exports["cae"].export_dir)
    pngs, out = tmp_path / "pngs", tmp_path / "out"
    pngs.mkdir()
    images = np.random.default_rng(4).integers(0, 256, (5, 32, 32, 1), dtype=np.uint8)
    for i, image in enumerate(images):
        Image.fromarray(image[..., 0]).save(pngs / f"d{i}.png")
    (pngs / "zz_bomb.png").write_bytes(_bomb_png())
    target = tmp_path / "all.dplca"
    code, out_text, err = _cli(capsys, "compress", model, str(pngs), f"--archive={target}", "--verbose")
    assert code == 3 and "zz_bomb.png: refused" in err  # named, the others archived
    # One header (5 bytes, a 1-byte count, no seed: a CAE uses none), 5 x 16 bits back to back, the check.
    data = target.read_bytes()
    assert len(data) == 5 + 1 + 10 + 4 and "archived 5 images" in out_text and "4: " in out_text
    assert data == loaded.compress_archive(images)
    code, _, err = _cli(capsys, "compress", model, str(pngs), f"--archive={target}")
    assert code == 2 and "exists" in err and target.read_bytes() == data
    code, out_text, _ = _cli(capsys, "list", model, str(target))
    assert code == 0 and "archive of 5 images" in out_text and "\n3: 16 bits" in out_text
    code, out_text, _ = _cli(capsys, "extract", model, str(target), f"--output={out}", "--index=3")
    assert code == 0 and os.listdir(out) == ["all_3.png"]
    single = loaded.decompress(loaded.compress(images[3:4]))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "all_3.png"))[None, ..., None], single)
    code, out_text, _ = _cli(capsys, "extract", model, str(target), f"--output={out}", "--overwrite")
    assert code == 0 and "extracted 5 of 5" in out_text
    decoded = np.stack([np.asarray(Image.open(out / f"all_{i}.png"))[..., None] for i in range(5)])
    np.testing.assert_array_equal(decoded, loaded.decompress(loaded.compress(images)))
    code, _, err = _cli(capsys, "extract", model, str(target), f"--output={out}", "--overwrite", "--index=5")
    assert code == 2 and "holds images 0..4" in err
    # Damaged: one bit of the codes. A packed archive has one checksum: refused whole, exit 3.
    damaged = tmp_path / "damaged.dplca"
    damaged.write_bytes(data[:8] + bytes([data[8] ^ 1]) + data[9:])
    for command in ("list", "extract"):
        code, _, err = _cli(capsys, command, model, str(damaged), f"--output={tmp_path / 'x'}")
        assert code == 3 and "damaged.dplca: refused: DamagedArchiveError: archive checksum mismatch" in err
    assert not (tmp_path / "x").exists()

    # Range-coded: every entry has its own check, so the intact ones are named and can be salvaged.
    entropy_model = f"--model={exports['entropy'].export_dir}"
    entropy = _loaded(exports["entropy"].export_dir)
    entropy_images = np.random.default_rng(5).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    data = entropy.compress_archive(entropy_images)
    lengths = [len(p) for p in entropy.read_archive(data).payloads]
    entry1 = 6 + len(fmt.encode_varint(lengths[0])) + lengths[0] + 4 + len(fmt.encode_varint(lengths[1]))
    broken = tmp_path / "broken.dplca"
    broken.write_bytes(data[:entry1] + bytes([data[entry1] ^ 0x20]) + data[entry1 + 1 :])
    code, _, err = _cli(capsys, "list", entropy_model, str(broken))
    assert code == 3 and "intact entries: 0, 2 of 3" in err
    code, out_text, _ = _cli(capsys, "list", entropy_model, str(broken), "--salvage")
    assert code == 3 and "1 damaged entries" in out_text and "\n1: damaged" in out_text
    code, out_text, err = _cli(
        capsys, "extract", entropy_model, str(broken), f"--output={tmp_path / 'e'}", "--salvage"
    )
    assert code == 3 and "entry 1 is damaged" in err and "extracted 2 of 3" in out_text
    assert sorted(os.listdir(tmp_path / "e")) == ["broken_0.png", "broken_2.png"]
    expected = entropy.decompress(entropy.compress(entropy_images[2:]))[0]
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "e" / "broken_2.png"))[..., None], expected
    )
    # The last entry cut off (checksum gone): both entries found are intact, yet the archive is damaged.
    cut = tmp_path / "cut.dplca"
    # entry1 is where entry 1's payload starts; 4 bytes stand where the archive's check would be.
    cut.write_bytes(data[: entry1 + lengths[1] + 4] + bytes(4))
    code, out_text, err = _cli(
        capsys, "extract", entropy_model, str(cut), f"--output={tmp_path / 'f'}", "--salvage"
    )
    assert code == 3 and "extracted 2 of 2" in out_text
    assert "cut.dplca: damaged archive (--salvage): 2 entries found, 2 intact, the header announces 3" in err
    code, out_text, _ = _cli(capsys, "list", entropy_model, str(cut), "--salvage")
    assert code == 3 and "damaged archive, 2 entries found (the header announces 3: not checked)" in out_text


# ------------------------------------------------------------------------------------------------------
# Issue 29: bounded model-free reads, any file name, failed writes, colliding names, flag errors.


def _sealed_v1_file(path, header, length, payload_byte=0):
    """A sparse version 1 file announcing `length` payload bytes of `payload_byte`, with a valid checksum."""
    head = fmt.pack(header, b"")[: fmt.HEADER_SIZE - 4] + struct.pack(">I", length)
    checksum, block, left = zlib.adler32(head), bytes([payload_byte]) * (1 << 24), length
    while left:
        checksum = zlib.adler32(block[: min(left, len(block))], checksum)
        left -= min(left, len(block))
    with open(path, "wb") as f:
        f.write(head)
        if payload_byte:
            for start in range(0, length, len(block)):
                f.write(block[: min(len(block), length - start)])
        else:
            f.truncate(fmt.HEADER_SIZE + length)  # sparse: no disk used
            f.seek(fmt.HEADER_SIZE + length)
        f.write(struct.pack(">I", checksum))


def _traced(function):
    """`(result, peak bytes)` of Python and NumPy allocations while `function()` runs (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_info_without_a_model_checks_huge_files_in_bounded_memory(tmp_path, capsys):
    # The repro: a sealed version 1 file announcing a 16 MiB packed code (2048 x 2048 x 32 binary
    # indices), accepted at 2.8 GiB before; and a sparse file past 2 GiB announcing a range-coded payload.
    packed = fmt.Header(
        payload_kind=fmt.PAYLOAD_PACKED,
        flags=0,
        bits_per_symbol=1,
        fingerprint=b"\x01" * 8,
        image_shape=(32, 32, 1),
        code_shape=(2048, 2048, 32),
        levels=2,
        seed=0,
    )
    _sealed_v1_file(tmp_path / "packed.dplc", packed, 2**24, payload_byte=0xA5)
    ranged = dataclasses_replace(packed, payload_kind=fmt.PAYLOAD_RANGE_CODED, bits_per_symbol=0, levels=0)
    _sealed_v1_file(tmp_path / "sparse.dplc", ranged, 2**31 + 5)
    (code, out, _), peak = _traced(lambda: _cli(capsys, "info", str(tmp_path)))
    assert code == 0, out
    assert "packed.dplc: 16777264 bytes, format version 1, packed payload of 134217728 bits" in out
    assert f"sparse.dplc: {2**31 + 53} bytes, format version 1, range-coded" in out
    assert peak < 8 * 2**20, peak  # one 1 MiB chunk at a time (plus small blocks), not the file
    # The streamed check still reads every index: a sealed 3-level code whose indices are all 3 is refused.
    three = dataclasses_replace(packed, bits_per_symbol=2, levels=3, code_shape=(2048, 2048, 16))
    _sealed_v1_file(tmp_path / "packed.dplc", three, 2**24, payload_byte=0xFF)  # every index is 3 >= L
    (tmp_path / "sparse.dplc").unlink()
    code, out, _ = _cli(capsys, "info", str(tmp_path))
    assert code == 3 and "packed.dplc: refused: CorruptedError: code index 3 out of range" in out


def dataclasses_replace(header, **changes):
    import dataclasses

    return dataclasses.replace(header, **changes)


def test_read_regular_holds_one_copy_of_the_file(tmp_path):
    from tfdplc.codec import files as safe_files

    path = tmp_path / "big"
    path.write_bytes(bytes(range(256)) * (2**17))  # 32 MiB
    data, peak = _traced(lambda: safe_files.read_regular(str(path), 2**25))
    assert len(data) == 2**25 and data[:3] == b"\x00\x01\x02"
    assert peak < 2**25 + 2**20, peak  # the file once (reading in chunks and joining them held it twice)
    with pytest.raises(safe_files.FileTooLargeError) as error:
        _traced(lambda: safe_files.read_regular(str(path), 2**25 - 1))
    assert error.value.size == 2**25 and error.value.head == bytes(range(16))


def _strict_cli(monkeypatch, *args):
    """`_cli` with stdout and stderr that are strict UTF-8 streams (as PYTHONIOENCODING=utf-8 makes them)."""
    import io

    streams = [io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict") for _ in range(2)]
    monkeypatch.setattr("sys.stdout", streams[0])
    monkeypatch.setattr("sys.stderr", streams[1])
    code = _main(_tool(), args)
    texts = []
    for stream in streams:
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8"))
    monkeypatch.undo()
    return code, texts[0], texts[1]


def test_any_byte_string_is_a_file_name_on_every_path(exports, tmp_path, monkeypatch):
    model = f"--model={exports['cae'].export_dir}"
    pngs, out, back = tmp_path / "pngs", tmp_path / "out", tmp_path / "back"
    pngs.mkdir()
    rng = np.random.default_rng(2)
    longest = "n" * 250 + ".png"  # 254 bytes: its output n...n.dplc has the longest legal name, 255 bytes
    names = [os.fsdecode(b"\xff.png"), os.fsdecode(b"caf\xc3\xa9.png"), "new\nline.png", longest, "z.png"]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(pngs / name)
    code, text, err = _strict_cli(monkeypatch, "compress", model, str(pngs), f"--output={out}", "--verbose")
    assert code == 0, err
    assert "compressed 5 images" in text and len([line for line in text.splitlines() if " -> " in line]) == 5
    assert "\\xff.png -> " in text and "café.png -> " in text and "new\\nline.png -> " in text
    assert len(os.fsencode("n" * 250 + ".dplc")) == 255 and (out / ("n" * 250 + ".dplc")).exists()
    assert sorted(os.listdir(out)) == sorted(os.path.splitext(n)[0] + ".dplc" for n in names)  # no temporary
    code, text, err = _strict_cli(monkeypatch, "decompress", model, str(out), f"--output={back}", "--verbose")
    assert code == 0 and "decompressed 5 images" in text and "\\xff.dplc -> " in text, err
    code, text, _ = _strict_cli(monkeypatch, "info", str(out))
    assert code == 0 and "\\xff.dplc: 10 bytes, format version 3" in text
    (out / os.fsdecode(b"\xfe.dplc")).write_bytes(b"junk")
    code, text, _ = _strict_cli(monkeypatch, "info", str(out), model)
    assert code == 3 and "\\xfe.dplc: refused: NotAContainerError" in text
    target = tmp_path / os.fsdecode(b"\xfd.dplca")
    code, text, err = _strict_cli(
        monkeypatch, "compress", model, str(pngs), f"--archive={target}", "--verbose"
    )
    assert code == 0 and "archived 5 images in " in text and "\\xfd.dplca" in text and "0: " in text, err
    code, text, _ = _strict_cli(monkeypatch, "list", model, str(target))
    assert code == 0 and "\\xfd.dplca: archive of 5 images" in text
    # An input whose output name would pass NAME_MAX (256 bytes) is that file's error, the others are written.
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(pngs / ("m" * 251 + ".png"))
    code, text, err = _strict_cli(monkeypatch, "compress", model, str(pngs), f"--output={out}", "--overwrite")
    assert code == 3 and "compressed 5 images" in text
    assert "not written: OSError: [Errno 36] File name too long" in err


@pytest.mark.parametrize("error", ["ENOSPC", "EROFS", "EACCES", "ENAMETOOLONG", "EMFILE"])
def test_every_failed_write_is_a_named_per_file_error(exports, tmp_path, capsys, monkeypatch, error):
    import errno

    tool = _tool()
    loaded = _loaded(exports["cae"].export_dir)
    monkeypatch.setattr(tool, "_load_codec", lambda: loaded)  # one load for all the commands below
    pngs, out = tmp_path / "pngs", tmp_path / "out"
    pngs.mkdir()
    out.mkdir()
    for name in "ab":
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(pngs / f"{name}.png")
    number = getattr(errno, error)

    def failing_fsync(fd):  # where a full disk (or another refusal of the file system) surfaces
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    # The named error (OSError or its subclass for the errno, e.g. PermissionError), then its reason.
    message = re.compile(rf"(\S+): not written: \w+: \[Errno {number}\] {re.escape(os.strerror(number))}")
    target = tmp_path / "all.dplca"
    code, out_text, err = _cli(capsys, "compress", str(pngs), f"--archive={target}")
    assert code == 3 and message.findall(err) == [str(target)] and "archived" not in out_text, err
    code, out_text, err = _cli(capsys, "compress", str(pngs), f"--output={out}")
    assert message.findall(err) == [str(out / "a.dplc"), str(out / "b.dplc")], err
    assert code == 3 and "compressed 0 images" in out_text
    monkeypatch.undo()
    monkeypatch.setattr(tool, "_load_codec", lambda: loaded)
    (out / "a.dplc").write_bytes(loaded.compress(np.zeros((1, 32, 32, 1), np.uint8))[0])
    monkeypatch.setattr(os, "fsync", failing_fsync)
    code, out_text, err = _cli(capsys, "decompress", str(out), f"--output={tmp_path / 'back'}")
    assert code == 3 and message.findall(err) == [str(tmp_path / "back" / "a.png")], err
    assert not target.exists()
    assert os.listdir(out) == ["a.dplc"] and os.listdir(tmp_path / "back") == []  # no temporary files


def test_colliding_input_names_cost_only_the_colliding_files(exports, tmp_path, capsys):
    model = f"--model={exports['cae'].export_dir}"
    loaded = _loaded(exports["cae"].export_dir)
    files = tmp_path / "files"
    files.mkdir()
    images = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 1), dtype=np.uint8)
    for i, data in enumerate(loaded.compress(images)):
        (files / f"digit00{i}.dplc").write_bytes(data)
    (files / "digit002.DPLC").write_bytes(loaded.compress(images[:1])[0])  # digit002.png twice
    code, out_text, err = _cli(capsys, "decompress", model, str(files), f"--output={tmp_path / 'out'}")
    assert code == 3 and "decompressed 3 images" in out_text
    for name in ("digit002.DPLC", "digit002.dplc"):
        assert f"{files / name}: refused: its output {tmp_path / 'out' / 'digit002.png'} would collide" in err
    assert sorted(os.listdir(tmp_path / "out")) == ["digit000.png", "digit001.png", "digit003.png"]
    # The same in compress: a.png and a.PNG.
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for name in ("a.png", "a.PNG", "b.png"):
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(pngs / name, format="PNG")
    code, out_text, err = _cli(capsys, "compress", model, str(pngs), f"--output={tmp_path / 'c'}")
    assert code == 3 and "compressed 1 images" in out_text and err.count("would collide") == 2
    assert os.listdir(tmp_path / "c") == ["b.dplc"]


def test_flag_parse_errors_exit_2_with_one_line(capsys):
    tool = _tool()
    for args, message in (
        (["--seed=abc"], "error: flag --seed=abc: invalid literal"),
        (["--bogus"], "error: Unknown command line flag 'bogus'"),
        (["--batch_size"], "error: flag --batch_size"),
    ):
        tool.FLAGS.unparse_flags()
        with pytest.raises(SystemExit) as exit_info:
            tool.parse_flags(["codec.py", "info", *args, "x.dplc"])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    tool.FLAGS.unparse_flags()
    assert tool.parse_flags(["codec.py", "info", "-v", "x.dplc"]) == ["codec.py", "info", "x.dplc"]
    assert tool.FLAGS.verbose
    tool.FLAGS.unparse_flags()
    # Through the script itself: absl's "FATAL Flags parsing error" (exit 1) is gone.
    result = subprocess.run(
        ["python", os.path.join(ROOT, "tools", "codec.py"), "info", "--seed=abc", "x.dplc"],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=120,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and lines == [
        "error: flag --seed=abc: invalid literal for int() with base 10: 'abc' (see --help)"
    ], result.stderr


def test_too_long_inputs_get_the_documented_error_everywhere(exports, tmp_path, capsys):
    from tfdplc.codec import archive

    model = f"--model={exports['cae'].export_dir}"
    loaded = _loaded(exports["cae"].export_dir)
    good = loaded.compress(np.zeros((1, 32, 32, 1), np.uint8))[0]
    bound = loaded.max_container_size
    # Python: a too-long file that starts like a container of any version is a CorruptedError ("too long"),
    # an archive is named, anything else is not a container.
    for data in (
        good + bytes(bound),
        good[:1] + b"\x02" + good[2:] + bytes(bound),
        fmt.pack(loaded.layout.header(0), good[4:6]) + bytes(bound),
    ):
        with pytest.raises(codec.CorruptedError, match="too long"):
            loaded.parse(data)
    payload = loaded.parse(good)[1]
    big_archive = archive.write(loaded.layout, 0, [payload] * 100)
    assert len(big_archive) > bound
    with pytest.raises(codec.NotAContainerError, match=r"archive \(.dplca\), not a single-image container"):
        loaded.parse(big_archive)
    with pytest.raises(codec.NotAContainerError, match="not a tfdplc container"):
        loaded.parse(b"GIF89a" + bytes(bound))
    # The command line names an archive renamed to .dplc as an archive in decompress and info alike.
    files = tmp_path / "files"
    files.mkdir()
    (files / "renamed.dplc").write_bytes(big_archive)
    (files / "long.dplc").write_bytes(good + bytes(bound))
    expected = "renamed.dplc: refused: NotAContainerError: a tfdplc archive (.dplca)"
    code, _, err = _cli(capsys, "decompress", model, str(files), f"--output={tmp_path / 'out'}")
    assert code == 3 and expected in err and "long.dplc: refused: CorruptedError" in err and "too long" in err
    code, out_text, _ = _cli(capsys, "info", model, str(files))
    assert code == 3 and expected in out_text and "long.dplc: refused: CorruptedError" in out_text
    code, out_text, _ = _cli(capsys, "info", str(files))  # without the model: what the first bytes say
    assert code == 3 and "renamed.dplc: refused: NotAContainerError: a tfdplc archive" in out_text

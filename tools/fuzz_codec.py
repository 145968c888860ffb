#!/usr/bin/env python
"""Fuzzes the container and archive readers and the exported graphs with damaged files; prints the counts.

Each case takes a valid file of one of the models and damages it at random: bit flips, byte overwrites,
truncation, appended / inserted / deleted bytes, random data (with or without the magic), a splice of
two files of different models, a whole file of another model; half of the byte-level damages are
"resealed" (the check value recomputed: version 3's KMX-32, version 2's keyed Adler-32, version 1's
plain Adler-32), so that the checks behind it are exercised too. Single files are format version 3
(what writers write) for half of the cases, and the version 2 and version 1 forms of the same image
(still read) for a quarter each. For every case:

  * Python (`Codec.parse`) must refuse with a `tfdplc.codec.CodecError`, or accept;
  * the model's own graph (`Codec.graph_decompress`, what a TF Serving client gets) must refuse with a
    "tfdplc container: ..." error exactly when Python refuses, and decode to images of the right shape
    when Python accepts; the one exception: a resealed range-coded payload that Python accepts (it cannot
    check range-coded payloads) may be refused by tfc's range decoder ("Sanity check failed"), which
    `Codec.decompress` reports as a `CorruptedError` too (counted as graph:refused_range_payload);
  * a file that is not resealed and differs from the original must be refused by both.

Archives (`tfdplc.codec.archive`, --archive_cases per model) get the same damage: Python
(`Codec.read_archive`) must refuse with a `CodecError` or accept; for packed models the graph's
`decompress_archive` signature must refuse ("tfdplc archive: ...") exactly when Python refuses and decode
what Python decodes when it accepts; a range-coded archive Python accepts must decode (or, resealed, be
refused by tfc's range decoder); a damaged archive that is not resealed must be refused.

The command line (--cli_cases per model) is fuzzed in this process (tools/codec.py's `main`, the model
in memory) with hostile folders: file names of random bytes (not UTF-8, control characters, up to and
past NAME_MAX), names whose outputs collide (NAME.dplc beside NAME.DPLC), damaged containers, archives
and PNGs, and failing disks (every fsync raising ENOSPC, EROFS, EACCES, ENAMETOOLONG or EMFILE, or a
file-size limit), with stdout and stderr strict UTF-8 streams. Each run must return 0, 2 or 3 without an
exception, print only printable lines, leave no temporary file, write only outputs that read back (a
container the model accepts, a PNG of the model's shape, an archive that reads), return 0 only when it
named no refused file, and refuse every input whose output collides.

Anything else (another exception, a crash, a disagreement, an accepted damaged file) is a failure. By
default two tiny models are built in memory: a fixed-rate stochastic DPLC (3 symbols: 2 bits per index,
so out-of-range indices and padding bits exist) and a codec whose codes are range coded by an
EntropyBottleneck; --model fuzzes exports of tools/export.py instead.

Example:
  python tools/fuzz_codec.py --cases=5000 --output=/tmp/fuzz.json

Exit codes: 0 no failure; 1 failures (listed in the output).
"""

import collections
import json
import os
import struct
import time
import zlib

import numpy as np

# TF must be imported before absl's app.run: imported inside main, Keras functional models fail to build
# ('SymbolicTensor' object has no attribute 'node') on TF 2.14.
import tensorflow as tf
from absl import app, flags

flags.DEFINE_integer("cases", 5000, "Number of damaged single files per model.")
flags.DEFINE_integer("archive_cases", 1000, "Number of damaged archives per model.")
flags.DEFINE_integer("cli_cases", 0, "Number of tools/codec.py runs on hostile folders per model.")
flags.DEFINE_integer("seed", 0, "Seed of the damage.")
flags.DEFINE_multi_string("model", [], "Export folders to fuzz (default: two tiny in-memory models).")
flags.DEFINE_string("output", None, "Write the counts as JSON here.")
FLAGS = flags.FLAGS

KINDS = (
    "flip",
    "set",
    "truncate",
    "append",
    "insert",
    "delete",
    "random",
    "magic_random",
    "splice",
    "foreign",
)
RESEALABLE = ("flip", "set", "insert", "delete", "append")


def _tiny_models():
    """A fixed-rate stochastic DPLC and an entropy-coded codec, tiny and untrained (weights are random)."""
    from tfdplc import codec, nets
    from tfdplc.layers import EntropyBottleneck, ScalarQuantizer
    from tfdplc.objectives import DPLC

    tf.keras.utils.set_random_seed(0)
    dplc = DPLC(
        encoder=nets.encoder_E(32, 3, width=4, channels=1),
        mapping=nets.mapping_B(32, 3, m=8, n_blocks=1, width=8, noise=True, seed=1),
        quantizer=ScalarQuantizer((-1.0, 0.0, 1.0)),
        optimizer=tf.keras.optimizers.Adam(),
        lambda_mmd=1.0,
        generator=nets.generator_G(32, m=8, width=4, channels=1),
        seed=2,
    )
    dplc(tf.zeros([1, 32, 32, 1]))

    class EntropyCodec(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.analysis = tf.keras.layers.Conv2D(4, 5, strides=4, padding="same")
            self.codec_bottleneck = EntropyBottleneck()
            self.synthesis = tf.keras.layers.Conv2DTranspose(1, 5, strides=4, padding="same")

        def call(self, images, training=False):
            return self.synthesis(self.codec_bottleneck(self.analysis(images), training=training)[0])

        def codec_spec(self):
            return codec.CodecSpec(image_shape=(28, 28, 1), code_shape=(7, 7, 4), method="entropy")

        def encode_codes(self, images, seeds):
            return codec.bottleneck_codes(self.codec_bottleneck, self.analysis(images))

        def decode_codes(self, codes, seeds):
            return tf.sigmoid(self.synthesis(codec.bottleneck_values(self.codec_bottleneck, codes)))

    entropy = EntropyCodec()
    entropy(tf.zeros([1, 28, 28, 1]))
    return [codec.Codec.from_model(dplc), codec.Codec.from_model(entropy)]


def _reseal(data: bytes, fingerprint: bytes) -> bytes:
    """Recomputes the check value of a (damaged) file as its first bytes say it is made, if it has one."""
    from tfdplc.codec import container

    if data[:4] == b"DPLC" and len(data) >= 48:  # version 1: Adler-32 of the bytes before it
        return data[:-4] + struct.pack(">I", zlib.adler32(data[:-4]))
    version = data[2] if data[:2] == b"DA" and len(data) > 2 else data[1] if len(data) > 1 else None
    if data[:1] == b"D" and version in (2, 3) and len(data) >= 8:  # keyed by the model (files, archives)
        return data[:-4] + struct.pack(">I", container.check_value(version, fingerprint, data[:-4]))
    return data


def _damage(rng, data: bytes, other: bytes, kind: str) -> bytes:
    out = bytearray(data)
    size = len(out)
    if kind == "flip":
        for _ in range(rng.integers(1, 9)):
            out[rng.integers(size)] ^= 1 << int(rng.integers(8))
    elif kind == "set":
        for _ in range(rng.integers(1, 9)):
            out[rng.integers(size)] = int(rng.integers(256))
    elif kind == "truncate":
        del out[rng.integers(size) :]
    elif kind == "append":
        out += rng.bytes(int(rng.integers(1, 65)))
    elif kind == "insert":
        at = int(rng.integers(size + 1))
        out[at:at] = rng.bytes(int(rng.integers(1, 9)))
    elif kind == "delete":
        at = int(rng.integers(size))
        del out[at : at + int(rng.integers(1, 9))]
    elif kind == "random":
        out = bytearray(rng.bytes(int(rng.integers(0, 2 * size + 1))))
    elif kind == "magic_random":
        magic = [b"DPLC", b"D\x02", b"D\x03", b"DA\x02", b"DA\x03"][int(rng.integers(5))]
        out = bytearray(magic + rng.bytes(int(rng.integers(0, 2 * size))))
    elif kind == "splice":
        cut = int(rng.integers(1, min(size, len(other))))
        out = bytearray(data[:cut] + other[cut:])
    else:  # "foreign": an intact file of another model
        out = bytearray(other)
    return bytes(out)


def _fuzz_model(codec, other_files, rng, cases, failures):
    """Runs `cases` damaged files against one model; returns the counts."""
    from tfdplc.codec import CodecError, container

    shape = codec.image_shape
    images = rng.integers(0, 256, size=(16, *shape), dtype=np.uint8)
    valid = codec.compress(images)
    parsed = [codec.parse(f) for f in valid]
    forms = {
        3: valid,
        2: [codec.layout.write(seed, payload, version=2) for seed, payload, _ in parsed],
        1: [container.pack(codec.layout.header(seed), payload) for seed, payload, _ in parsed],
    }
    counts = collections.Counter()
    for case in range(cases):
        draw = rng.random()
        version = 1 if draw < 0.25 else 2 if draw < 0.5 else 3
        original = forms[version][case % len(valid)]
        kind = KINDS[int(rng.integers(len(KINDS)))]
        data = _damage(rng, original, other_files[int(rng.integers(len(other_files)))], kind)
        resealed = kind in RESEALABLE and rng.random() < 0.5
        if resealed:
            data = _reseal(data, codec.fingerprint)
        label = f"v{version}:{kind}" + ("+resealed" if resealed else "")
        try:
            codec.parse(data)
            python = None
        except CodecError as error:
            python = type(error).__name__
        except Exception as error:  # anything else is a bug
            failures.append(f"{codec.spec.method} case {case} ({label}): Python raised {error!r}")
            continue
        try:
            decoded = codec.graph_decompress([data])
            graph = None
        except CodecError as error:
            graph = str(error)
        except Exception as error:
            failures.append(f"{codec.spec.method} case {case} ({label}): the graph raised {error!r}")
            continue
        counts["cases"] += 1
        counts[f"python:{python or 'accepted'}"] += 1
        if python is None:
            counts[f"accepted:{label}"] += 1
            if graph is not None:
                if resealed and codec.spec.entropy_coded and "range-coded payload does not decode" in graph:
                    # Python cannot check a range-coded payload; tfc's decoder refused it: still a refusal.
                    counts["graph:refused_range_payload"] += 1
                else:
                    failures.append(
                        f"{codec.spec.method} case {case} ({label}): Python accepts, graph refuses: {graph}"
                    )
            elif decoded.shape != (1, *shape):
                failures.append(f"{codec.spec.method} case {case} ({label}): decoded shape {decoded.shape}")
            elif not resealed and data != original:
                failures.append(f"{codec.spec.method} case {case} ({label}): a damaged file was accepted")
        else:
            counts["graph:refused"] += 1
            if graph is None or "tfdplc container:" not in graph:
                failures.append(
                    f"{codec.spec.method} case {case} ({label}): Python refuses ({python}), graph: {graph}"
                )
    return dict(counts)


def _fuzz_archives(codec, other_archives, rng, cases, failures):
    """Runs `cases` damaged archives against one model; returns the counts."""
    from tfdplc.codec import CodecError

    shape = codec.image_shape
    packed = codec.layout.levels is not None
    from tfdplc.codec import archive as archive_format

    valid = [
        codec.compress_archive(rng.integers(0, 256, size=(count, *shape), dtype=np.uint8))
        for count in (1, 2, 3, 5, 8)
    ]
    # The same archives in version 2 (still read): every other case damages one of them.
    valid += [
        archive_format.write(codec.layout, a.seed if codec.layout.uses_seed else 0, a.payloads, version=2)
        for a in map(codec.read_archive, valid)
    ]
    graph = codec._signatures["decompress_archive"] if packed else None
    counts = collections.Counter()
    for case in range(cases):
        original = valid[case % len(valid)]
        kind = KINDS[int(rng.integers(len(KINDS)))]
        data = _damage(rng, original, other_archives[int(rng.integers(len(other_archives)))], kind)
        resealed = kind in RESEALABLE and rng.random() < 0.5
        if resealed:
            data = _reseal(data, codec.fingerprint)
        label = f"archive:{kind}" + ("+resealed" if resealed else "")
        name = f"{codec.spec.method} archive case {case} ({label})"
        try:
            images = codec.decompress_archive(data)
            python = None
        except CodecError as error:
            python = type(error).__name__
            if "range-coded payload does not decode" in str(error) and resealed and not packed:
                python = "range_payload"  # a resealed entry tfc's decoder refuses: still a refusal
        except Exception as error:  # anything else is a bug
            failures.append(f"{name}: Python raised {error!r}")
            continue
        counts["cases"] += 1
        counts[f"python:{python or 'accepted'}"] += 1
        if python is None and not resealed and data != original:
            failures.append(f"{name}: a damaged archive was accepted")
        if graph is None:
            continue
        try:
            decoded = graph(archive_bytes=tf.constant(data))["images"].numpy()
            graph_result = None
        except tf.errors.InvalidArgumentError as error:
            graph_result = error.message
        except Exception as error:
            failures.append(f"{name}: the graph raised {error!r}")
            continue
        if python is None:
            counts[f"accepted:{label}"] += 1
            if graph_result is not None:
                failures.append(f"{name}: Python accepts, graph refuses: {graph_result[:200]}")
            elif not np.array_equal(decoded, images):
                failures.append(f"{name}: the graph decodes other images than Python")
        elif graph_result is None or "tfdplc archive:" not in graph_result:
            failures.append(f"{name}: Python refuses ({python}), graph: {str(graph_result)[:200]}")
        else:
            counts["graph:refused"] += 1
    return dict(counts)


# ------------------------------------------------------------------------------------------------------
# The command line on hostile folders: names, disks, archives.

_ERRNOS = ("ENOSPC", "EROFS", "EACCES", "ENAMETOOLONG", "EMFILE")
_TEMPORARY = b".tfdplc-"


def _codec_tool():
    """tools/codec.py as a module, its flags on absl's FLAGS in place of this tool's clashing ones."""
    import importlib.util
    import os
    import sys

    for name in ("model", "output", "seed"):  # read by main before this; tools/codec.py defines them too
        if name in FLAGS:
            delattr(FLAGS, name)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "codec.py")
    spec = importlib.util.spec_from_file_location("codec_tool", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["codec_tool"] = module
    return module


def _random_name(rng, stem_hint: bytes, suffix: bytes) -> bytes:
    """A hostile file name ending in `suffix`: random bytes, control characters, long, or plain."""
    kind = int(rng.integers(6))
    if kind == 0:  # any bytes but "/" and NUL (not UTF-8, control characters, spaces)
        stem = bytes(b for b in rng.integers(1, 256, int(rng.integers(1, 12))) if b != ord("/"))
    elif kind == 1:  # the longest legal name, or one byte past it (its output cannot be created)
        stem = b"n" * (255 - len(suffix) + int(rng.integers(0, 2)) - 1)
    elif kind == 2:
        stem = "caf\u00e9-\u6570\u5b57".encode() + bytes([int(rng.integers(1, 32))])
    elif kind == 3:
        stem = b"new\nline" + stem_hint
    else:
        stem = stem_hint
    if stem in (b".", b"..") or not stem:
        stem = b"x" + stem
    return stem + suffix


def _png_bytes(rng, shape, good: bool) -> bytes:
    import io

    from PIL import Image

    height, width, channels = shape if good else (shape[0] + 1, shape[1], shape[2])
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _run_cli(tool, args):
    """`tool.main` on `args` with strict UTF-8 stdout / stderr: `(exit code, stdout, stderr)`."""
    import io
    import sys

    streams = [io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict") for _ in range(2)]
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = streams
    try:
        tool.FLAGS.unparse_flags()
        code = tool.main(tool.FLAGS(["codec.py", *args]))
    finally:
        sys.stdout, sys.stderr = saved
    texts = []
    for stream in streams:
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8"))
    return code, texts[0], texts[1]


def _check_outputs(codec, folder: bytes, name: str, failures):
    """Every file under `folder` reads back, and no temporary file is left; returns the outputs' count."""
    import os

    from PIL import Image

    count = 0
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if entry.startswith(_TEMPORARY):
            failures.append(f"{name}: temporary file {entry!r} left behind")
            continue
        with open(path, "rb") as f:
            data = f.read()
        count += 1
        try:
            if entry.lower().endswith(b".png"):
                with Image.open(__import__("io").BytesIO(data)) as image:
                    shape = (image.size[1], image.size[0], len(image.getbands()))
                if shape != tuple(codec.image_shape):
                    failures.append(f"{name}: output {entry!r} has shape {shape}")
            elif entry.endswith(b".dplca"):
                codec.read_archive(data)
            else:
                codec.parse(data)
        except Exception as error:  # noqa: BLE001 - an output that does not read back is a failure
            failures.append(f"{name}: output {entry!r} does not read back: {error!r}")
    return count


def _fuzz_cli(tool, codec, other_files, rng, cases, failures, root: bytes):
    """Runs `cases` tools/codec.py commands on hostile folders; returns the counts."""
    import errno
    import os
    import resource
    import shutil

    shape = codec.image_shape
    images = rng.integers(0, 256, size=(6, *shape), dtype=np.uint8)
    valid = codec.compress(images)
    archive_bytes = codec.compress_archive(images[:3])
    counts = collections.Counter()
    real_fsync = os.fsync
    tool._load_codec = lambda: codec  # the model in memory (its export is not what is fuzzed)
    for case in range(cases):
        command = ["compress", "decompress", "info", "archive", "list", "extract"][int(rng.integers(6))]
        base = os.path.join(root, b"case%d" % case)
        inputs, outputs = os.path.join(base, b"in"), os.path.join(base, b"out")
        os.makedirs(inputs)
        suffix = b".png" if command in ("compress", "archive") else b".dplc"
        stems, made = [], set()
        for index in range(int(rng.integers(1, 6))):
            hint = b"f%d" % index
            if stems and rng.random() < 0.2:  # the same stem with another case: the outputs collide
                name = stems[-1] + suffix.upper()
            else:
                name = _random_name(rng, hint, suffix)
            if name in made:
                continue
            path = os.path.join(inputs, name)
            if command in ("compress", "archive"):
                data = _png_bytes(rng, shape, good=rng.random() < 0.8)
                if rng.random() < 0.1:
                    data = data[: int(rng.integers(len(data)))]
            else:
                data = valid[int(rng.integers(len(valid)))]
                if rng.random() < 0.3:
                    kind = KINDS[int(rng.integers(len(KINDS)))]
                    data = _damage(rng, data, other_files[int(rng.integers(len(other_files)))], kind)
            try:
                with open(path, "wb") as f:
                    f.write(data)
            except OSError:  # a name past NAME_MAX cannot be an input (only an output)
                continue
            made.add(name)
            stems.append(os.path.splitext(name)[0])
        if not made:
            shutil.rmtree(base)
            continue
        archive_path = os.path.join(base, _random_name(rng, b"all", b".dplca")[-200:])
        args = ["--model=in-memory"]
        if command in ("list", "extract"):
            data = archive_bytes
            if rng.random() < 0.5:
                kind = KINDS[int(rng.integers(len(KINDS)))]
                data = _damage(rng, data, other_files[int(rng.integers(len(other_files)))], kind)
            with open(archive_path, "wb") as f:
                f.write(data)
            args += [command, os.fsdecode(archive_path)]
            if command == "extract":
                args += [f"--output={os.fsdecode(outputs)}"] + (["--salvage"] if rng.random() < 0.5 else [])
        elif command == "archive":
            args += ["compress", os.fsdecode(inputs), f"--archive={os.fsdecode(archive_path)}"]
        else:
            args += [command, os.fsdecode(inputs)]
            if command != "info":
                args.append(f"--output={os.fsdecode(outputs)}")
        if rng.random() < 0.5:
            args.append("--verbose")
        if command in ("compress", "archive") and rng.random() < 0.5:
            args.append(f"--seed={int(rng.integers(0, 2**28))}")
        fault = "none"
        draw = rng.random()
        if draw < 0.3 and command not in ("info", "list"):
            fault = _ERRNOS[int(rng.integers(len(_ERRNOS)))]
            number = getattr(errno, fault)

            def failing_fsync(fd, number=number):
                raise OSError(number, os.strerror(number))

            os.fsync = failing_fsync
        elif draw < 0.4 and command not in ("info", "list"):
            fault = "RLIMIT_FSIZE"
        name = f"{codec.spec.method} cli case {case} ({command}, fault {fault})"
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        try:
            if fault == "RLIMIT_FSIZE":
                resource.setrlimit(resource.RLIMIT_FSIZE, (int(rng.integers(1, 40)), limits[1]))
            code, out, err = _run_cli(tool, args)
        except Exception as error:  # noqa: BLE001 - anything escaping main is a failure
            failures.append(f"{name}: raised {error!r}")
            continue
        finally:
            os.fsync = real_fsync
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        counts["cases"] += 1
        counts[f"{command}:exit{code}"] += 1
        if code not in (0, 2, 3):
            failures.append(f"{name}: exit code {code}")
        lines = (out + err).splitlines()
        if any(not line.isprintable() for line in lines):
            failures.append(
                f"{name}: a line that is not printable: {[x for x in lines if not x.isprintable()][:1]}"
            )
        named_refusal = "refused" in err or "not written" in err or "refused" in out or "damaged" in err
        if code == 0 and named_refusal:
            failures.append(f"{name}: exit 0 after naming a refused file")
        if code == 3 and not (named_refusal or "damaged" in out or "not checked" in out):
            failures.append(f"{name}: exit 3 without naming why")
        if code == 2 and len([line for line in err.splitlines() if line.startswith("error: ")]) != 1:
            failures.append(f"{name}: a usage error that is not one 'error:' line: {err[-300:]!r}")
        collided = len(set(stems)) < len(stems)
        if collided and command in ("compress", "decompress") and code == 0:
            failures.append(f"{name}: colliding inputs but exit 0")
        if collided and command in ("compress", "decompress") and code == 3 and "would collide" not in err:
            failures.append(f"{name}: colliding inputs not named")
        counts["collisions"] += int(collided)
        if os.path.isdir(outputs):
            counts["outputs_checked"] += _check_outputs(codec, outputs, name, failures)
        for entry in os.listdir(base):  # the archive's folder: no temporary file either
            if entry.startswith(_TEMPORARY):
                failures.append(f"{name}: temporary file {entry!r} left beside the archive")
        if command == "archive" and os.path.exists(archive_path):
            try:
                with open(archive_path, "rb") as f:
                    codec.read_archive(f.read())
            except Exception as error:  # noqa: BLE001
                failures.append(f"{name}: the written archive does not read back: {error!r}")
        shutil.rmtree(base)
    return dict(counts)


def _save(report, failures, start, path, complete=False):
    """The report as JSON text, also written to `path` (after every part, so a long run keeps its counts)."""
    report["total_cases"] = sum(m.get("cases", 0) for m in report["models"].values()) + len(failures)
    report["failures"] = failures
    report["wall_seconds"] = round(time.time() - start, 1)
    report["complete"] = complete
    text = json.dumps(report, indent=2, sort_keys=True)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
    return text


def main(argv):
    del argv
    from tfdplc import codec as codec_lib

    # Read before the command-line part: running tools/codec.py's main resets every flag to its default.
    cases, archive_cases, cli_cases, seed = FLAGS.cases, FLAGS.archive_cases, FLAGS.cli_cases, FLAGS.seed
    codecs = [codec_lib.load(path) for path in FLAGS.model] if FLAGS.model else _tiny_models()
    rng = np.random.default_rng(seed)
    # Files of other models to splice in: a second copy of each model with other weights would do as
    # well; files of the other models fuzzed here are simpler and differ in layout and fingerprint.
    pools = [c.compress(rng.integers(0, 256, size=(4, *c.image_shape), dtype=np.uint8)) for c in codecs]
    archives = [
        c.compress_archive(rng.integers(0, 256, size=(3, *c.image_shape), dtype=np.uint8)) for c in codecs
    ]
    report = {
        "cases_per_model": cases,
        "archive_cases_per_model": archive_cases,
        "cli_cases_per_model": cli_cases,
        "seed": seed,
    }
    output_path = FLAGS.output
    report["models"], failures = {}, []
    start = time.time()
    # The command line first (names, disks, archives), then damaged files and archives per model.
    if cli_cases:
        import tempfile

        tool = _codec_tool()
        with tempfile.TemporaryDirectory(prefix="fuzz_cli_") as root:
            for index, codec in enumerate(codecs):
                others = [f for j, pool in enumerate(pools) if j != index for f in pool] or [b"DPLC\x01"]
                report["models"][f"{codec.spec.method} command line"] = _fuzz_cli(
                    tool, codec, others, rng, cli_cases, failures, os.fsencode(root)
                )
                _save(report, failures, start, output_path)
    for index, codec in enumerate(codecs):
        others = [f for j, pool in enumerate(pools) if j != index for f in pool] or [b"DPLC\x01" + bytes(60)]
        report["models"][f"{codec.spec.method} ({codec.fingerprint.hex()})"] = _fuzz_model(
            codec, others, rng, cases, failures
        )
        _save(report, failures, start, output_path)
        other_archives = [a for j, a in enumerate(archives) if j != index] or [b"DA\x02" + bytes(20)]
        report["models"][f"{codec.spec.method} archives"] = _fuzz_archives(
            codec,
            other_archives + [archives[index][:5] + b"\x01" + bytes(40)],
            rng,
            archive_cases,
            failures,
        )
        _save(report, failures, start, output_path)
    text = _save(report, failures, start, output_path, complete=True)
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    app.run(main)

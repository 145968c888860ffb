#!/usr/bin/env python
"""Fuzzes the container and archive readers and the exported graphs with damaged files; prints the counts.

Each case takes a valid file of one of the models and damages it at random: bit flips, byte overwrites,
truncation, appended / inserted / deleted bytes, random data (with or without the magic), a splice of
two files of different models, a whole file of another model; half of the byte-level damages are
"resealed" (the checksum recomputed: version 2's keyed Adler-32, version 1's plain one), so that the
checks behind the checksum are exercised too. Single files are format version 2 (what writers write)
and, for a quarter of the cases, the version 1 form of the same image (still read). For every case:

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
    """Recomputes the checksum of a (damaged) file as its first bytes say it is made, if it has one."""
    if data[:4] == b"DPLC" and len(data) >= 48:  # version 1: Adler-32 of the bytes before it
        return data[:-4] + struct.pack(">I", zlib.adler32(data[:-4]))
    if data[:2] in (b"D\x02", b"DA") and len(data) >= 8:  # version 2 files and archives: keyed by the model
        return data[:-4] + struct.pack(">I", zlib.adler32(data[:-4], zlib.adler32(fingerprint)))
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
        magic = [b"DPLC", b"D\x02", b"DA\x02"][int(rng.integers(3))]
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
    old = [container.pack(codec.layout.header(seed), payload) for seed, payload, _ in map(codec.parse, valid)]
    counts = collections.Counter()
    for case in range(cases):
        version = 1 if rng.random() < 0.25 else 2
        original = (old if version == 1 else valid)[case % len(valid)]
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
    valid = [
        codec.compress_archive(rng.integers(0, 256, size=(count, *shape), dtype=np.uint8))
        for count in (1, 2, 3, 5, 8)
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


def main(argv):
    del argv
    from tfdplc import codec as codec_lib

    codecs = [codec_lib.load(path) for path in FLAGS.model] if FLAGS.model else _tiny_models()
    rng = np.random.default_rng(FLAGS.seed)
    # Files of other models to splice in: a second copy of each model with other weights would do as
    # well; files of the other models fuzzed here are simpler and differ in layout and fingerprint.
    pools = [c.compress(rng.integers(0, 256, size=(4, *c.image_shape), dtype=np.uint8)) for c in codecs]
    archives = [
        c.compress_archive(rng.integers(0, 256, size=(3, *c.image_shape), dtype=np.uint8)) for c in codecs
    ]
    report = {
        "cases_per_model": FLAGS.cases,
        "archive_cases_per_model": FLAGS.archive_cases,
        "seed": FLAGS.seed,
    }
    report["models"], failures = {}, []
    start = time.time()
    for index, codec in enumerate(codecs):
        others = [f for j, pool in enumerate(pools) if j != index for f in pool] or [b"DPLC\x01" + bytes(60)]
        report["models"][f"{codec.spec.method} ({codec.fingerprint.hex()})"] = _fuzz_model(
            codec, others, rng, FLAGS.cases, failures
        )
        other_archives = [a for j, a in enumerate(archives) if j != index] or [b"DA\x02" + bytes(20)]
        report["models"][f"{codec.spec.method} archives"] = _fuzz_archives(
            codec,
            other_archives + [archives[index][:5] + b"\x01" + bytes(40)],
            rng,
            FLAGS.archive_cases,
            failures,
        )
    report["total_cases"] = sum(m.get("cases", 0) for m in report["models"].values()) + len(failures)
    report["failures"] = failures
    report["wall_seconds"] = round(time.time() - start, 1)
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            f.write(text + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    app.run(main)

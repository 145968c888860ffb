#!/usr/bin/env python
"""Training throughput (images/s) of tfdplc objectives, and the codec's compress / decompress throughput.

Training cases (--cases): each builds the objective of a gin config, feeds random [0, 1] images of the
config's shape from an in-memory, prefetched tf.data pipeline, and times single `train_step` calls (after
warm-up), XLA off and on, in each --precision (`train.precision`: float32, mixed_bfloat16,
mixed_float16; the objective is built under that Keras policy exactly as the trainer builds it); it prints the CPU's identity (vendor, family, model, ISA features:
`tfdplc.cpu`), whether TensorFlow runs its oneDNN kernels and why, the median images/s, the achieved
GFLOP/s (FLOPs per step from tools/flops.py) with its fraction of the CPU's float32 FMA peak, and, where
docs/measurements.md gives one measured on a CPU of the same identity, the ratio to the papers' PyTorch reference
(none on another CPU: TF's speed differs between CPU generations far more than torch's). Paired cases (liu_sr) feed (degraded, clean) pairs;
composite cases (yan_mnist) time one step of each of several objectives together (COMPOSITE_CASES).

Codec cases (--codec_cases, none by default): each builds a freshly initialised model of a gin config
(stage-2 configs with a stand-in G*; throughput does not depend on the weights), wraps it in
`tfdplc.codec.Codec.from_model` (the same traced functions and bytes as an export) and times
`compress` (uint8 images -> containers) and `decompress` (containers -> uint8 images) on --codec_images
random images in batches of --codec_batch, after one untimed warm-up call (tracing); the median of
--codec_repeats runs gives images/s. It also reports the payload bits per image against the estimated
rate h * w * k * log2(L), the container size and the overhead (header + checksum) in bits and as a share
of the file.

Input-pipeline cases (--pipeline_cases, none by default): images/s of `tfdplc.data.input_pipeline` for a
data set that is not on this machine, inside `tfds.testing.mock_data` with its source replaced by
--pipeline_examples encoded images of the data set's real format and size (celeb_a 218x178 JPEG, lsun
bedrooms 256x341 JPEG, svhn_cropped 32x32 PNG), held in memory: so tfds' decoding (in parallel, as its
reader does), the project's crop / resize, shuffling, batching and prefetching are timed, and reading the
TFRecord files is not. The images are smooth random fields (bilinear upsampling of 8x8 noise plus mild
noise), closer to photos than white noise for the JPEG decoder. mnist5k is the real data set, read from
memory. The median over --pipeline_repeats timed runs of --pipeline_batches batches, after --warmup.

Example:
  python tools/benchmark.py --steps=10 --cases=cae_64,cae_mnist
  python tools/benchmark.py --cases=dplc_64,wgan_gp_64,liu_sr,yan_mnist --xla_modes=off
  python tools/benchmark.py --cases=dplc_64,wgan_gp_64 --xla_modes=off --precision=float32,mixed_bfloat16
  python tools/benchmark.py --cases= --codec_cases=cae_mnist,dplc_mnist,cae_64,dplc_64
  python tools/benchmark.py --cases= --pipeline_cases=celeb_a,lsun/bedroom,svhn_cropped,mnist5k
"""

import collections
import json
import os
import time

from tfdplc import cpu, quiet

# TF must be imported before absl's app.run: imported inside main, Keras functional models fail to build
# ('SymbolicTensor' object has no attribute 'node') on TF 2.14. `import_tensorflow` first turns oneDNN on
# where tfdplc measured it faster (`tfdplc.cpu.prefer_onednn`; the user's TF_ENABLE_ONEDNN_OPTS wins).
ONEDNN_CHOICE = cpu.prefer_onednn()  # before TensorFlow loads; kept to print which setting ran
tf = quiet.import_tensorflow()
from absl import app, flags  # noqa: E402

flags.DEFINE_list("cases", ["cae_64", "cae_mnist"], "Benchmark cases to run (see CASES).")
flags.DEFINE_integer("steps", 10, "Timed steps per case.")
flags.DEFINE_integer("warmup", 3, "Untimed warm-up steps (tracing/compilation).")
flags.DEFINE_list("xla_modes", ["off", "on"], "XLA settings to time: off, on.")
flags.DEFINE_list(
    "precision",
    ["float32"],
    "Training precisions to time (train.precision): float32, mixed_bfloat16, mixed_float16.",
)
flags.DEFINE_string("output", None, "Optional JSON file for the measurements.")
flags.DEFINE_integer(
    "profile_steps",
    0,
    "If > 0, trace this many more steps of each training case with TensorFlow's profiler and print the "
    "op types that took the most time (where the step goes; docs/performance.md).",
)
flags.DEFINE_integer("profile_top", 12, "Op types printed per profiled case.")
flags.DEFINE_bool(
    "flops",
    True,
    "Count each training case's FLOPs per step (tools/flops.py) and print GFLOP/s and the fraction of the "
    "CPU's float32 FMA peak.",
)
flags.DEFINE_list(
    "codec_cases", [], "Codec throughput cases to run (see CODEC_CASES); --cases= for only these."
)
flags.DEFINE_integer("codec_images", 512, "Images per timed compress / decompress run.")
flags.DEFINE_integer("codec_batch", 64, "Images per model call in the codec cases.")
flags.DEFINE_integer("codec_repeats", 3, "Timed runs per codec case (the median is reported).")
flags.DEFINE_list("pipeline_cases", [], "Input-pipeline cases to time (see PIPELINE_CASES).")
flags.DEFINE_integer("pipeline_batches", 40, "Batches per timed input-pipeline run.")
flags.DEFINE_integer("pipeline_repeats", 3, "Timed runs per input-pipeline case (the median is reported).")
flags.DEFINE_integer("pipeline_examples", 512, "Encoded examples held in memory per mocked data set.")
FLAGS = flags.FLAGS

# Placeholder in bindings, replaced by the path of a freshly initialised stand-in G* (DPLC stage 2's step
# cost does not depend on G*'s weights).
STAND_IN_GENERATOR = "{stand_in_generator}"
_DPLC_64 = [
    f"GENERATOR_PATH = '{STAND_IN_GENERATOR}'",
    "CAE_METRICS = None",
    "CAE_REFERENCE_METRICS = None",
]

STAND_IN_GENERATOR_32 = "{stand_in_generator_32}"
_DPLC_32 = [
    f"GENERATOR_PATH = '{STAND_IN_GENERATOR_32}'",
    "CAE_METRICS = None",
    "CAE_REFERENCE_METRICS = None",
]

# The papers' PyTorch code (torch 2.13.0+cpu, 2 threads) per CPU, images/s (docs/measurements.md, "Training speed"). TF's
# speed differs between CPU generations far more than torch's (and "AMD EPYC" names both EPYCs below), so a
# ratio is printed only against the reference measured on a CPU of the same `tfdplc.cpu.CpuIdentity`:
# vendor, family, model and ISA features (`reference_for`). The Intel Xeon of 2026-11-22 is left out:
# its family, model and flags were not recorded, so no CPU can be matched to it (its figures stay in
# docs/measurements.md).
ReferenceCpu = collections.namedtuple("ReferenceCpu", "label vendor family model features")
_ZEN4 = ReferenceCpu(
    "AMD EPYC Zen 4, 2026-11-30",
    "AuthenticAMD",
    25,
    17,
    frozenset({"avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"}),
)
_ZEN3 = ReferenceCpu("AMD EPYC Zen 3, 2026-12-07", "AuthenticAMD", 25, 1, frozenset({"avx", "avx2", "fma"}))
REFERENCE_CPUS = (_ZEN4, _ZEN3)

# name -> (gin config, extra bindings, batch size, image shape, {ReferenceCpu: reference images/s} or None).
# The cases with a reference use the same networks, update rule and batch as the papers' code.
CASES = {
    "cae_64": ("gin/cae_celeba64.gin", [], 64, (64, 64, 3), None),
    "cae_mnist": ("gin/cae_mnist5k.gin", [], 64, (32, 32, 1), None),
    # E (k=8, {-1,1} codes at 4x4) + B (2 residual blocks, 512 channels) + frozen G (m=128), MMD + distortion.
    "dplc_64": ("gin/dplc_celeba64.gin", _DPLC_64, 64, (64, 64, 3), {_ZEN4: 51.1, _ZEN3: 21.3}),
    "dplc_64_b256": ("gin/dplc_celeba64.gin", _DPLC_64, 256, (64, 64, 3), {_ZEN4: 43.5, _ZEN3: 19.3}),
    # The same with G* computing in the training precision (`prepare_objective.frozen_in_policy`; the
    # same as dplc_64 in float32).
    "dplc_64_frozen_in_policy": (
        "gin/dplc_celeba64.gin",
        _DPLC_64 + ["prepare_objective.frozen_in_policy = True"],
        64,
        (64, 64, 3),
        {_ZEN4: 51.1, _ZEN3: 21.3},
    ),
    # The reference times 1 critic step with GP + 1 generator step; ours does n_critic critic steps per
    # train step, so n_critic = 1 here (the batch read per step is then b = 64).
    "wgan_gp_64": (
        "gin/wgan_gp_celeba64.gin",
        ["WGANGP.n_critic = 1"],
        64,
        (64, 64, 3),
        {_ZEN4: 15.8, _ZEN3: 6.6},
    ),
    # Liu et al. SR: 1 critic step with GP + 1 encoder/decoder step, latent 4, L = 4 (K = 4 here). The
    # objective reads 2b (degraded, clean) pairs per step and uses b degraded inputs and b OTHER clean digits
    # (unpaired critic), so b = 64 as the reference's batch means 128 pairs read per step (see PAIRED_CASES).
    # Our digits are 28x28 (the authors resize MNIST to 32x32).
    "liu_sr": ("gin/shift_sr_mnist5k.gin", ["K = 4"], 128, (28, 28, 1), {_ZEN4: 145.0, _ZEN3: 65.4}),
}

STAND_IN_ENCODER_YAN = "{stand_in_encoder_yan}"
# Yan et al. MNIST: the reference trains G1 and G2 in one loop, so its step is a G1 MSE step (E + G1) + a
# critic W + GP step + a G2 step at r = 4 (G1 width 64, G2 32, critic 16). Ours trains them as two stages:
# one step of each stage's objective (G2 from a stand-in E, without critic pre-training), timed together.
COMPOSITE_CASES = {
    "yan_mnist": [
        ("gin/perceptual_g1_mnist5k.gin", ["K = 4"]),
        (
            "gin/perceptual_g2_mnist5k.gin",
            ["K = 4", f"ENCODER_PATH = '{STAND_IN_ENCODER_YAN}'", "PerceptualG2.pretrain_pairs = 0"],
        ),
    ],
}
CASES["yan_mnist"] = (None, [], 128, (32, 32, 1), {_ZEN4: 364.0, _ZEN3: 149.3})
# The same work in the reference's own loop (tfdplc.objectives.PerceptualJoint): one step updates E and G1 on
# the MSE, then J (W + GP) and G2 on the codes of that step's forward pass of E, so E runs once per step.
CASES["yan_mnist_joint"] = (
    "gin/perceptual_joint_mnist5k.gin",
    ["K = 4", "PerceptualJoint.pretrain_steps = 0"],
    128,
    (32, 32, 1),
    {_ZEN4: 364.0, _ZEN3: 149.3},
)

# Cases whose objective trains on (degraded, clean) pairs -> images per step counted in the throughput
# (the reference's batch: b degraded inputs through f and g, b clean digits into the critic).
PAIRED_CASES = {"liu_sr": 64}


# name -> (gin config, extra bindings, image shape): the mnist5k models and 64x64 ones (CelebA configs).
CODEC_CASES = {
    "cae_mnist": ("gin/cae_mnist5k.gin", [], (32, 32, 1)),
    "dplc_mnist": ("gin/dplc_mnist5k.gin", _DPLC_32, (32, 32, 1)),
    "gc_mnist": ("gin/gc_mnist5k.gin", ["CAE_METRICS = None", "CAE_REFERENCE_METRICS = None"], (32, 32, 1)),
    "cae_64": ("gin/cae_celeba64.gin", [], (64, 64, 3)),
    "dplc_64": ("gin/dplc_celeba64.gin", _DPLC_64, (64, 64, 3)),
}


def _stand_in_generator_32(directory):
    """Writes an untrained 32x32x1 G (m = 32, width 16, as gin/wpp_mnist5k.gin) and returns its path."""
    from tfdplc.nets import generator_G

    path = os.path.join(directory, "generator_32.keras")
    if not os.path.exists(path):
        generator_G(resolution=32, m=32, width=16, channels=1).save(path)
    return path


def _stand_ins(bindings, scratch):
    """The bindings with the stand-in placeholders replaced by the paths of freshly written networks."""
    writers = {
        STAND_IN_GENERATOR: _stand_in_generator,
        STAND_IN_GENERATOR_32: _stand_in_generator_32,
        STAND_IN_ENCODER_YAN: _stand_in_encoder_yan,
    }
    for placeholder, write in writers.items():
        if any(placeholder in b for b in bindings):
            path = write(scratch)
            bindings = [b.replace(placeholder, path) for b in bindings]
    return bindings


def _stand_in_encoder_yan(directory):
    """Writes an untrained Yan et al. E (d = 4, width 64, as gin/perceptual_g1_mnist5k.gin); returns its path."""
    from tfdplc.nets import yan_encoder

    path = os.path.join(directory, "yan_encoder.keras")
    if not os.path.exists(path):
        yan_encoder(4, width=64).save(path)
    return path


def _time_codec_case(name, scratch):
    """Compress / decompress throughput and bitstream overhead of one CODEC_CASES model."""
    import gin
    import numpy as np

    from tfdplc.codec import Codec
    from tfdplc.train import build_objective
    from tfdplc.train.config import parse_gin

    config, bindings, shape = CODEC_CASES[name]
    gin.clear_config()
    tf.keras.backend.clear_session()
    parse_gin([config], _stand_ins(bindings, scratch))
    tf.keras.utils.set_random_seed(0)
    model = build_objective()
    model(tf.zeros([1, *shape]))
    codec = Codec.from_model(model)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(FLAGS.codec_images, *shape), dtype=np.uint8)
    seeds = np.arange(FLAGS.codec_images, dtype=np.int64)
    batch = FLAGS.codec_batch
    codec.decompress(codec.compress(images[:batch], seeds=seeds[:batch]), batch_size=batch)  # tracing
    compress_s, decompress_s = [], []
    for _ in range(FLAGS.codec_repeats):
        start = time.perf_counter()
        files = codec.compress(images, seeds=seeds, batch_size=batch)
        compress_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        decoded = codec.decompress(files, batch_size=batch)
        decompress_s.append(time.perf_counter() - start)
    assert decoded.shape == images.shape  # every file decoded (a refused one raises)
    payload = float(np.mean([codec.payload_bits(f) for f in files]))
    file_bits = 8.0 * float(np.mean([len(f) for f in files]))
    estimated = codec.spec.nominal_rate_bits
    if estimated is None:  # a range-coded model: its own rate estimate
        estimated = float(model.rate_bits)
    return {
        "case": name,
        "images": FLAGS.codec_images,
        "batch": batch,
        "compress_images_per_s": FLAGS.codec_images / float(np.median(compress_s)),
        "decompress_images_per_s": FLAGS.codec_images / float(np.median(decompress_s)),
        "estimated_bits": estimated,
        "payload_bits": payload,
        "file_bits": file_bits,
        "overhead_bits": file_bits - payload,
        "payload_vs_estimate": (payload - estimated) / estimated if estimated else None,
        "overhead_share_of_file": (file_bits - payload) / file_bits,
    }


# name -> (resolution, batch, encoded image shape, format); None: the real data set (mnist5k).
PIPELINE_CASES = {
    "celeb_a": (64, 64, (218, 178, 3), "jpeg"),
    "lsun/bedroom": (64, 64, (256, 341, 3), "jpeg"),
    "svhn_cropped": (32, 64, (32, 32, 3), "png"),
    "mnist5k": (32, 64, None, None),
}


def _encoded_examples(shape, image_format, count):
    """`count` smooth random images of `shape`, encoded as the data set stores them."""
    generator = tf.random.Generator.from_seed(0)
    coarse = generator.uniform((count, 8, 8, shape[2]))
    smooth = tf.image.resize(coarse, shape[:2]) + generator.normal((count, *shape), stddev=0.03)
    pixels = tf.cast(tf.clip_by_value(smooth, 0.0, 1.0) * 255.0, tf.uint8)
    encode = tf.io.encode_jpeg if image_format == "jpeg" else tf.io.encode_png
    return tf.stack([encode(image) for image in pixels])


def _time_pipeline_case(name):
    """Images/s of `tfdplc.data.input_pipeline` for one PIPELINE_CASES entry (see the module docstring)."""
    import contextlib

    import numpy as np
    import tensorflow_datasets as tfds

    from tfdplc import data

    resolution, batch, shape, image_format = PIPELINE_CASES[name]
    mock = contextlib.nullcontext()
    if shape is not None:
        encoded = _encoded_examples(shape, image_format, FLAGS.pipeline_examples)

        def as_dataset(builder, split, decoders=None, read_config=None, shuffle_files=False):
            del split, decoders, read_config, shuffle_files
            feature = builder.info.features["image"]
            source = tf.data.Dataset.from_tensor_slices({"image": encoded})
            # tfds' reader decodes in parallel too (its `_as_dataset` maps with AUTOTUNE).
            return source.map(
                lambda example: {"image": feature.decode_example(example["image"])},
                num_parallel_calls=tf.data.AUTOTUNE,
            )

        mock = tfds.testing.mock_data(as_dataset_fn=as_dataset)
    with mock:
        pipeline = data.input_pipeline(name, "train", batch, resolution=resolution, seed=0)
        iterator = iter(pipeline)
        for _ in range(FLAGS.warmup):
            next(iterator)
        seconds = []
        for _ in range(FLAGS.pipeline_repeats):
            start = time.perf_counter()
            for _ in range(FLAGS.pipeline_batches):
                images = next(iterator)
            float(tf.reduce_sum(images))  # the last batch really produced
            seconds.append(time.perf_counter() - start)
    median = float(np.median(seconds))
    return {
        "case": f"pipeline:{name}",
        "source": "real (in memory)"
        if shape is None
        else f"mock: {len(encoded)} {image_format} {shape} in memory",
        "output_shape": list(images.shape),
        "batch": batch,
        "batches_per_run": FLAGS.pipeline_batches,
        "images_per_s": batch * FLAGS.pipeline_batches / median,
        **cpu.cpu_identity().as_dict(),
        "cpu_count": os.cpu_count(),
    }


def _stand_in_generator(directory):
    """Writes an untrained 64x64 G (m = 128, as gin/wpp_celeba64.gin) and returns its path."""
    from tfdplc.nets import generator_G

    path = os.path.join(directory, "generator.keras")
    if not os.path.exists(path):
        generator_G(resolution=64, m=128, width=64, channels=3).save(path)
    return path


def build_case(config, bindings, batch, shape, paired, xla, scratch, precision="float32"):
    """Builds the objective of one gin config as the trainer does, under the Keras policy `precision`.

    Returns:
      (the compiled objective, its train function, an iterator over random batches).
    """
    import gin

    from tfdplc.train import build_objective
    from tfdplc.train import precision as mixed_precision
    from tfdplc.train.config import parse_gin

    gin.clear_config()
    parse_gin([config], _stand_ins(bindings, scratch))
    tf.keras.utils.set_random_seed(0)
    images = tf.random.uniform((4 * batch, *shape))
    elements = (images, tf.random.uniform((4 * batch, *shape))) if paired else images
    dataset = tf.data.Dataset.from_tensor_slices(elements).batch(batch).repeat().prefetch(tf.data.AUTOTUNE)
    # The layers keep the policy they were built under; the global one is restored on leaving the block.
    with mixed_precision.policy(precision):
        model = mixed_precision.prepare_objective(build_objective(), precision)
        model(images[:1])
        model.compile(jit_compile=xla == "on")
    return model, model.make_train_function(), iter(dataset)


def _time_case(name, xla, scratch, precision="float32"):
    import numpy as np

    config, bindings, batch, shape, reference = CASES[name]
    parts = COMPOSITE_CASES.get(name, [(config, bindings)])
    built = [build_case(c, b, batch, shape, name in PAIRED_CASES, xla, scratch, precision) for c, b in parts]
    steps = [(step, iterator) for _, step, iterator in built]
    for _ in range(FLAGS.warmup):
        for step, iterator in steps:
            step(iterator)
    times = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        for step, iterator in steps:  # a composite case's steps run one after the other
            logs = step(iterator)
            float(next(iter(logs.values())))  # wait for the step to finish
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    images_per_step = PAIRED_CASES.get(name, batch)
    result = {
        "case": name,
        "xla": xla,
        "precision": precision,
        "batch": images_per_step,
        "elements_read_per_step": batch,
        "median_step_s": seconds,
        "images_per_s": images_per_step / seconds,
    }
    identity = cpu.cpu_identity()
    result.update(
        identity.as_dict(), onednn=cpu.onednn_enabled(), onednn_isa=os.environ.get("ONEDNN_MAX_CPU_ISA")
    )
    matched = reference_for(reference, identity)
    if matched:
        result["reference_cpu"], result["reference_images_per_s"] = matched
        result["ratio_to_reference"] = result["images_per_s"] / matched[1]
    if FLAGS.profile_steps > 0:
        result["profile"] = profile_steps(steps, FLAGS.profile_steps, scratch)
    if FLAGS.flops:
        flops_per_step = sum(_step_flops(model, iterator) for model, _, iterator in built)
        result["flops_per_step"] = flops_per_step
        result["gflops_per_s"] = flops_per_step / seconds / 1e9
        peak = cpu.fma_peak_gflops(identity)
        if peak:
            result["peak_gflops"], result["peak_how"] = peak["gflops"], peak["how"]
            result["fraction_of_peak"] = result["gflops_per_s"] / peak["gflops"]
    return result


def profile_steps(steps, count: int, scratch: str):
    """Traces `count` runs of `steps` with TensorFlow's profiler and sums the time of each op type.

    Args:
      steps: [(train function, batch iterator)] of one case (composite cases: several, run in turn).
      count: steps traced.
      scratch: folder for the trace.

    Returns:
      [{"op": type, "ms_per_step": ..., "share": of all op time}] sorted by time, from `summarize_trace`.
    """
    import tempfile

    logdir = tempfile.mkdtemp(prefix="profile_", dir=scratch)
    tf.profiler.experimental.start(logdir)
    try:
        for _ in range(count):
            for step, iterator in steps:
                float(next(iter(step(iterator).values())))
    finally:
        tf.profiler.experimental.stop()
    return summarize_trace(logdir, count)


def summarize_trace(logdir: str, steps: int):
    """Time per op type in a TensorFlow profiler trace (the host's executor threads).

    Each op the executor runs is an event named "op name:op type" on a "tf_Compute" line of the host
    plane (one line per thread); its duration is the op's time, nested framework events aside. Ops that run
    on two threads at once are both counted, so the shares are of op time, not of wall time.

    Args:
      logdir: the folder given to `tf.profiler.experimental.start`.
      steps: number of traced steps (times are divided by it).

    Returns:
      [{"op": type, "ms_per_step": float, "share": float}], the most expensive first.

    Raises:
      FileNotFoundError: if the folder holds no trace.
    """
    import collections
    import glob

    from tensorflow.core.profiler.protobuf import xplane_pb2

    paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise FileNotFoundError(f"No profiler trace (*.xplane.pb) under {logdir}.")
    by_type = collections.Counter()
    for path in paths:
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if ":" in name and "::" not in name:  # "op name:op type", not "ExecutorState::Process"
                        by_type[name.rsplit(":", 1)[1]] += event.duration_ps
    total = sum(by_type.values()) or 1
    return [
        {"op": op, "ms_per_step": ps / 1e9 / steps, "share": ps / total} for op, ps in by_type.most_common()
    ]


def _flops_tool():
    """tools/flops.py as a module (loaded by path: tools/ is not a package, nor on sys.path in-process)."""
    import importlib.util
    import sys

    name = "tfdplc_tools_flops"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(os.path.dirname(__file__), "flops.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _step_flops(model, iterator) -> int:
    """FLOPs of one `train_step` of `model` on a batch like `iterator`'s (tools/flops.py, static count)."""
    import logging

    from absl import logging as absl_logging

    flops = _flops_tool()

    # The profiler behind the count warns about its own TF1 APIs on every graph: not news to the user.
    level, verbosity = logging.getLogger("tensorflow").level, absl_logging.get_verbosity()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        return flops.step_flops(model, next(iterator)).flops
    finally:
        logging.getLogger("tensorflow").setLevel(level)
        absl_logging.set_verbosity(verbosity)


def reference_for(references, identity: cpu.CpuIdentity):
    """The (label, images/s) reference measured on a CPU of this identity, or None (then no ratio).

    Args:
      references: {ReferenceCpu: images/s} of a case, or None.
      identity: this machine's `tfdplc.cpu.CpuIdentity`.

    Returns:
      (the reference CPU's label, images/s) if vendor, family, model and the ISA features
      (`tfdplc.cpu.ISA_FEATURES`) all agree, else None.
    """
    for reference, images_per_s in (references or {}).items():
        if (reference.vendor, reference.family, reference.model, reference.features) == (
            identity.vendor,
            identity.family,
            identity.model,
            identity.features,
        ):
            return reference.label, images_per_s
    return None


def check_flags() -> None:
    """Refuses unknown training cases, XLA modes and precisions before anything is timed.

    Raises:
      app.UsageError: naming the bad value and the accepted ones.
    """
    from tfdplc.train import precision as mixed_precision

    for name in FLAGS.cases:
        if name not in CASES:
            raise app.UsageError(f"Unknown case {name!r}; expected one of {sorted(CASES)}.")
    for name in FLAGS.pipeline_cases:
        if name not in PIPELINE_CASES:
            raise app.UsageError(f"Unknown pipeline case {name!r}; expected one of {sorted(PIPELINE_CASES)}.")
    for xla in FLAGS.xla_modes:
        if xla not in ("off", "on"):
            raise app.UsageError(f"Unknown --xla_modes value {xla!r}; expected off or on.")
    for precision in FLAGS.precision:
        if precision not in mixed_precision.PRECISIONS:
            raise app.UsageError(
                f"Unknown --precision {precision!r}; expected one of {', '.join(mixed_precision.PRECISIONS)}."
            )


def main(argv):
    del argv
    import tempfile

    results = []
    scratch = tempfile.mkdtemp(prefix="tfdplc_benchmark_")
    identity = cpu.cpu_identity()
    peak = cpu.fma_peak_gflops(identity)
    matched = reference_for(dict.fromkeys(REFERENCE_CPUS, 0.0), identity)
    print(
        f"CPU: {identity.describe()}\n"
        f"oneDNN: {'on' if cpu.onednn_enabled() else 'off'} ({ONEDNN_CHOICE})"
        + (
            f", ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']}"
            if "ONEDNN_MAX_CPU_ISA" in os.environ
            else ""
        )
        + "\nfloat32 FMA peak: "
        + (f"{peak['gflops']:.0f} GFLOP/s = {peak['how']}" if peak else "unknown")
        + "\n"
        f"PyTorch references measured on: {'; '.join(r.label for r in REFERENCE_CPUS)} "
        + (f"(this CPU is the {matched[0]} one)" if matched else "(none on this CPU: no ratios printed)"),
        flush=True,
    )
    check_flags()
    for name in FLAGS.cases:
        for xla in FLAGS.xla_modes:
            for precision in FLAGS.precision:
                result = _time_case(name, xla, scratch, precision)
                results.append(result)
                ratio = (
                    f"  ({result['ratio_to_reference']:.2f}x the {result['reference_cpu']} reference)"
                    if "ratio_to_reference" in result
                    else ""
                )
                compute = (
                    f"  {result['gflops_per_s']:.1f} GFLOP/s"
                    + (f" ({result['fraction_of_peak']:.1%} of peak)" if "fraction_of_peak" in result else "")
                    if "gflops_per_s" in result
                    else ""
                )
                print(
                    f"{name:12s} xla={xla:3s} {precision:14s} batch={result['batch']:4d}  "
                    f"{result['images_per_s']:8.1f} images/s  ({result['median_step_s'] * 1e3:.1f} ms/step)"
                    f"{compute}{ratio}",
                    flush=True,
                )
                for row in result.get("profile", [])[: FLAGS.profile_top]:
                    print(
                        f"    {row['op']:36s} {row['ms_per_step']:9.2f} ms/step  {row['share']:6.1%}",
                        flush=True,
                    )
    for name in FLAGS.codec_cases:
        if name not in CODEC_CASES:
            raise app.UsageError(f"Unknown codec case {name!r}; expected one of {sorted(CODEC_CASES)}.")
        result = _time_codec_case(name, scratch)
        results.append(result)
        relative = result["payload_vs_estimate"]
        print(
            f"{name:12s} codec batch={result['batch']:4d}  compress {result['compress_images_per_s']:8.1f} "
            f"images/s  decompress {result['decompress_images_per_s']:8.1f} images/s  "
            f"estimated {result['estimated_bits']:g} bits, payload {result['payload_bits']:g} bits"
            + (f" ({relative:+.1%})" if relative is not None else "")
            + f", file {result['file_bits']:g} bits (overhead {result['overhead_bits']:g} bits, "
            f"{result['overhead_share_of_file']:.1%} of the file)",
            flush=True,
        )
    for name in FLAGS.pipeline_cases:
        result = _time_pipeline_case(name)
        results.append(result)
        print(
            f"{result['case']:22s} batch={result['batch']:4d} -> {tuple(result['output_shape'][1:])}  "
            f"{result['images_per_s']:8.1f} images/s  ({result['source']})",
            flush=True,
        )
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    app.run(main)

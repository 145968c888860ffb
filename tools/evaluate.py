#!/usr/bin/env python
"""Evaluates a trained workdir on a test split: rate, MSE, PSNR, distribution distances and PV.

Writes `metrics.json` (a one-record list in the results format of the project: method, rate_bits, bpp,
mse, psnr; fd/kd between test images and reconstructions, sample_fd/sample_kd for objectives that can
sample, on --features; pv, the conditional pixel variance of DPLC Section 5, for objectives with
encode/decode) and `reconstructions.png` (originals on the top row, reconstructions below) into the
workdir unless --output / --grid say otherwise.

Real bitstreams (issue 6): for objectives with the codec interface (`codec_spec`, see
tfdplc.codec.interface) and an encoder, every evaluated test image is compressed into a container with
`tfdplc.codec.Codec.from_model` (the same functions and bytes as an export) and decompressed again. The
record then holds the estimated rate (`rate_bits`, `bpp`: the model's h*w*k*log2(L)) next to the measured
one: `real_bits` / `real_bpp` (mean payload bits per image: the code, padded to whole bytes),
`file_bytes` (mean container size, header and checksum included), `file_bpp`, `overhead_bits` (header +
checksum per image), and for the same images in one archive (`tfdplc.codec.archive`: one header, fixed-rate
codes bit-packed back to back) `archive_bytes` (the whole archive) and `archive_bpp` (its bits per image
per pixel); `payload_bpp` repeats `real_bpp` so that the three rates read side by side;
`archive_matches_files` checks that the archive's images are exactly the single files; `real_rate_rel_diff` ((real_bits - rate_bits) / rate_bits; None at rate 0),
`compress_images_per_s` / `decompress_images_per_s`, and the round-trip checks: `codes_bit_exact` (the
codes read back from the files equal the model's own `encode_codes`) and `decoded_max_abs_error` (in 8-bit
levels) between the images decoded from the files and the codec's `decode` of the model's own codes with
each file's seed (`decoded_reference`: "codec_decode"); `decoded_exact` is whether it is 0: the bytes lose
nothing and decoding a file gives the same image whatever path or batch decodes it. `model_max_abs_error`
compares the files' images with the model's own Keras decode (`model_reference`: its `reconstruct` path for
a deterministic decoder, `decode_codes` with each file's seed for a stochastic one), rounded to 8 bits the
same way: eager Keras and the exported graph run differently fused float kernels, so a pixel whose value
lies on a rounding boundary can differ by one level there (never more). Seeds stored in the files: --seed +
image index,
modulo 2^28 (format versions 2 and 3).

stdout shows what metrics.json holds: the JSON list of the workdir's records.

Several models: --workdir can be repeated (or comma-separated, as before with one). Each workdir still
gets its own metrics.json and grid; --output (required then) receives all records in one JSON list, and
--plot (default: OUTPUT with .png) a rate-distortion(-perception) figure, bpp against MSE, FD and PV
(tfdplc.plots.rate_distortion_perception_plot).

Objectives trained on (degraded, clean) pairs (`paired_data`, the shift-compression objectives of Liu et al.
2022) are evaluated on the pairs of their gin-configured degradation: `mse` / `psnr` against the degraded
input X, `mse_gt` / `psnr_gt` against the ground truth, the codec round trip (and for variable-rate string
codes the real bits next to the entropy model's estimate, `estimated_bits`, and `real_vs_estimated_bits`
= real / estimated - 1), the decomposition terms of eq. 18 for the two-branch model, and fd/kd between
the clean test images and the outputs. Their randomness (dithers) is drawn from --seed, so the evaluation is
reproducible; the grid rows are degraded inputs, outputs, ground truth.

The distortion-perception slider (issue 13): for a perceptual stage-2 workdir (one that can decode with a
realism weight, `PerceptualG2.decode_realism`), --realism=A1,A2,... evaluates instead the blend
(1 - A) G1(c) + A G2(c, n) at each A in [0, 1]. Every A decodes the same codes with the same G2 noise
(drawn from each test image's index, `codec_noise`), so the points of the curve differ only by A. One
record per A (`realism` = A: mse, psnr, fd/kd, pv of the blend, rate_bits) goes to --output, default
WORKDIR/metrics_realism.json (metrics.json is left alone), the grid to
WORKDIR/reconstructions_realism.png (rows: originals, then one per A).

Example:
  python tools/evaluate.py --workdir=/tmp/cae
  python tools/evaluate.py --workdir=/tmp/g2 --realism=0,0.25,0.5,0.75,1
  python tools/evaluate.py --workdir=/tmp/cae --workdir=/tmp/dplc --output=/tmp/rd.json   # + /tmp/rd.png
"""

import json
import os
import sys
import time

import numpy as np

# TF must be imported before absl's app.run: imported inside main, Keras functional models fail to build
# ('SymbolicTensor' object has no attribute 'node') on TF 2.14.
from tfdplc import quiet  # noqa: E402

tf = quiet.import_tensorflow()  # without TF 2.14's duplicate CUDA-plugin lines
from absl import app, flags  # noqa: E402

quiet.quiet_logs()

flags.DEFINE_multi_string(
    "workdir", None, "A training workdir; repeat (or separate by commas) for several.", required=True
)
flags.DEFINE_string("data_dir", None, "tfds data folder (default: tfds' own).")
flags.DEFINE_string("split", "test", "tfds split to evaluate on.")
flags.DEFINE_integer("batch_size", 100, "Evaluation batch size.")
flags.DEFINE_string(
    "output", None, "JSON output (default: WORKDIR/metrics.json; required with several workdirs)."
)
flags.DEFINE_string("plot", None, "Rate-distortion PNG with several workdirs (default: OUTPUT with .png).")
flags.DEFINE_bool("real_rate", True, "Compress / decompress the test images to measure the real rate.")
flags.DEFINE_string("grid", None, "PNG grid output (default: WORKDIR/reconstructions.png).")
flags.DEFINE_integer("grid_images", 16, "Number of test images in the PNG grid.")
flags.DEFINE_enum(
    "features",
    "auto",
    ["auto", "digits", "inception", "none"],
    "Features for Fréchet/kernel distances: the shipped digit classifier, InceptionV3 pool features "
    "(needs --inception_weights), none; auto = digits for 1-channel images, inception if weights are given.",
)
flags.DEFINE_string("inception_weights", None, "Local InceptionV3 (no top) weights file for --features.")
flags.DEFINE_integer("pv_codes", 256, "Test codes for the conditional pixel variance (DPLC Section 5).")
flags.DEFINE_integer("pv_decodes", 100, "Decodes per code for PV.")
flags.DEFINE_integer("num_decodes", 6, "Stochastic decodes of one test image saved to WORKDIR/decodes.npz.")
flags.DEFINE_integer("seed", 0, "Seed of the evaluation randomness (dithers) of paired (shift) objectives.")
flags.DEFINE_list(
    "realism",
    None,
    "Perceptual stage-2 workdirs: evaluate the blend (1 - A) G1 + A G2 at each listed A in [0, 1] "
    "(default output: WORKDIR/metrics_realism.json).",
)
FLAGS = flags.FLAGS


class _ConfigError(ValueError):
    """The workdir's config cannot be evaluated as it stands."""


def main(argv):
    del argv
    workdirs = [path for item in FLAGS.workdir for path in item.split(",") if path]
    if not workdirs:
        print("error: --workdir names no workdir.", file=sys.stderr)
        return 2
    several = len(workdirs) > 1
    if several and not FLAGS.output:
        print(
            "error: with several --workdir, --output (the JSON of all records) is required.", file=sys.stderr
        )
        return 2
    if several and FLAGS.grid:
        print(
            "error: --grid names one file; with several --workdir each grid goes to its workdir.",
            file=sys.stderr,
        )
        return 2
    try:
        alphas = _realism_weights()
    except _ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if alphas is not None:
        return _main_realism(workdirs, alphas)
    records = []
    for workdir in workdirs:
        try:
            record = _evaluate_workdir(workdir)
        except _ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        output = os.path.join(workdir, "metrics.json") if several or not FLAGS.output else FLAGS.output
        _write_records([record], output)
        records.append(record)
    if several:
        from tfdplc import plots

        _write_records(records, FLAGS.output, echo=False)
        plot = FLAGS.plot or os.path.splitext(FLAGS.output)[0] + ".png"
        written = plots.rate_distortion_perception_plot(records, plot)
        print(
            f"[evaluate] {len(records)} records: {FLAGS.output}" + (f", plot: {written}" if written else "")
        )
    return 0


def _test_pipeline(paired):
    """The evaluated split in order, every image once, through the workdir's (parsed) input pipeline.

    Paired objectives keep the config's degradation: they are evaluated on (degraded, clean) pairs.
    """
    from tfdplc import data

    return data.input_pipeline(
        split=FLAGS.split,
        batch_size=FLAGS.batch_size,
        data_dir=FLAGS.data_dir,
        shuffle=False,
        repeat=False,
        drop_remainder=False,
        **({} if paired else {"degradation": None}),
    )


def _pv_images(test_images):
    """The --pv_codes test images whose codes give the PV, spread evenly over the split."""
    return test_images[np.linspace(0, len(test_images) - 1, FLAGS.pv_codes).round().astype(int)]


def _realism_weights():
    """--realism as a list of floats in [0, 1], or None.

    Raises:
      _ConfigError: on an empty list or a value that is not a number in [0, 1].
    """
    if FLAGS.realism is None:
        return None
    from tfdplc.codec.interface import realism_value

    if not FLAGS.realism:
        raise _ConfigError("--realism names no weight: give e.g. --realism=0,0.5,1.")
    alphas = []
    for text in FLAGS.realism:
        try:
            alphas.append(realism_value(float(text)))
        except ValueError as e:
            raise _ConfigError(f"--realism={text}: {e}") from e
    return alphas


def _main_realism(workdirs, alphas):
    """Evaluates the realism slider of each workdir; one record per (workdir, alpha).

    Several workdirs come with --output (`main` checked it).
    """
    records = []
    for workdir in workdirs:
        try:
            own = _evaluate_realism(workdir, alphas)
        except _ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if len(workdirs) > 1 or not FLAGS.output:
            _write_records(own, os.path.join(workdir, "metrics_realism.json"))
        records.extend(own)
    if FLAGS.output:
        _write_records(records, FLAGS.output, echo=len(workdirs) > 1)
    return 0


def _evaluate_realism(workdir, alphas):
    """The slider records of one perceptual stage-2 workdir: the blend's metrics at each alpha.

    Raises:
      _ConfigError: if the workdir cannot be evaluated, or its objective has no realism-weighted decode
        (only `PerceptualG2` has one) or no stage-1 decoder to blend with.
    """
    from tfdplc import data, metrics
    from tfdplc.train import image_grid, load_workdir_config, restore_objective, spread_images

    tf.keras.backend.clear_session()
    try:
        load_workdir_config(workdir)
        dataset = _test_pipeline(paired=False)
        first = next(iter(dataset))
        model = restore_objective(workdir, first)
        if not hasattr(model, "decode_realism"):
            raise _ConfigError(
                f"--realism needs a perceptual stage-2 workdir (PerceptualG2, with G1 and G2); {workdir!r} "
                f"holds a {type(model).__name__}."
            )
        if not model.has_mse_decoder():
            raise _ConfigError(
                f"--realism: {workdir!r} finds no stage-1 decoder to blend with (expected "
                f"{model.mse_decoder_path!r}, the decoder.keras beside the stage-1 encoder)."
            )
        features = _feature_extractor(first.shape[-1])
    except (OSError, data.DatasetNotFoundError) as e:
        raise _ConfigError(str(e)) from e
    test_images = np.concatenate([batch.numpy() for batch in dataset])
    pv_images = None
    if FLAGS.pv_codes:
        pv_images = _pv_images(test_images)
    curve = metrics.realism_curve(
        model, test_images, alphas, features, pv_images, FLAGS.pv_decodes, FLAGS.batch_size
    )
    common = {
        "method": model.name,
        "workdir": os.path.abspath(workdir),
        "split": FLAGS.split,
        "rate_bits": model.rate_bits,
        "bpp": metrics.bits_per_pixel(model.rate_bits, test_images.shape[1:]),
    }
    pv_settings = dict(pv_codes=FLAGS.pv_codes, pv_decodes=FLAGS.pv_decodes) if FLAGS.pv_codes else {}
    records = [dict(common, **point, **pv_settings) for point in curve]
    originals = spread_images(dataset, FLAGS.grid_images)
    code = model.encode(originals)
    grid = image_grid([originals.numpy()] + [model.decode_realism(code, a).numpy() for a in alphas])
    grid_path = FLAGS.grid or os.path.join(workdir, "reconstructions_realism.png")
    tf.io.write_file(grid_path, tf.io.encode_png(tf.cast(tf.round(grid * 255.0), tf.uint8)))
    return records


def _evaluate_workdir(workdir):
    """Evaluates one workdir (see the module docstring) and returns its record.

    Raises:
      _ConfigError: if the workdir cannot be evaluated (not a workdir, no data, no feature weights).
    """
    from tfdplc import data, metrics
    from tfdplc.train import image_grid, load_workdir_config, restore_objective, spread_images

    tf.keras.backend.clear_session()  # one model at a time when several workdirs are evaluated
    try:
        load_workdir_config(workdir)
        paired = _paired_objective()
        dataset = _test_pipeline(paired)
        first = next(iter(dataset))
        if paired and not isinstance(first, tuple):
            raise _ConfigError(
                f"{workdir!r} trains on (degraded, clean) pairs but its config binds no "
                "input_pipeline.degradation."
            )
        model = restore_objective(workdir, first[0] if paired else first)
        features = _feature_extractor((first[1] if paired else first).shape[-1])
    except (OSError, data.DatasetNotFoundError) as e:  # FileNotFoundError is an OSError
        raise _ConfigError(str(e)) from e
    record = {"method": model.name, "workdir": os.path.abspath(workdir), "split": FLAGS.split}
    if paired:
        record.update(_evaluate_paired(model, dataset, features, workdir))
        return record
    test_images = np.concatenate([batch.numpy() for batch in dataset])
    if model.rate_bits is not None:  # stage-1 generators have no code, hence no rate
        record["rate_bits"] = model.rate_bits
        record["bpp"] = metrics.bits_per_pixel(model.rate_bits, first.shape[1:])
    if model.can_reconstruct:
        # One pass: a stochastic decoder's MSE and FD/KD are of the same noise draws.
        _, reconstructions = metrics.reconstruct_dataset(model, dataset)
        record.update(metrics.error_metrics(test_images, reconstructions))
        if features is not None:
            record.update(metrics.distribution_distances(test_images, reconstructions, features))
    if model.can_sample and features is not None:
        samples = np.concatenate([model.sample(len(b)).numpy() for b in np.array_split(test_images, 10)])
        distances = metrics.distribution_distances(test_images, samples, features)
        record.update({f"sample_{key}": value for key, value in distances.items() if key != "fd_features"})
    if FLAGS.real_rate and hasattr(model, "codec_spec"):
        record.update(_real_rate(model, test_images, record.get("rate_bits")))
    if hasattr(model, "encode") and hasattr(model, "decode") and FLAGS.pv_codes:
        pv_images = _pv_images(test_images)
        # noise_dim=None: each decode draws fresh noise from the decoder's own (seeded) noise layer.
        record["pv"] = metrics.objective_pixel_variance(model, pv_images, None, num_decodes=FLAGS.pv_decodes)
        record.update(pv_codes=FLAGS.pv_codes, pv_decodes=FLAGS.pv_decodes)
    originals = spread_images(dataset, FLAGS.grid_images)
    if model.can_reconstruct:
        grid = image_grid([originals.numpy(), model.reconstruct(originals).numpy()])
    else:
        grid = image_grid([originals.numpy(), model.sample(len(originals)).numpy()])
    grid_path = FLAGS.grid or os.path.join(workdir, "reconstructions.png")
    tf.io.write_file(grid_path, tf.io.encode_png(tf.cast(tf.round(grid * 255.0), tf.uint8)))
    if FLAGS.num_decodes and hasattr(model, "encode") and hasattr(model, "decode"):
        record["decodes_file"] = _save_decodes(model, originals[:1], FLAGS.num_decodes, workdir)
    return record


def _to_uint8(images):
    """[0, 1] floats -> uint8 as the codec's graphs convert decoded images (round, clip)."""
    return np.round(np.clip(np.asarray(images, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def _real_rate(model, test_images, rate_bits):
    """Real-bitstream rate and round-trip checks of an objective with the codec interface.

    Compresses the test images (as 8-bit images, what a file holds) with `Codec.from_model`, decompresses
    the containers, and compares with the model's own codes and decodes (see the module docstring).

    Args:
      model: an objective implementing `tfdplc.codec.interface`.
      test_images: float (N, H, W, C) test images in [0, 1].
      rate_bits: the model's estimated bits per image, or None.

    Returns:
      The real-rate keys of the record ({} for a model without an encoder).
    """
    from tfdplc import codec as codec_lib
    from tfdplc import metrics

    spec = codec_lib.codec_spec_of(model)
    if not spec.can_encode:
        return {}
    codec = codec_lib.Codec.from_model(model)
    pixels = _to_uint8(test_images)
    floats = tf.cast(pixels, tf.float32) / 255.0  # what the codec's graphs feed the encoder
    # Stored seeds (format versions 2 and 3) lie in [0, 2^28); models that use none store none (read back as 0).
    seeds = (FLAGS.seed + np.arange(len(pixels), dtype=np.int64)) % (codec_lib.container.MAX_SEED_V2 + 1)
    stored_seeds = seeds if codec.layout.uses_seed else np.zeros_like(seeds)
    batch = FLAGS.batch_size
    codec.decompress(codec.compress(pixels[:2], seeds=seeds[:2]))  # traces both functions: not timed
    start = time.perf_counter()
    files = codec.compress(pixels, seeds=seeds, batch_size=batch)
    compress_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decompress(files, batch_size=batch)
    decompress_s = time.perf_counter() - start
    file_codes, file_seeds = codec.decompress_codes(files)
    codes, references, codec_decodes = [], [], []
    for begin in range(0, len(pixels), batch):
        chunk = slice(begin, begin + batch)
        chunk_codes = model.encode_codes(floats[chunk], tf.constant(seeds[chunk]))
        codes.append(chunk_codes.numpy())
        codec_decodes.append(codec.decode(chunk_codes.numpy(), seeds[chunk]))
        if spec.stochastic_decoder:  # the same noise as the file's decode: drawn from its seed
            references.append(model.decode_codes(chunk_codes, tf.constant(seeds[chunk])).numpy())
        else:
            references.append(model.reconstruct(floats[chunk]).numpy())
    codes, references = np.concatenate(codes), _to_uint8(np.concatenate(references))
    payload = np.asarray([codec.payload_bits(f) for f in files], np.float64)
    # The same images as one archive, built from the files' payloads (their seeds are the archive's).
    archive_seed = int(seeds[0]) if codec.layout.uses_seed else 0
    archived = codec_lib.archive.write(codec.layout, archive_seed, [codec.parse(f)[1] for f in files])
    archive_matches = codec.read_archive(archived).containers(codec.layout) == files
    sizes = np.asarray([len(f) for f in files], np.float64)
    real_bits = float(payload.mean())
    error = int(np.abs(decoded.astype(np.int32) - np.concatenate(codec_decodes).astype(np.int32)).max())
    model_error = int(np.abs(decoded.astype(np.int32) - references.astype(np.int32)).max())
    return {
        "real_bits": real_bits,
        "real_bits_min": float(payload.min()),
        "real_bits_max": float(payload.max()),
        "real_bpp": metrics.bits_per_pixel(real_bits, spec.image_shape),
        "payload_bpp": metrics.bits_per_pixel(real_bits, spec.image_shape),
        "file_bytes": float(sizes.mean()),
        "file_bpp": metrics.bits_per_pixel(8.0 * float(sizes.mean()), spec.image_shape),
        "overhead_bits": float((8.0 * sizes - payload).mean()),
        "archive_bytes": len(archived),
        "archive_bpp": metrics.bits_per_pixel(8.0 * len(archived) / len(files), spec.image_shape),
        "archive_matches_files": bool(archive_matches),
        "real_rate_rel_diff": (real_bits - rate_bits) / rate_bits if rate_bits else None,
        "codes_bit_exact": bool(
            np.array_equal(file_codes, codes) and np.array_equal(file_seeds, stored_seeds)
        ),
        "decoded_max_abs_error": error,
        "decoded_exact": error == 0,
        "decoded_reference": "codec_decode",
        "model_max_abs_error": model_error,
        "model_reference": "decode_codes" if spec.stochastic_decoder else "reconstruct",
        "inputs_8bit": bool(np.abs(pixels / 255.0 - test_images).max() < 1e-6),
        "codec_images": len(files),
        "compress_images_per_s": len(files) / compress_s,
        "decompress_images_per_s": len(files) / decompress_s,
    }


def _write_records(records, output, echo=True):
    """Writes a list of records as JSON to `output` and (with `echo`) prints them."""
    with tf.io.gfile.GFile(output, "w") as f:
        json.dump(records, f, indent=2)
    if echo:  # the same JSON list as the file
        print(json.dumps(records, indent=2))


def _paired_objective():
    """Whether the gin-bound objective class trains on (degraded, clean) pairs (`paired_data`)."""
    import gin

    try:
        reference = gin.query_parameter("tfdplc.train.build_objective.objective")
    except ValueError:
        return False
    wrapped = getattr(getattr(reference, "configurable", None), "wrapped", None)
    return bool(getattr(wrapped, "paired_data", False))


def _evaluate_paired(model, dataset, features, workdir):
    """Metrics of an objective trained on (degraded, clean) pairs (Liu et al. 2022), seeded by --seed.

    Writes the grid (degraded inputs, outputs, ground truth) and, with --num_decodes, several outputs of one
    degraded test image under different randomness (WORKDIR/decodes.npz).
    """
    from tfdplc import metrics
    from tfdplc.train import image_grid, spread_images

    seed = FLAGS.seed
    record = {}
    image_shape = dataset.element_spec[0].shape[1:]
    if hasattr(model, "prepare_for_coding"):
        model.prepare_for_coding()  # range-coding tables of a variable-rate bottleneck
    if model.rate_bits is not None:
        record["rate_bits"] = model.rate_bits
        record["bpp"] = metrics.bits_per_pixel(model.rate_bits, image_shape)
    record.update(metrics.paired_reconstruction_metrics(model, dataset, seed))
    if hasattr(model, "compress") and hasattr(model, "decompress"):
        codec = metrics.codec_metrics(model, dataset, seed)
        record.update(codec)
        if "real_bits" in codec:
            record["real_bpp"] = metrics.bits_per_pixel(codec["real_bits"], image_shape)
            if model.rate_bits is None:  # variable rate: the rate IS the mean length of the strings
                record["rate_bits"] = codec["real_bits"]
                record["bpp"] = record["real_bpp"]
                record["rate_source"] = "bitstream"
    if getattr(model, "estimates_bits", False):
        record.update(metrics.estimated_rate_metrics(model, dataset))
        if record.get("real_bits") is not None:
            record["real_vs_estimated_bits"] = record["real_bits"] / record["estimated_bits"] - 1.0
    if hasattr(model, "decomposition_terms"):
        record.update(metrics.decomposition_metrics(model, dataset, seed))
    if features is not None:
        clean, outputs = [], []
        for _, truth, output in metrics.paired_reconstructions(model, dataset, seed):
            clean.append(truth.numpy())
            outputs.append(output.numpy())
        record.update(
            metrics.distribution_distances(np.concatenate(clean), np.concatenate(outputs), features)
        )
    degraded, clean = spread_images(dataset, FLAGS.grid_images)
    outputs = model.reconstruct(degraded, seed=metrics.batch_seed(seed, 0))
    grid = image_grid([degraded.numpy(), outputs.numpy(), clean.numpy()])
    grid_path = FLAGS.grid or os.path.join(workdir, "reconstructions.png")
    tf.io.write_file(grid_path, tf.io.encode_png(tf.cast(tf.round(grid * 255.0), tf.uint8)))
    if FLAGS.num_decodes:
        # Seeds [seed, 10**6 + i]: disjoint from the per-batch seeds [seed, batch index] above.
        decodes = np.concatenate(
            [
                model.reconstruct(degraded[:1], seed=metrics.batch_seed(seed, 10**6 + i)).numpy()
                for i in range(FLAGS.num_decodes)
            ]
        )
        path = os.path.abspath(os.path.join(workdir, "decodes.npz"))
        np.savez_compressed(path, original=degraded[0].numpy(), clean=clean[0].numpy(), decodes=decodes)
        record["decodes_file"] = path
    return record


def _feature_extractor(channels):
    """The --features network, or None.

    Raises:
      _ConfigError: if the inception weights file is missing.
    """
    from tfdplc import features

    choice = FLAGS.features
    if choice == "auto":
        choice = "digits" if channels == 1 else ("inception" if FLAGS.inception_weights else "none")
    if choice == "digits":
        return features.DigitClassifierFeatures()
    if choice == "inception":
        try:
            return features.InceptionFeatures(FLAGS.inception_weights)
        except FileNotFoundError as e:
            raise _ConfigError(str(e)) from e
    return None


def _save_decodes(model, image, count, workdir):
    """Encodes one image once and decodes it `count` times (fresh decoder noise each time)."""
    code = model.encode(image)
    decodes = np.concatenate([model.decode(code).numpy() for _ in range(count)])
    path = os.path.abspath(os.path.join(workdir, "decodes.npz"))
    np.savez_compressed(path, original=image[0].numpy(), decodes=decodes)
    return path


if __name__ == "__main__":
    app.run(main)

#!/usr/bin/env python
"""Compresses PNG images into tfdplc containers with an exported model, and back.

  python tools/codec.py compress   --model=EXPORT IMAGES_OR_FOLDERS... --output=DIR [--seed=S] [-v]
  python tools/codec.py decompress --model=EXPORT FILES_OR_FOLDERS... --output=DIR [--seed=S | --realism=A]
                                   [-v [--originals=DIR]]
  python tools/codec.py sample     --model=EXPORT --num=16 --output=DIR [--seed=S]
  python tools/codec.py info       FILES_OR_FOLDERS... [--model=EXPORT]
  python tools/codec.py compress   --model=EXPORT IMAGES_OR_FOLDERS... --archive=OUT.dplca [--seed=S] [-v]
  python tools/codec.py list       --model=EXPORT ARCHIVE.dplca
  python tools/codec.py extract    --model=EXPORT ARCHIVE.dplca --output=DIR [--index=I ...] [--salvage]
                                   [--realism=A]

--model is an export folder of tools/export.py (or one of its SavedModels). A folder input means every
*.png (compress) or *.dplc (decompress, info) file in it. compress writes DIR/NAME.dplc for NAME.png,
decompress DIR/NAME.png for NAME.dplc; existing outputs are kept unless --overwrite.

Images must have the model's exact shape (e.g. 32x32x1 for the mnist5k configs, whose loader pads MNIST's
28x28 digits to 32x32): nothing is resized. 8-bit grayscale (L), LA, RGB and RGBA PNGs are read; palette
and 1-bit PNGs are expanded to RGB / L first.

Seeds: a stochastic decoder (DPLC, GC) draws its noise from the seed stored in each file, so every
decompress of a file gives the same image. compress --seed=S stores S, in [0, 2^28), in every file
(default: a random seed per file; deterministic models store none); decompress --seed=S decodes with S instead (another draw of
the decoder; refused for deterministic decoders and for shared-dither encoders).

Realism (a perceptual model with both decoders, e.g. PerceptualG2 exported with its stage-1 G1):
decompress / extract --realism=A decode with (1 - A) G1(c) + A G2(c, n), A in [0, 1]: 0 is the MSE decoder
G1, 1 the plain decompress (G2 with the noise of each file's seed). The files are the same; A is chosen at
decode time. Refused with exit 2: A not a number, NaN, outside [0, 1], with --seed, or a model without
both decoders (its export has no decompress_realism signature).

-v (--verbose) prints, per image, the payload bits (the code itself), the file size (with the header and
checksum: 8-12 bytes in format version 2), bits per pixel for both, and the PSNR of the decoded image against the original
(compress decodes each file it writes; decompress needs --originals=DIR holding NAME.png). A progress
bar goes to stderr when it is a terminal.

Archives (`tfdplc.codec.archive`): compress --archive=OUT.dplca writes every image into one file with one
header (fixed-rate codes bit-packed back to back; image i uses the seed (S + i) mod 2^28), in the order of
the inputs (folders sorted by name; -v prints each image's index). list prints the entries, extract
decodes them (all, or the --index ones) to DIR/STEM_INDEX.png. A damaged archive is refused with the
documented errors; for a range-coded one the intact entries are named, and extract --salvage decodes
them (the damaged ones are named, exit 3).

Hostile input (docs/serving.md, threat model): only regular files are read (a FIFO, a device or a
symlink to one is named and skipped), each read is bounded by the format's largest size, and every
failure of one file (unreadable, not a PNG, a decompression bomb, a refused container, a payload the
range decoder refuses, a failed write) is reported for that file while the others are processed. Outputs
are written atomically (a temporary file in --output renamed into place), never through a symlink:
without --overwrite any existing entry (a dangling symlink too) stops the run, with it the entry itself
is replaced, not a symlink's target.

Exit codes: 0 all done; 2 usage errors (unknown command, no model or an export that does not load, no
inputs, outputs exist, --output not a writable folder or equal to --originals, seeds past 2^63 - 1, or
past 2^28 - 1 where a file stores them, a bad --realism or one the model cannot use);
3 some files were refused (each is named on stderr with the reason; the others were processed).
"""

import os
import sys
import tempfile

# TF must be imported before absl's app.run: imported inside main, Keras functional models fail to build
# ('SymbolicTensor' object has no attribute 'node') on TF 2.14.
from tfdplc import quiet  # noqa: E402

tf = quiet.import_tensorflow()  # without TF 2.14's duplicate CUDA-plugin lines
from absl import app, flags  # noqa: E402

quiet.quiet_logs()

flags.DEFINE_string("model", None, "Export folder written by tools/export.py (or one of its SavedModels).")
flags.DEFINE_string("output", None, "Output folder (created if missing).")
flags.DEFINE_integer(
    "seed",
    None,
    "Seed for every file: [0, 2^28) where stored (compress), else [0, 2^63) (see the docstring).",
)
flags.DEFINE_bool("verbose", False, "Per-image bits, bpp and PSNR (also -v).")
flags.DEFINE_string("originals", None, "decompress -v: folder with the original NAME.png files.")
flags.DEFINE_integer("batch_size", 64, "Images per model call.")
flags.DEFINE_integer("num", 16, "sample: number of images.")
flags.DEFINE_bool("overwrite", False, "Replace existing output files.")
flags.DEFINE_string(
    "archive", None, "compress: write one archive (.dplca) here instead of one file per image."
)
flags.DEFINE_multi_integer("index", None, "extract: the entries to decode (default: all).")
flags.DEFINE_bool("salvage", False, "extract: decode the intact entries of a damaged range-coded archive.")
flags.DEFINE_string(
    "realism",
    None,
    "decompress / extract: alpha in [0, 1], decode with (1 - alpha) G1 + alpha G2 (models with both decoders).",
)
FLAGS = flags.FLAGS

COMMANDS = ("compress", "decompress", "sample", "info", "list", "extract")
CONTAINER_SUFFIX = ".dplc"
EXIT_USAGE, EXIT_REFUSED = 2, 3
_MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
#: info without --model reads files up to this size (a container's payload length field is 32 bits).
INFO_MAX_BYTES = 2**32 + 48


class UsageError(Exception):
    """A problem with the command line (exit code 2)."""


def _inputs(paths, suffix):
    """The files named by `paths`: folders expand to their *suffix entries, sorted; files as given.

    Entries that are not regular files (FIFOs, devices, symlinks to them) are listed too: reading refuses
    each by name (`files.read_regular`) while the others are processed.
    """
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(
                os.path.join(path, name)
                for name in os.listdir(path)
                if name.lower().endswith(suffix) and not os.path.isdir(os.path.join(path, name))
            )
        elif os.path.lexists(path):
            files.append(path)
        else:
            raise UsageError(f"no such file or folder: {path}")
    if not files:
        raise UsageError(f"no {suffix} files in {list(paths)}")
    return files


def _outputs(files, suffix):
    """Output paths in --output, one per input, by input name; refuses collisions and existing files.

    The folder is created if missing and must be writable (checked here, so a read-only folder is a usage
    error, not one refusal per file).
    """
    if not FLAGS.output:
        raise UsageError("--output is required")
    if os.path.lexists(FLAGS.output) and not os.path.isdir(FLAGS.output):
        raise UsageError(f"--output={FLAGS.output} exists and is not a folder")
    outputs = [os.path.join(FLAGS.output, os.path.splitext(os.path.basename(f))[0] + suffix) for f in files]
    if len(set(outputs)) != len(outputs):
        raise UsageError("two inputs have the same name: their outputs would collide")
    existing = [o for o in outputs if os.path.lexists(o)]  # lexists: a dangling symlink exists too
    if existing and not FLAGS.overwrite:
        raise UsageError(f"{existing[0]} exists ({len(existing)} outputs exist); pass --overwrite")
    try:
        os.makedirs(FLAGS.output, exist_ok=True)
        probe, probe_path = tempfile.mkstemp(prefix=".write_test.", dir=FLAGS.output)
        os.close(probe)
        os.unlink(probe_path)
    except OSError as e:
        raise UsageError(f"--output={FLAGS.output} is not a writable folder: {e.strerror or e}") from e
    return outputs


def _load_codec():
    from tfdplc import codec

    if not FLAGS.model:
        raise UsageError("--model is required")
    try:
        return codec.load(FLAGS.model)
    except Exception as e:  # noqa: BLE001 - any damage to the export (truncated .pb, edited JSON) is a usage error
        raise UsageError(f"--model={FLAGS.model}: cannot load the model: {type(e).__name__}: {e}") from e


def _realism():
    """--realism as a float in [0, 1], or None; a bad value, or one with --seed, is a usage error."""
    if FLAGS.realism is None:
        return None
    from tfdplc.codec.interface import realism_value

    try:
        realism = realism_value(float(FLAGS.realism))
    except ValueError as e:
        raise UsageError(
            f"--realism={FLAGS.realism}: give a number in [0, 1] (0: the MSE decoder, 1: the perceptual "
            "decoder)"
        ) from e
    if FLAGS.seed is not None:
        raise UsageError("--realism decodes with each file's seed: give --seed or --realism, not both")
    return realism


def _check_realism(codec, realism):
    """Refuses --realism for a model without both decoders (no decompress_realism signature)."""
    if realism is None:
        return
    if not codec.can_decode_realism:
        raise UsageError(
            f"--realism: {FLAGS.model} ({codec.spec.method}) has no decompress_realism signature: blending "
            "needs a model with both an MSE decoder and a perceptual one (export a PerceptualG2 whose "
            "stage-1 decoder.keras is found, see mse_decoder_path)"
        )


def read_png(path, shape):
    """Reads a PNG as uint8 (H, W, C), checking its shape against the model's before decoding it.

    Raises:
      ValueError: if it is not an 8-bit PNG of the model's shape.
    """
    import io

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from tfdplc.codec import files as safe_files

    height, width, channels = shape
    # A PNG of the model's shape takes at most about H * (1 + W * C * 2) bytes (16-bit samples, stored
    # uncompressed) plus its chunks' headers; 1 MiB on top leaves room for ancillary chunks.
    data = safe_files.read_regular(path, 2 * height * (1 + 2 * width * channels) + 2**20)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise ValueError(f"not a PNG file ({image.format})")
            mode = {"P": "RGBA" if "transparency" in image.info else "RGB", "1": "L"}.get(
                image.mode, image.mode
            )
            if mode not in _MODES:
                raise ValueError(f"unsupported PNG mode {image.mode} (use 8-bit L, LA, RGB or RGBA)")
            width, height = image.size  # From the header: a huge image is refused before decoding.
            found = (height, width, _MODES[mode])
            if found != tuple(shape):
                raise ValueError(
                    f"{'x'.join(map(str, found))} image, the model takes {'x'.join(map(str, shape))} images "
                    "(pad or resize it first)"
                )
            array = np.asarray(image.convert(mode), dtype=np.uint8)
    except UnidentifiedImageError as e:
        raise ValueError("not an image file") from e
    except Image.DecompressionBombError as e:  # the header claims far more pixels than any model takes
        raise ValueError(f"image too large: {e}") from e
    return array.reshape(shape)


def write_png(path, image):
    """Encodes an image as PNG in memory and writes it atomically (`files.write_atomic`)."""
    import io

    from PIL import Image

    from tfdplc.codec import files as safe_files

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    safe_files.write_atomic(path, buffer.getvalue(), overwrite=FLAGS.overwrite)


def _psnr(original, decoded):
    import numpy as np

    from tfdplc import metrics

    mse = np.mean((original.astype(np.float64) / 255.0 - decoded.astype(np.float64) / 255.0) ** 2)
    return float(metrics.psnr(mse))


def _progress(total):
    from tqdm import tqdm

    return tqdm(total=total, unit="image", file=sys.stderr, disable=None, leave=False)


def _report(progress, path, message):
    progress.write(f"{path}: {message}", file=sys.stderr)


class _Stats:
    """Running sums for the summary line."""

    def __init__(self):
        self.count, self.bits, self.file_bytes, self.psnr, self.psnr_count = 0, 0, 0, 0.0, 0

    def add(self, bits, file_bytes, psnr=None):
        self.count += 1
        self.bits += bits
        self.file_bytes += file_bytes
        if psnr is not None:
            self.psnr += psnr
            self.psnr_count += 1

    def summary(self, codec, verb):
        if not self.count:
            return f"{verb} 0 images"
        bits = self.bits / self.count
        line = (
            f"{verb} {self.count} images: {bits:.1f} payload bits/image ({codec.bits_per_pixel(bits):.4f} bpp), "
            f"{self.file_bytes / self.count:.1f} bytes/file ({codec.bits_per_pixel(8 * self.file_bytes / self.count):.4f} bpp)"
        )
        if self.psnr_count:
            line += f", mean PSNR {self.psnr / self.psnr_count:.2f} dB"
        return line


def _line(codec, bits, file_bytes, psnr):
    text = (
        f"{bits} bits ({codec.bits_per_pixel(bits):.4f} bpp), file {file_bytes} bytes "
        f"({codec.bits_per_pixel(8 * file_bytes):.4f} bpp)"
    )
    return text + (f", PSNR {psnr:.2f} dB" if psnr is not None else "")


def _per_file(function, items, progress, names):
    """`function(items)` for a batch; when it fails, item by item, so one bad item cannot stop the rest.

    Returns:
      `(results, failed)`: one result per item (None where it failed) and the number of failures, each
      reported on stderr by its name.
    """
    try:
        return list(function(items)), 0
    except Exception as error:  # noqa: BLE001 - find the culprit(s) below, one item at a time
        if len(items) == 1:
            _report(progress, names[0], f"refused: {type(error).__name__}: {error}")
            return [None], 1
    results, failed = [], 0
    for item, name in zip(items, names):
        try:
            results.append(function([item])[0])
        except Exception as error:  # noqa: BLE001 - per-file isolation: report it and go on
            results.append(None)
            failed += 1
            _report(progress, name, f"refused: {type(error).__name__}: {error}")
    return results, failed


def _write(progress, path, data):
    """Writes one output atomically; returns False (after reporting it) when that fails."""
    from tfdplc.codec import files as safe_files

    try:
        if isinstance(data, bytes):
            safe_files.write_atomic(path, data, overwrite=FLAGS.overwrite)
        else:
            write_png(path, data)
    except Exception as e:  # noqa: BLE001 - per-file isolation: a failed write is that file's refusal
        _report(progress, path, f"not written: {type(e).__name__}: {e}")
        return False
    return True


def compress(args):
    import numpy as np

    files = _inputs(args, ".png")
    if FLAGS.archive:
        return compress_archive(files)
    outputs = _outputs(files, CONTAINER_SUFFIX)  # command-line checks before the (slower) model load
    codec = _load_codec()
    if not codec.spec.can_encode:
        raise UsageError(f"{FLAGS.model}: the model ({codec.spec.method}) has no encoder; use `sample`")
    _check_stored_seed(codec)
    refused, stats = 0, _Stats()
    with _progress(len(files)) as progress:
        for start in range(0, len(files), FLAGS.batch_size):
            batch, images = [], []
            stop = min(start + FLAGS.batch_size, len(files))
            for index in range(start, stop):
                try:
                    images.append(read_png(files[index], codec.image_shape))
                    batch.append(index)
                except Exception as e:  # noqa: BLE001 - per-file isolation (Pillow raises many types)
                    refused += 1
                    _report(progress, files[index], f"refused: {type(e).__name__}: {e}")
            if not batch:
                progress.update(stop - start)
                continue
            containers, failed = _per_file(
                lambda chunk: codec.compress(np.stack(chunk), seeds=FLAGS.seed, batch_size=FLAGS.batch_size),
                images,
                progress,
                [files[i] for i in batch],
            )
            refused += failed
            for row, (index, data) in enumerate(zip(batch, containers)):
                if data is None:
                    continue
                if not _write(progress, outputs[index], data):
                    refused += 1
                    continue
                bits = codec.payload_bits(data)
                psnr = _psnr(images[row], codec.decompress(data)) if FLAGS.verbose else None
                stats.add(bits, len(data), psnr)
                if FLAGS.verbose:
                    progress.write(
                        f"{files[index]} -> {outputs[index]}: {_line(codec, bits, len(data), psnr)}"
                    )
            progress.update(stop - start)
    print(stats.summary(codec, "compressed"))
    return EXIT_REFUSED if refused else 0


def _check_stored_seed(codec):
    """--seed for a file: [0, 2^28) where the model stores it (format version 2)."""
    from tfdplc.codec import container

    if FLAGS.seed is not None and codec.layout.uses_seed and FLAGS.seed > container.MAX_SEED_V2:
        raise UsageError(f"--seed={FLAGS.seed}: seeds stored in a file must lie in [0, 2^28)")


def _archive_output():
    """--archive: a new file (or --overwrite) in a writable folder; checked before the model loads."""
    from tfdplc.codec import archive

    path = FLAGS.archive
    if FLAGS.output:
        raise UsageError("--archive and --output: give one (an archive is one file)")
    if not path.endswith(archive.SUFFIX):
        raise UsageError(f"--archive={path}: archives are named *{archive.SUFFIX}")
    if os.path.lexists(path) and not FLAGS.overwrite:
        raise UsageError(f"{path} exists; pass --overwrite")
    if os.path.isdir(path):
        raise UsageError(f"--archive={path} is a folder")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--archive={path}: {folder} is not a writable folder")
    return path


def compress_archive(files):
    """The `compress --archive` command: every readable image into one archive; unreadable ones are skipped."""
    import numpy as np

    from tfdplc.codec import files as safe_files

    path = _archive_output()
    codec = _load_codec()
    if not codec.spec.can_encode:
        raise UsageError(f"{FLAGS.model}: the model ({codec.spec.method}) has no encoder; use `sample`")
    _check_stored_seed(codec)
    images, names, refused = [], [], 0
    with _progress(len(files)) as progress:
        for path_in in files:
            try:
                images.append(read_png(path_in, codec.image_shape))
                names.append(path_in)
            except Exception as e:  # noqa: BLE001 - per-file isolation (Pillow raises many types)
                refused += 1
                _report(progress, path_in, f"refused: {type(e).__name__}: {e}")
            progress.update(1)
    if not images:
        print(f"no image could be read: {path} not written", file=sys.stderr)
        return EXIT_REFUSED
    data = codec.compress_archive(np.stack(images), seed=FLAGS.seed, batch_size=FLAGS.batch_size)
    safe_files.write_atomic(path, data, overwrite=FLAGS.overwrite)
    archive = codec.read_archive(data)
    if FLAGS.verbose:
        for index, name in enumerate(names):
            print(f"{index}: {name} (seed {int(archive.seeds[index])})")
    count = len(names)
    payload_bits = sum(8 * len(p) for p in archive.payloads) / count
    print(
        f"archived {count} images in {path}: {len(data)} bytes, {8 * len(data) / count:.1f} bits/image "
        f"({codec.bits_per_pixel(8 * len(data) / count):.4f} bpp; payload {payload_bits:.1f} bits/image, "
        f"{codec.bits_per_pixel(payload_bits):.4f} bpp)"
    )
    return EXIT_REFUSED if refused else 0


def _load_archive(args, codec):
    """The one archive named on the command line, read (bounded) and checked against the model."""
    from tfdplc.codec import DamagedArchiveError

    if len(args) != 1:
        raise UsageError(f"give one archive, got {args}")
    path = args[0]
    if not os.path.lexists(path):
        raise UsageError(f"no such file: {path}")
    data = _read_bytes(path, codec.max_archive_size, "this model's archives")
    try:
        return path, codec.read_archive(data, salvage=FLAGS.salvage)
    except DamagedArchiveError:
        if FLAGS.salvage and codec.layout.levels is not None:
            print(f"{path}: --salvage: a packed archive has one checksum for all its images", file=sys.stderr)
        raise


def _archive_command(args, run, check=None):
    """Loads the model and the archive, runs `run(codec, path, archive)`; a refused archive exits 3.

    `check(codec)`, when given, runs before the archive is read (usage checks against the model).
    """
    codec = _load_codec()
    if not codec.spec.can_encode:
        raise UsageError(f"{FLAGS.model}: the model ({codec.spec.method}) has no encoder (no archives)")
    if check is not None:
        check(codec)
    try:
        path, archive = _load_archive(args, codec)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - a refused archive is named with its reason
        print(f"{args[0]}: refused: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_REFUSED
    return run(codec, path, archive)


def list_archive(args):
    """The `list` command: the archive's entries (index, payload bits, seed)."""

    def run(codec, path, archive):
        count = len(archive)
        damaged = count - len(archive.intact)
        print(
            f"{path}: archive of {count} images, model tag {codec.layout.tag.hex()}"
            f"{f', seed {archive.seed}' if codec.layout.uses_seed else ''}"
            f"{f', {damaged} damaged entries' if damaged else ''}"
        )
        for index, payload in enumerate(archive.payloads):
            seed = f", seed {int(archive.seeds[index])}" if codec.layout.uses_seed else ""
            state = "damaged" if payload is None else f"{8 * len(payload)} bits"
            print(f"{index}: {state}{seed}")
        return EXIT_REFUSED if damaged else 0

    return _archive_command(args, run)


def extract(args):
    """The `extract` command: decodes the entries (all or --index) to --output/STEM_INDEX.png."""
    if not FLAGS.output:
        raise UsageError("--output is required")
    realism = _realism()

    def run(codec, path, archive):
        count = len(archive)
        indices = list(range(count)) if not FLAGS.index else list(FLAGS.index)
        bad = [i for i in indices if not 0 <= i < count]
        if bad:
            raise UsageError(f"--index: the archive holds images 0..{count - 1}, not {bad}")
        stem = os.path.splitext(os.path.basename(path))[0]
        width = len(str(count - 1))
        names = [f"{stem}_{i:0{width}d}" for i in indices]
        outputs = _outputs(names, ".png")
        output_of = dict(zip(indices, outputs))
        refused, written, wanted = 0, 0, []
        for index in indices:
            if archive.payloads[index] is None:
                refused += 1
                print(f"{path}: entry {index} is damaged: not extracted", file=sys.stderr)
            else:
                wanted.append(index)
        with _progress(len(wanted)) as progress:
            for start in range(0, len(wanted), FLAGS.batch_size):
                chunk = wanted[start : start + FLAGS.batch_size]
                images, failed = _per_file(
                    lambda items: codec.decompress_archive(
                        archive, items, batch_size=FLAGS.batch_size, realism=realism
                    ),
                    chunk,
                    progress,
                    [f"{path}[{i}]" for i in chunk],
                )
                refused += failed
                for index, image in zip(chunk, images):
                    if image is None:
                        continue
                    if _write(progress, output_of[index], image):
                        written += 1
                    else:
                        refused += 1
                progress.update(len(chunk))
        print(f"extracted {written} of {len(indices)} images into {FLAGS.output}")
        return EXIT_REFUSED if refused else 0

    return _archive_command(args, run, check=lambda codec: _check_realism(codec, realism))


def _read_bytes(path, limit, what):
    """Reads a container file: a regular file of at most `limit` bytes (see `files.read_regular`)."""
    from tfdplc.codec import NotAContainerError, container
    from tfdplc.codec import files as safe_files

    try:
        return safe_files.read_regular(path, limit)
    except safe_files.FileTooLargeError:
        head = _head(path, len(container.MAGIC))
        if head != container.MAGIC:
            raise NotAContainerError(f"not a tfdplc container: it starts with {head!r}.") from None
        raise ValueError(
            f"{os.path.getsize(path)} bytes: too large for {what} (at most {limit} bytes)"
        ) from None


def _head(path, count):
    with open(path, "rb") as f:  # a regular file: read_regular checked it
        return f.read(count)


def _read_container(path, codec):
    data = _read_bytes(path, codec.max_container_size, "this model's containers")
    codec.parse(data)  # raises the specific CodecError
    return data


def decompress(args):
    if FLAGS.originals and not os.path.isdir(FLAGS.originals):
        raise UsageError(f"--originals: no such folder {FLAGS.originals}")
    if FLAGS.originals and FLAGS.output and os.path.isdir(FLAGS.output):
        if os.path.samefile(FLAGS.originals, FLAGS.output):
            raise UsageError(
                "--output is the --originals folder: the decoded images would replace the originals"
            )
    realism = _realism()
    files = _inputs(args, CONTAINER_SUFFIX)
    outputs = _outputs(files, ".png")  # command-line checks before the (slower) model load
    codec = _load_codec()
    if not codec.spec.can_encode:
        raise UsageError(f"{FLAGS.model}: the model ({codec.spec.method}) has no encoder (no containers)")
    _check_realism(codec, realism)
    if FLAGS.seed is not None and (codec.spec.seeded_encoder or not codec.spec.stochastic_decoder):
        reason = "shares its dither with the encoder" if codec.spec.seeded_encoder else "is deterministic"
        raise UsageError(f"--seed: the decoder of {codec.spec.method} {reason}; decode without --seed")
    refused, stats = 0, _Stats()
    with _progress(len(files)) as progress:
        for start in range(0, len(files), FLAGS.batch_size):
            batch, containers = [], []
            stop = min(start + FLAGS.batch_size, len(files))
            for index in range(start, stop):
                try:
                    containers.append(_read_container(files[index], codec))
                    batch.append(index)
                except Exception as e:  # noqa: BLE001 - per-file isolation: name it, go on
                    refused += 1
                    _report(progress, files[index], f"refused: {type(e).__name__}: {e}")
            if batch:
                images, failed = _per_file(
                    lambda chunk: codec.decompress(
                        chunk, seeds=FLAGS.seed, batch_size=FLAGS.batch_size, realism=realism
                    ),
                    containers,
                    progress,
                    [files[i] for i in batch],
                )
                refused += failed
                for row, index in enumerate(batch):
                    if images[row] is None:
                        continue
                    if not _write(progress, outputs[index], images[row]):
                        refused += 1
                        continue
                    bits, size = codec.payload_bits(containers[row]), len(containers[row])
                    psnr = _original_psnr(files[index], images[row], codec.image_shape)
                    stats.add(bits, size, psnr)
                    if FLAGS.verbose:
                        progress.write(
                            f"{files[index]} -> {outputs[index]}: {_line(codec, bits, size, psnr)}"
                        )
            progress.update(stop - start)
    print(stats.summary(codec, "decompressed" if realism is None else f"decompressed (realism {realism:g})"))
    return EXIT_REFUSED if refused else 0


def _original_psnr(path, decoded, shape):
    if not (FLAGS.verbose and FLAGS.originals):
        return None
    original = os.path.join(FLAGS.originals, os.path.splitext(os.path.basename(path))[0] + ".png")
    if not os.path.isfile(original):
        return None
    try:
        return _psnr(read_png(original, shape), decoded)
    except (OSError, ValueError):
        return None


def sample(args):
    import secrets

    from tfdplc.codec import container

    if args:
        raise UsageError(f"sample takes no file arguments, got {args}")
    codec = _load_codec()
    if not codec.spec.can_sample:
        raise UsageError(f"{FLAGS.model}: the model ({codec.spec.method}) cannot sample")
    if FLAGS.num < 1:
        raise UsageError("--num must be >= 1")
    first = secrets.randbelow(2**62) if FLAGS.seed is None else FLAGS.seed
    if first + FLAGS.num - 1 > container.MAX_SEED:
        raise UsageError(
            f"--seed={first} with --num={FLAGS.num}: the seeds {first}..{first + FLAGS.num - 1} pass 2^63 - 1"
        )
    seeds = [first + i for i in range(FLAGS.num)]
    outputs = _outputs([f"sample_{seed}.png" for seed in seeds], ".png")
    refused = 0
    with _progress(len(seeds)) as progress:
        for start in range(0, len(seeds), FLAGS.batch_size):
            images = codec.sample(seeds[start : start + FLAGS.batch_size])
            for offset, image in enumerate(images):
                refused += not _write(progress, outputs[start + offset], image)
            progress.update(len(images))
    print(f"sampled {len(seeds)} images (seeds {seeds[0]}..{seeds[-1]}) into {FLAGS.output}")
    return EXIT_REFUSED if refused else 0


def _check_payload(header, payload):
    """Model-free payload check of a version 1 packed code: its length, padding bits and indices < L."""
    from tfdplc.codec import bitpack, container

    if header.payload_kind == container.PAYLOAD_PACKED:
        count = header.code_shape[0] * header.code_shape[1] * header.code_shape[2]
        bitpack.unpack_numpy(payload, count, header.bits_per_symbol, header.levels)  # raises CorruptedError


def _describe(path, data, peeked, codec):
    """One `info` line: every header field of a version 1 file; a version 2 file's fields are the model's."""
    if peeked.header is None:
        text = f"{path}: {len(data)} bytes, format version 2, model tag {peeked.tag.hex()}"
        if codec is None:
            return (
                text + " (the shapes, seed and payload are the model's: pass --model to check and read them)"
            )
        seed, payload, _ = codec.parse(data)
        layout = codec.layout
        kind = "range-coded" if layout.levels is None else "packed"
        return (
            f"{text}, {kind} payload of {8 * len(payload)} bits, image {'x'.join(map(str, layout.image_shape))}, "
            f"code {'x'.join(map(str, layout.code_shape))}{f', L={layout.levels}' if layout.levels else ''}"
            f"{f', seed {seed}' if layout.uses_seed else ''}, matches the model"
        )
    header, payload = peeked.header, peeked.payload
    kind = "packed" if header.payload_kind == 0 else "range-coded"
    return (
        f"{path}: {len(data)} bytes, format version 1, {kind} payload of {8 * len(payload)} bits, model "
        f"{header.fingerprint.hex()}, image {'x'.join(map(str, header.image_shape))}, code "
        f"{'x'.join(map(str, header.code_shape))}{f', L={header.levels}' if header.levels else ''}, seed "
        f"{header.seed}{', stochastic decoder' if header.stochastic_decoder else ''}"
        f"{', shared dither' if header.seeded_encoder else ''}{', matches the model' if codec is not None else ''}"
    )


def info(args):
    from tfdplc.codec import container

    codec = _load_codec() if FLAGS.model else None
    refused = 0
    for path in _inputs(args, CONTAINER_SUFFIX):
        try:
            limit = codec.max_container_size if codec else INFO_MAX_BYTES
            data = _read_bytes(path, limit, "this model's containers" if codec else "a container")
            peeked = container.peek(data)
            if peeked.header is not None:
                _check_payload(peeked.header, peeked.payload)
            if codec is not None:
                codec.parse(data)
                if codec.layout.levels is None:
                    codec.decompress_codes([data])  # the range decoder must accept the payload too
            line = _describe(path, data, peeked, codec)
        except Exception as e:  # noqa: BLE001 - per-file isolation (CodecError is a ValueError)
            refused += 1
            print(f"{path}: refused: {type(e).__name__}: {e}")
            continue
        print(line)
    return EXIT_REFUSED if refused else 0


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        print(f"error: give a command, one of {', '.join(COMMANDS)} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    if FLAGS.batch_size < 1:
        print("error: --batch_size must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    if FLAGS.seed is not None and not 0 <= FLAGS.seed < 2**63:
        print("error: --seed must lie in [0, 2^63)", file=sys.stderr)
        return EXIT_USAGE
    if FLAGS.realism is not None and argv[1] not in ("decompress", "extract"):
        print(f"error: --realism applies to decompress and extract, not {argv[1]}", file=sys.stderr)
        return EXIT_USAGE
    command = {
        "compress": compress,
        "decompress": decompress,
        "sample": sample,
        "info": info,
        "list": list_archive,
        "extract": extract,
    }[argv[1]]
    try:
        return command(argv[2:])
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    # absl already owns -v (its logging verbosity, which needs a value): a bare -v means --verbose here.
    app.run(main, argv=["--verbose" if arg == "-v" else arg for arg in sys.argv])

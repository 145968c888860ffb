#!/usr/bin/env python
r"""Compresses PNG images into tfdplc containers with an exported model, and back.

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
checksum: 8-12 bytes in format version 3), bits per pixel for both, and the PSNR of the decoded image against the original
(compress decodes each file it writes; decompress needs --originals=DIR holding NAME.png). A progress
bar goes to stderr when it is a terminal.

Archives (`tfdplc.codec.archive`): compress --archive=OUT.dplca writes every image into one file with one
header (fixed-rate codes bit-packed back to back; image i uses the seed (S + i) mod 2^28), in the order of
the inputs (folders sorted by name; -v prints each image's index). list prints the entries, extract
decodes them (all, or the --index ones) to DIR/STEM_INDEX.png. A damaged archive is refused with the
documented errors; for a range-coded one the intact entries are named, and extract --salvage decodes
them (the damaged ones are named, exit 3). A damaged archive's image count is not trusted: list and
extract show only the entries found in its bytes (and the count the header announces), and listing
takes time in proportion to the entries printed.

Hostile input (docs/serving.md, threat model): only regular files are read (a FIFO, a device or a
symlink to one is named and skipped), each read is bounded by the format's largest size and holds one
copy of the file (info without --model streams version 1 files in 1 MiB chunks, so a file announcing a
multi-GiB code costs time, not memory), and every failure of one file (unreadable, not a PNG, a
decompression bomb, a refused container, a payload the range decoder refuses, a failed write: a full
disk, a read-only folder, a name too long, no file descriptors left) is reported for that file while
the others are processed. Inputs whose outputs would have the same name (NAME.dplc beside NAME.DPLC, or
NAME.png in two input folders) are each named and skipped. File names may be any byte string: they are
printed with undecodable bytes and control characters escaped (\xff, \n). Outputs are written
atomically (a temporary file of a fixed 20-byte name in --output renamed into place, so any legal output
name can be written), never through a symlink: without --overwrite any existing entry (a dangling
symlink too) stops the run, with it the entry itself is replaced, not a symlink's target.

Exit codes: 0 all done; 2 usage errors, each one line on stderr without a traceback (unknown command, a
flag that does not parse or does not exist, no model or an export that does not load, no inputs, outputs
exist, --output not a writable folder or equal to --originals, seeds past 2^63 - 1, or past 2^28 - 1
where a file stores them, a bad --realism or one the model cannot use); 3 some files were refused or
not written (each is named on stderr with the reason; the others were processed), colliding inputs
included. (--help prints the usage and exits with absl's code 1.)
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
#: info without --model checks files up to this size (a container's payload length field is 32 bits),
#: streaming them (`container.unpack_stream`): memory stays at one 1 MiB chunk whatever the size.
INFO_MAX_BYTES = 2**32 + 48


class UsageError(Exception):
    """A problem with the command line (exit code 2)."""


def _safe(text) -> str:
    """`text` as one printable line: undecodable bytes of file names and control characters escaped.

    File names are byte strings: Python hands the undecodable ones over as lone surrogates, which a
    strict UTF-8 stream cannot write, and a name may hold a newline that would fake another output line.
    """
    out = []
    for char in str(text):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8 (os.fsdecode's surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char.isprintable():
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _say(text, file=None):
    """Prints one line, made printable (`_safe`)."""
    print(_safe(text), file=file or sys.stdout)


def _inputs(paths, suffix):
    """The files named by `paths`: folders expand to their *suffix entries, sorted; files as given.

    Entries that are not regular files (FIFOs, devices, symlinks to them) are listed too: reading refuses
    each by name (`files.read_regular`) while the others are processed.
    """
    files = []
    for path in paths:
        if os.path.isdir(path):
            try:
                names = os.listdir(path)
            except OSError as e:
                raise UsageError(f"cannot list the folder {path}: {e.strerror or e}") from e
            files += sorted(
                os.path.join(path, name)
                for name in names
                if name.lower().endswith(suffix) and not os.path.isdir(os.path.join(path, name))
            )
        elif os.path.lexists(path):
            files.append(path)
        else:
            raise UsageError(f"no such file or folder: {path}")
    if not files:
        raise UsageError(f"no {suffix} files in {list(paths)}")
    return list(dict.fromkeys(files))  # a file named twice is read once


def _outputs(files, suffix):
    """Output paths in --output, one per input, by input name, or None for inputs whose outputs collide.

    Inputs whose outputs would be the same file (`a.DPLC` beside `a.dplc`, or two folders holding `a.png`)
    are each named on stderr and skipped: `_outputs(...)[i]` is None for them, the caller counts them as
    refused (exit 3) and processes the others. Existing outputs stop the run unless --overwrite. The
    folder is created if missing and must be writable (checked here, so a read-only folder is a usage
    error, not one refusal per file).
    """
    if not FLAGS.output:
        raise UsageError("--output is required")
    if os.path.lexists(FLAGS.output) and not os.path.isdir(FLAGS.output):
        raise UsageError(f"--output={FLAGS.output} exists and is not a folder")
    outputs = [os.path.join(FLAGS.output, os.path.splitext(os.path.basename(f))[0] + suffix) for f in files]
    sources = {}
    for path, output in zip(files, outputs):
        sources.setdefault(output, []).append(path)
    for index, output in enumerate(outputs):
        others = [other for other in sources[output] if other != files[index]]
        if others:
            _say(
                f"{files[index]}: refused: its output {output} would collide with that of "
                f"{', '.join(others)}: skipped",
                sys.stderr,
            )
    outputs = [None if len(sources[o]) > 1 else o for o in outputs]
    existing = [o for o in outputs if o is not None and os.path.lexists(o)]  # a dangling symlink too
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


def _collisions(outputs):
    """The inputs `_outputs` skipped (already named on stderr)."""
    return sum(output is None for output in outputs)


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
    progress.write(_safe(f"{path}: {message}"), file=sys.stderr)


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
    refused, stats = _collisions(outputs), _Stats()
    with _progress(len(files)) as progress:
        for start in range(0, len(files), FLAGS.batch_size):
            batch, images = [], []
            stop = min(start + FLAGS.batch_size, len(files))
            for index in range(start, stop):
                if outputs[index] is None:
                    continue
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
                        _safe(f"{files[index]} -> {outputs[index]}: {_line(codec, bits, len(data), psnr)}")
                    )
            progress.update(stop - start)
    _say(stats.summary(codec, "compressed"))
    return EXIT_REFUSED if refused else 0


def _check_stored_seed(codec):
    """--seed for a file: [0, 2^28) where the model stores it (format versions 2 and 3)."""
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
        _say(f"no image could be read: {path} not written", sys.stderr)
        return EXIT_REFUSED
    data = codec.compress_archive(np.stack(images), seed=FLAGS.seed, batch_size=FLAGS.batch_size)
    try:
        safe_files.write_atomic(path, data, overwrite=FLAGS.overwrite)
    except OSError as e:  # a full disk, a read-only folder, a name too long, no file descriptors left
        _say(f"{path}: not written: {type(e).__name__}: {e}", sys.stderr)
        return EXIT_REFUSED
    archive = codec.read_archive(data)
    if FLAGS.verbose:
        for index, name in enumerate(names):
            _say(f"{index}: {name} (seed {int(archive.seeds[index])})")
    count = len(names)
    payload_bits = sum(8 * len(p) for p in archive.payloads) / count
    _say(
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
    data = _read_bytes(path, codec.max_archive_size, "this model's archives", archive=True)
    try:
        return path, codec.read_archive(data, salvage=FLAGS.salvage)
    except DamagedArchiveError:
        if FLAGS.salvage and codec.layout.levels is not None:
            _say(f"{path}: --salvage: a packed archive has one checksum for all its images", sys.stderr)
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
        _say(f"{args[0]}: refused: {type(e).__name__}: {e}", sys.stderr)
        return EXIT_REFUSED
    return run(codec, path, archive)


def list_archive(args):
    """The `list` command: the archive's entries (index, payload bits, seed)."""

    def run(codec, path, archive):
        count = len(archive)
        damaged = count - len(archive.intact)
        unchecked = not archive.checked
        what = (
            f"damaged archive, {count} entries found (the header announces {archive.announced}: not checked)"
            if unchecked
            else f"archive of {count} images"
        )
        _say(
            f"{path}: {what}, model tag {codec.layout.tag.hex()}"
            f"{f', seed {archive.seed}' if codec.layout.uses_seed else ''}"
            f"{f', {damaged} damaged entries' if damaged else ''}"
        )
        uses_seed = codec.layout.uses_seed
        # One formatted line per entry and a single write: time proportional to the entries printed.
        lines = [
            f"{index}: {'damaged' if payload is None else f'{8 * len(payload)} bits'}"
            + (f", seed {seed}" if uses_seed else "")
            for index, (payload, seed) in enumerate(zip(archive.payloads, archive.seeds.tolist()))
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        return EXIT_REFUSED if damaged or unchecked else 0

    return _archive_command(args, run)


def extract(args):
    """The `extract` command: decodes the entries (all or --index) to --output/STEM_INDEX.png."""
    if not FLAGS.output:
        raise UsageError("--output is required")
    realism = _realism()

    def run(codec, path, archive):
        count = len(archive)
        if not archive.checked:  # salvaged: say why the run will end with exit 3
            _say(
                f"{path}: damaged archive (--salvage): {count} entries found, {len(archive.intact)} intact, the "
                f"header announces {archive.announced} (not checked)",
                sys.stderr,
            )
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
                _say(f"{path}: entry {index} is damaged: not extracted", sys.stderr)
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
        _say(f"extracted {written} of {len(indices)} images into {FLAGS.output}")
        return EXIT_REFUSED if refused or not archive.checked else 0

    return _archive_command(args, run, check=lambda codec: _check_realism(codec, realism))


def _read_bytes(path, limit, what, archive=False):
    """Reads a container (or archive) file: a regular file of at most `limit` bytes (`files.read_regular`).

    A larger file is refused from its size and first bytes, with the error the reader would give it
    (`container.too_long_error`: a file that starts like a container is too long, an archive is named).
    """
    from tfdplc.codec import container
    from tfdplc.codec import files as safe_files

    try:
        return safe_files.read_regular(path, limit)
    except safe_files.FileTooLargeError as e:
        if archive:
            raise ValueError(f"{e.size} bytes: too large for {what} (at most {limit} bytes)") from None
        raise container.too_long_error(e.head, e.size, limit, what) from None


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
    collided = _collisions(outputs)
    _check_realism(codec, realism)
    if FLAGS.seed is not None and (codec.spec.seeded_encoder or not codec.spec.stochastic_decoder):
        reason = "shares its dither with the encoder" if codec.spec.seeded_encoder else "is deterministic"
        raise UsageError(f"--seed: the decoder of {codec.spec.method} {reason}; decode without --seed")
    refused, stats = collided, _Stats()
    with _progress(len(files)) as progress:
        for start in range(0, len(files), FLAGS.batch_size):
            batch, containers = [], []
            stop = min(start + FLAGS.batch_size, len(files))
            for index in range(start, stop):
                if outputs[index] is None:
                    continue
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
                            _safe(f"{files[index]} -> {outputs[index]}: {_line(codec, bits, size, psnr)}")
                        )
            progress.update(stop - start)
    _say(stats.summary(codec, "decompressed" if realism is None else f"decompressed (realism {realism:g})"))
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
    _say(f"sampled {len(seeds)} images (seeds {seeds[0]}..{seeds[-1]}) into {FLAGS.output}")
    return EXIT_REFUSED if refused else 0


def _payload_check(header, length):
    """A streaming check of a version 1 packed payload (length, padding bits, indices < L), else None."""
    from tfdplc.codec import CorruptedError, bitpack, container

    if header.payload_kind != container.PAYLOAD_PACKED:
        return None
    count = header.code_shape[0] * header.code_shape[1] * header.code_shape[2]
    expected = bitpack.packed_size(count, header.bits_per_symbol)
    if length == expected:
        return bitpack.PackedCheck(count, header.bits_per_symbol, header.levels)

    class _WrongLength:
        def update(self, chunk):
            pass

        def close(self):
            raise CorruptedError(
                f"packed payload of {length} bytes, {count} x {header.bits_per_symbol} bits take {expected}."
            )

    return _WrongLength()


def _v1_line(path, size, header, payload_bytes, matches):
    kind = "packed" if header.payload_kind == 0 else "range-coded"
    return (
        f"{path}: {size} bytes, format version 1, {kind} payload of {8 * payload_bytes} bits, model "
        f"{header.fingerprint.hex()}, image {'x'.join(map(str, header.image_shape))}, code "
        f"{'x'.join(map(str, header.code_shape))}{f', L={header.levels}' if header.levels else ''}, seed "
        f"{header.seed}{', stochastic decoder' if header.stochastic_decoder else ''}"
        f"{', shared dither' if header.seeded_encoder else ''}{', matches the model' if matches else ''}"
    )


def _info_without_model(path):
    """One `info` line of a file checked without its model: streamed, one 1 MiB chunk in memory at most.

    Version 1 files are checked completely (header, length, checksum, a packed payload's form); versions
    2 and 3 only as far as their version and tag (the rest is the model's): their first bytes are read.
    """
    from tfdplc.codec import container
    from tfdplc.codec import files as safe_files

    with safe_files.open_regular(path) as (stream, size):
        if size > INFO_MAX_BYTES:
            raise container.too_long_error(stream.read(16), size, INFO_MAX_BYTES, "containers")
        head = stream.read(min(size, len(container.MAGIC)))
        if head == container.MAGIC:
            stream.seek(0)
            header, length = container.unpack_stream(stream, size, payload_check=_payload_check)
            return _v1_line(path, size, header, length, matches=False)
        peeked = container.peek(head + stream.read(min(size, 16) - len(head)))
    return (
        f"{path}: {size} bytes, format version {peeked.version}, model tag {peeked.tag.hex()} (the shapes, "
        "seed and payload are the model's: pass --model to check and read them)"
    )


def _info_with_model(path, codec):
    """One `info` line of a file checked against the model (read whole: at most its largest container)."""
    from tfdplc.codec import container

    data = _read_bytes(path, codec.max_container_size, "this model's containers")
    peeked = container.peek(data)
    seed, payload, version = codec.parse(data)
    if codec.layout.levels is None:
        codec.decompress_codes([data])  # the range decoder must accept the payload too
    if peeked.header is not None:
        return _v1_line(path, len(data), peeked.header, len(payload), matches=True)
    layout = codec.layout
    kind = "range-coded" if layout.levels is None else "packed"
    return (
        f"{path}: {len(data)} bytes, format version {version}, model tag {peeked.tag.hex()}, {kind} payload "
        f"of {8 * len(payload)} bits, image {'x'.join(map(str, layout.image_shape))}, "
        f"code {'x'.join(map(str, layout.code_shape))}{f', L={layout.levels}' if layout.levels else ''}"
        f"{f', seed {seed}' if layout.uses_seed else ''}, matches the model"
    )


def info(args):
    """The `info` command: one line per file (refused files with their reason; stdout)."""
    codec = _load_codec() if FLAGS.model else None
    refused = 0
    for path in _inputs(args, CONTAINER_SUFFIX):
        try:
            line = _info_without_model(path) if codec is None else _info_with_model(path, codec)
        except Exception as e:  # noqa: BLE001 - per-file isolation (CodecError is a ValueError)
            refused += 1
            _say(f"{path}: refused: {type(e).__name__}: {e}")
            continue
        _say(line)
    return EXIT_REFUSED if refused else 0


def parse_flags(argv):
    """Parses the flags for `app.run`; a flag error is a usage error: one line, exit code 2.

    absl itself reports "FATAL Flags parsing error" and exits with 1; --help and --helpfull still work
    (app.run defines and handles them).
    """
    # absl already owns -v (its logging verbosity, which needs a value): a bare -v means --verbose here.
    argv = ["--verbose" if arg == "-v" else arg for arg in argv]
    try:
        return FLAGS(argv)
    except flags.Error as e:
        _say(f"error: {' '.join(str(e).split())} (see --help)", sys.stderr)
        sys.exit(EXIT_USAGE)


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
        _say(f"error: --realism applies to decompress and extract, not {argv[1]}", sys.stderr)
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
        _say(f"error: {e}", sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    # Whatever the locale's encoding, a character it cannot write is escaped, never a crash.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    app.run(main, flags_parser=parse_flags)

#!/usr/bin/env python
"""Exports a trained workdir as SavedModels: a full codec and a stock-servable model for TF Serving.

Writes (see docs/serving.md and tfdplc.codec.export):
  OUTPUT/codec.json     the codec description (spec, model fingerprint, signatures)
  OUTPUT/codec/         every signature (compress, decompress, encode, decode, sample, ...; for
                        fixed-rate codes also compress_archive / decompress_archive: many images in
                        one file, see tfdplc.codec.archive; for a perceptual model with both
                        decoders, decompress_realism: (1 - alpha) G1 + alpha G2, see docs/serving.md)
  OUTPUT/serving/1/     core TensorFlow ops only: what stock TensorFlow Serving can run

Example:
  python tools/export.py --workdir=/tmp/cae              # writes /tmp/cae/export
  python tools/codec.py compress --model=/tmp/cae/export digits/ --output=/tmp/compressed -v

Exit codes: 0 exported; 2 not a workdir, no checkpoint, an objective without the codec interface, a
checkpoint that does not match the config, or an existing output without --overwrite.
"""

import json
import os
import sys

# TF must be imported before absl's app.run: imported inside main, Keras functional models fail to build
# ('SymbolicTensor' object has no attribute 'node') on TF 2.14.
from tfdplc import quiet  # noqa: E402

tf = quiet.import_tensorflow()  # without TF 2.14's duplicate CUDA-plugin lines
from absl import app, flags  # noqa: E402

quiet.quiet_logs()

flags.DEFINE_string("workdir", None, "A training workdir (config.gin + checkpoints/).", required=True)
flags.DEFINE_string("output", None, "Export folder (default: WORKDIR/export).")
flags.DEFINE_bool("overwrite", False, "Replace an existing export folder.")
flags.DEFINE_integer("serving_version", 1, "Version folder of the stock-servable SavedModel (TF Serving).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    import tfdplc  # noqa: F401 - registers every gin configurable before the workdir's config is parsed.
    from tfdplc import codec
    from tfdplc.codec.export import REALISM_SIGNATURE

    output = FLAGS.output or os.path.join(FLAGS.workdir, "export")
    try:
        model = codec.restore_for_export(FLAGS.workdir)
    except (FileNotFoundError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except AssertionError as e:
        print(
            f"error: the checkpoint of {FLAGS.workdir!r} does not hold the variables of the model its "
            f"config.gin builds: {str(e).splitlines()[0]}",
            file=sys.stderr,
        )
        return 2
    try:
        info = codec.export_model(
            model, output, overwrite=FLAGS.overwrite, serving_version=FLAGS.serving_version
        )
    except (FileExistsError, TypeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    description = info.description
    print(json.dumps(description, indent=2))
    print(f"full codec:      {info.codec_dir}")
    print(f"stock serving:   {info.serving_version_dir}  (TF Serving model base path: {info.serving_dir})")
    if REALISM_SIGNATURE in description["signatures"]:
        print(
            f"realism slider:  {REALISM_SIGNATURE} decodes with (1 - alpha) G1 + alpha G2 "
            "(tools/codec.py decompress --realism=ALPHA)"
        )
    elif callable(getattr(model, "decode_codes_realism", None)):
        print(
            f"note: no {REALISM_SIGNATURE} signature: the stage-1 MSE decoder G1 was not found at "
            f"{getattr(model, 'mse_decoder_path', None)!r} (set PerceptualG2.mse_decoder_path to export it)."
        )
    if description["needs_tensorflow_compression"]:
        print(
            "note: the full codec range codes with tensorflow_compression ops; load it in a process that "
            "imported tensorflow_compression. The serving model has encode/decode (integer codes) only."
        )
    return 0


if __name__ == "__main__":
    app.run(main)

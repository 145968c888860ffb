"""Export of a codec model as SavedModels with explicit signatures.

`export_model(model, export_dir)` writes

    export_dir/
      codec.json        the codec description (spec, fingerprint, signatures; also inside each SavedModel
                        as assets.extra/tfdplc_codec.json)
      codec/            SavedModel with every signature; when the model range codes its codes with an
                        entropy bottleneck, it holds tfc's range-coding ops and loads only in a process
                        that imported tensorflow_compression
      serving/1/        SavedModel with core TensorFlow ops only, for stock TensorFlow Serving
                        (model base path: export_dir/serving)

Signatures (images are uint8 (B, H, W, C); seeds int64 (B,) in [0, 2^63), and in [0, 2^28) where they
are stored in a file (`compress_seeded` of models that use seeds); containers are the bytes of
`tfdplc.codec.container`, written in format version 3, read in versions 1, 2 and 3; dictionary keys in
brackets):

| signature           | inputs                          | outputs            | in codec/ | in serving/1/    |
|---------------------|---------------------------------|--------------------|-----------|------------------|
| `compress`          | [images]                        | [compressed_bytes] | encoders  | fixed-rate codes |
| `compress_seeded`   | [images, seeds]                 | [compressed_bytes] | encoders  | fixed-rate codes |
| `decompress`        | [compressed_bytes]              | [images]           | encoders  | fixed-rate codes |
| `decompress_seeded` | [compressed_bytes, seeds]       | [images]           | stochastic decoders without a shared dither (same rule in both) |
| `decompress_codes`  | [compressed_bytes]              | [codes, seeds]     | encoders  | fixed-rate codes |
| `encode`            | [images, seeds]                 | [codes]            | encoders  | encoders         |
| `decode`            | [codes, seeds]                  | [images]           | encoders  | encoders         |
| `sample`            | [seeds]                         | [images]           | samplers  | samplers         |
| `compress_archive`  | [images, seed]                  | [archive_bytes]    | fixed-rate codes | fixed-rate codes |
| `decompress_archive`| [archive_bytes]                 | [images]           | fixed-rate codes | fixed-rate codes |
| `decompress_realism`| [compressed_bytes, realism]     | [images]           | MSE + perceptual decoders (same rule in both) |

`compress` draws a random seed per image when the model uses one (else 0); `decompress` decodes with the
container's seed, `decompress_seeded` with the given ones (another draw of a stochastic decoder).
The archive signatures (`tfdplc.codec.archive`; `seed` and `archive_bytes` are scalars) write and read
one archive per call, byte for byte what `Codec.compress_archive` writes; `decompress_archive` decodes at
most 2^16 images per request. Range-coded archives are written and read in Python (`Codec`): walking
variable-length entries needs a loop the stock graphs avoid.
`decompress_realism` (float32 scalar `realism` = alpha in [0, 1], refused otherwise, NaN included) decodes
with (1 - alpha) G1(c) + alpha G2(c, n), G2's noise n drawn from each container's seed as `decompress`
draws it: alpha = 0 is the MSE decoder G1, alpha = 1 exactly `decompress`. Only models with both decoders
have it (`has_realism_decoder`: `PerceptualG2` whose stage-1 `decoder.keras` is found); G1 is not part of
the fingerprint, so the files are those of the same model exported without it.
`serving_default` is `compress` where the SavedModel has it, else `encode`, else `sample`. The names of
the string tensors end in `_bytes`, so TensorFlow Serving's REST API base64-encodes them as
{"b64": "..."} in both directions.

Every SavedModel is a plain `tf.Module` holding only the variables the signatures read (no optimizer
slots, no Keras objects): `tf.saved_model.load` needs neither tfdplc nor Keras.
"""

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from typing import Dict, List, Optional

import tensorflow as tf

from tfdplc.codec import bitpack, graph
from tfdplc.codec import container as fmt
from tfdplc.codec.fingerprint import fingerprint as compute_fingerprint
from tfdplc.codec.interface import CodecSpec, bottleneck_codes, bottleneck_values, codec_spec_of

__all__ = [
    "CODEC_DIR",
    "SERVING_DIR",
    "SPEC_ASSET",
    "SPEC_FILE",
    "REALISM_SIGNATURE",
    "CodecFunctions",
    "ExportInfo",
    "build_functions",
    "export_model",
    "has_realism_decoder",
    "read_description",
]

CODEC_DIR = "codec"
SERVING_DIR = "serving"
SPEC_FILE = "codec.json"
SPEC_ASSET = os.path.join("assets.extra", "tfdplc_codec.json")
FORMAT_NAME = "tfdplc-codec"
#: The signature decoding containers with a realism weight (models with an MSE and a perceptual decoder).
REALISM_SIGNATURE = "decompress_realism"


def _images_spec(spec: CodecSpec) -> tf.TensorSpec:
    # Every dimension is left open and checked in the graph (`_checked_batch`): a SavedModel signature does
    # not enforce the static shape of its inputs, so a declared (None, H, W, C) would not refuse other sizes.
    del spec
    return tf.TensorSpec([None, None, None, None], tf.uint8, name="images")


def _checked_batch(tensor: tf.Tensor, shape, what: str) -> tf.Tensor:
    """`tensor` (B, *shape) after in-graph checks: B >= 1 and the exact shape, else a clear error.

    Returns the tensor with its static shape (None, *shape) for the model's layers.
    """
    dims = ", ".join(map(str, shape))
    actual = tf.shape(tensor)
    padded = tf.pad(actual, [[0, len(shape) + 1]])  # rank checked separately: slicing never fails
    exact = tf.logical_and(
        tf.equal(tf.size(actual), len(shape) + 1),
        tf.reduce_all(tf.equal(padded[1 : len(shape) + 1], tf.constant(shape, tf.int32))),
    )
    checks = [
        tf.debugging.Assert(
            exact, [f"tfdplc codec: {what} must have shape (B, {dims}) exactly; got shape", actual]
        ),
        tf.debugging.Assert(
            tf.greater(padded[0], 0), [f"tfdplc codec: empty batch, give at least one of the {what}."]
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.ensure_shape(tf.identity(tensor), [None, *shape])


def _per_example(fn, inputs, dtype, shape):
    """Runs `fn` on one example at a time (a batch of 1 each) and stacks the (B, *shape) outputs.

    Determinism: float kernels (oneDNN convolutions, GEMMs) choose their blocking by batch size, so the same
    image computed in batches of different sizes can differ in the last bit, and an 8-bit output that lies
    on a rounding boundary then differs by one level. One example per call makes every output independent
    of how a request is batched, so Python, codec/ and serving/1 decode a file to the same bytes.
    """

    def one(args):
        return tf.cast(fn(*[tensor[None] for tensor in args])[0], dtype)

    return tf.map_fn(one, tuple(inputs), fn_output_signature=tf.TensorSpec(shape, dtype))


_SEEDS = tf.TensorSpec([None], tf.int64, name="seeds")
_STRINGS = tf.TensorSpec([None], tf.string, name="compressed_bytes")
_SEED = tf.TensorSpec([], tf.int64, name="seed")
_ARCHIVE = tf.TensorSpec([], tf.string, name="archive_bytes")
_REALISM = tf.TensorSpec([], tf.float32, name="realism")


def _checked_strings(strings: tf.Tensor) -> tf.Tensor:
    check = tf.debugging.Assert(
        tf.size(strings) > 0, ["tfdplc codec: empty batch, give at least one container."]
    )
    with tf.control_dependencies([check]):
        return tf.identity(strings)


def _to_float(images: tf.Tensor) -> tf.Tensor:
    return tf.cast(images, tf.float32) / 255.0


def _to_uint8(images: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.round(tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0) * 255.0), tf.uint8)


def _checked_seeds(seeds: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
    checks = [
        tf.debugging.Assert(tf.reduce_all(seeds >= 0), ["tfdplc codec: seeds must lie in [0, 2^63)."]),
        tf.debugging.Assert(
            tf.equal(tf.shape(seeds)[0], batch), ["tfdplc codec: give exactly one seed per image."]
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(seeds)


@dataclasses.dataclass
class CodecFunctions:
    """The traced functions of one model: signature name -> `tf.function` with an input signature.

    Attributes:
      spec: the model's codec spec.
      layout: the container layout (None for models without an encoder).
      fingerprint: the 8-byte model fingerprint.
      functions: every signature function, by name.
      stock: the names whose graphs use core TF ops only (servable by stock TF Serving).
      variables: the variables the functions read (what a SavedModel must hold).
    """

    spec: CodecSpec
    layout: Optional[fmt.Layout]
    fingerprint: bytes
    functions: Dict[str, tf.types.experimental.GenericFunction]
    stock: List[str]
    variables: List[tf.Variable]

    def description(self) -> dict:
        """The JSON description written as codec.json."""
        layout = self.layout
        return {
            "format": FORMAT_NAME,
            "container_version": fmt.VERSION,
            "fingerprint": self.fingerprint.hex(),
            "spec": self.spec.to_json(),
            "payload": None if layout is None else ("range_coded" if layout.levels is None else "packed"),
            "bits_per_symbol": None if layout is None else layout.bits_per_symbol,
            "packed_bytes": None if layout is None else layout.packed_size,
            "nominal_rate_bits": self.spec.nominal_rate_bits,
            "needs_tensorflow_compression": self.spec.entropy_coded,
            "signatures": sorted(self.functions),
            "stock_signatures": sorted(self.stock),
        }


def _check_bottleneck(model, spec: CodecSpec):
    from tfdplc.layers import EntropyBottleneck

    bottleneck = model.codec_bottleneck
    if not isinstance(bottleneck, EntropyBottleneck):
        raise TypeError(
            f"codec_bottleneck must be a tfdplc.layers.EntropyBottleneck, got {type(bottleneck).__name__} "
            "(UniversalBottleneck's dither lives inside tfc and cannot be reproduced from integer codes)."
        )
    if not bottleneck.built:
        raise ValueError("codec_bottleneck is not built: call the model on a batch first.")
    unit = _coding_unit(bottleneck, spec)
    batch_shape = bottleneck.compute_output_shape((None, *unit))[1]
    if batch_shape.rank != 1:
        raise ValueError(
            f"codec_bottleneck must code one whole (h, w, k) code per string (coding_rank None or 3), but its "
            f"strings have the batch shape {batch_shape} for codes of shape {spec.code_shape}."
        )
    if not bottleneck.has_tables:
        # The exporter builds the range-coding tables when training did not (tfc's own pattern).
        bottleneck.update_tables()
    return bottleneck, unit


def _coding_unit(bottleneck, spec: CodecSpec) -> tuple:
    """The shape in which the bottleneck codes one image's code (one string).

    `spec.code_shape`, or the shape the bottleneck was built on when that differs only by a reshape that
    keeps the channels (e.g. a bottleneck trained on vectors (B, d) coding the codec's (1, 1, d) maps: its
    tfc coding rank is fixed at build).
    """
    built = getattr(bottleneck, "_build_input_shape", None)
    if built is None:
        return spec.code_shape
    built = tf.TensorShape(built)
    if built.rank is None or built.rank < 2 or not built[1:].is_fully_defined():
        return spec.code_shape
    unit = tuple(int(d) for d in built[1:])
    if unit != spec.code_shape and unit[-1] == spec.code_shape[-1]:
        if math.prod(unit) == math.prod(spec.code_shape):
            return unit
    return spec.code_shape


def build_functions(model) -> CodecFunctions:
    """Traces the signature functions of a model that implements the codec interface.

    Args:
      model: an object with the `tfdplc.codec.interface` methods (built, with trained weights).

    Returns:
      The functions, the fingerprint and the container layout.

    Raises:
      TypeError: if the model does not implement the interface its spec declares.
      ValueError: if its functions return the wrong shapes or dtypes.
    """
    spec = codec_spec_of(model)
    images_spec = _images_spec(spec)
    bottleneck, unit = _check_bottleneck(model, spec) if spec.entropy_coded else (None, None)
    raw = {}

    if spec.can_encode:
        code_spec = tf.TensorSpec([None, None, None, None], tf.int32, name="codes")

        def encode_one(image, seed):
            codes = model.encode_codes(_to_float(image), seed)
            if codes.dtype != tf.int32 or codes.shape[1:] != spec.code_shape:
                raise ValueError(
                    f"encode_codes must return int32 codes (B, {', '.join(map(str, spec.code_shape))}), "
                    f"got {codes.dtype.name} {codes.shape}."
                )
            return codes

        def encode_fn(images, seeds):
            images = _checked_batch(images, spec.image_shape, "images")
            seeds = _checked_seeds(seeds, tf.shape(images)[0])
            codes = _per_example(encode_one, (images, seeds), tf.int32, spec.code_shape)
            if spec.levels is not None:
                in_range = tf.reduce_all((codes >= 0) & (codes < spec.levels))
                check = tf.debugging.Assert(
                    in_range, [f"tfdplc codec: encode_codes returned indices outside [0, {spec.levels})."]
                )
                with tf.control_dependencies([check]):
                    codes = tf.identity(codes)
            return codes

        def decode_one(codes, seeds):
            images = model.decode_codes(codes, seeds)
            if images.shape[1:] != spec.image_shape:
                raise ValueError(
                    f"decode_codes must return images (B, {spec.image_shape}), got {images.shape}."
                )
            return images

        def decode_fn(codes, seeds, one=decode_one):
            codes = _checked_batch(codes, spec.code_shape, "codes")
            seeds = _checked_seeds(seeds, tf.shape(codes)[0])
            if spec.levels is not None:
                in_range = tf.reduce_all((codes >= 0) & (codes < spec.levels))
                check = tf.debugging.Assert(
                    in_range, [f"tfdplc codec: codes must lie in [0, {spec.levels})."]
                )
                with tf.control_dependencies([check]):
                    codes = tf.identity(codes)
            return _to_uint8(_per_example(one, (codes, seeds), tf.float32, spec.image_shape))

        raw["encode"] = (lambda images, seeds: {"codes": encode_fn(images, seeds)}, [images_spec, _SEEDS])
        raw["decode"] = (lambda codes, seeds: {"images": decode_fn(codes, seeds)}, [code_spec, _SEEDS])

    if spec.can_sample:

        def sample_one(seeds):
            images = model.sample_images(seeds)
            if images.shape[1:] != spec.image_shape:
                raise ValueError(
                    f"sample_images must return images (B, {spec.image_shape}), got {images.shape}."
                )
            return images

        def sample_fn(seeds):
            seeds = _checked_seeds(seeds, tf.shape(seeds)[0])
            check = tf.debugging.Assert(
                tf.size(seeds) > 0, ["tfdplc codec: empty batch, give at least one seed."]
            )
            with tf.control_dependencies([check]):
                seeds = tf.identity(seeds)
            images = _per_example(sample_one, (seeds,), tf.float32, spec.image_shape)
            return {"images": _to_uint8(images)}

        raw["sample"] = (sample_fn, [_SEEDS])

    # Trace once to find the variables, which the fingerprint (and hence the container layout) hashes.
    traced = {
        name: tf.function(fn, autograph=False).get_concrete_function(*specs)
        for name, (fn, specs) in raw.items()
    }
    variables = _structural_order(model, _unique_variables(traced.values()))
    fingerprint = compute_fingerprint(spec, variables)
    layout = None
    if spec.can_encode:
        layout = fmt.Layout(
            fingerprint=fingerprint,
            image_shape=spec.image_shape,
            code_shape=spec.code_shape,
            levels=spec.levels,
            stochastic_decoder=spec.stochastic_decoder,
            seeded_encoder=spec.seeded_encoder,
        )
        _add_container_functions(raw, spec, layout, (bottleneck, unit), encode_fn, decode_fn, images_spec)
        # Added after the fingerprint: G1 is a second decoder of the same files, not part of the model
        # that writes them, so an export with and one without it read and write the same files.
        if has_realism_decoder(model):
            _add_realism_function(raw, model, spec, decode_fn)

    functions = {
        name: tf.function(fn, input_signature=specs, autograph=False) for name, (fn, specs) in raw.items()
    }
    concrete = {name: fn.get_concrete_function() for name, fn in functions.items()}
    stock = [name for name, fn in concrete.items() if not _non_core_ops(fn)]
    return CodecFunctions(
        spec=spec,
        layout=layout,
        fingerprint=fingerprint,
        functions=functions,
        stock=sorted(stock),
        variables=_unique_variables(concrete.values()),
    )


def _add_container_functions(raw, spec, layout, bottleneck, encode_fn, decode_fn, images_spec):
    """Adds compress / decompress signatures (containers) to `raw`.

    `bottleneck` is `(codec_bottleneck, coding unit shape)`, `(None, None)` for packed fixed-rate codes.
    """
    size = layout.num_symbols
    bottleneck, unit = bottleneck

    def payloads(codes):
        if bottleneck is not None:
            codes = tf.reshape(codes, [tf.shape(codes)[0], *unit])
            return bottleneck.compress(bottleneck_values(bottleneck, codes))
        flat = tf.reshape(codes, [tf.shape(codes)[0], size])
        return graph.to_strings(bitpack.pack_bits(flat, layout.bits_per_symbol))

    def codes_of(payload):
        if bottleneck is not None:
            values = bottleneck.decompress(payload, unit[:-1])
            codes = bottleneck_codes(bottleneck, values)
        else:
            codes = payload
        return tf.reshape(codes, [tf.shape(payload)[0], *spec.code_shape])

    def compress_seeded(images, seeds):
        if layout.uses_seed:  # stored as a varint (format versions 2 and 3)
            check = tf.debugging.Assert(
                tf.reduce_all(seeds <= fmt.MAX_SEED_V2),
                ["tfdplc codec: seeds stored in a file must lie in [0, 2^28)."],
            )
            with tf.control_dependencies([check]):
                seeds = tf.identity(seeds)
        codes = encode_fn(images, seeds)
        return {"compressed_bytes": graph.write_containers(layout, seeds, payloads(codes))}

    def compress(images):
        batch = tf.shape(images)[0:1]
        if layout.uses_seed:
            seeds = tf.random.uniform(batch, minval=0, maxval=fmt.MAX_SEED_V2 + 1, dtype=tf.int64)
        else:
            seeds = tf.zeros(batch, tf.int64)
        return compress_seeded(images, seeds)

    def decompress_codes(compressed_bytes):
        seeds, payload = graph.read_containers(layout, _checked_strings(compressed_bytes))
        return {"codes": codes_of(payload), "seeds": seeds}

    def decompress(compressed_bytes):
        parsed = decompress_codes(compressed_bytes)
        return {"images": decode_fn(parsed["codes"], parsed["seeds"])}

    def decompress_seeded(compressed_bytes, seeds):
        parsed = decompress_codes(compressed_bytes)
        return {"images": decode_fn(parsed["codes"], seeds)}

    if layout.levels is not None:  # packed codes: archives in core ops (range-coded ones: in Python)

        def compress_archive(images, seed):
            checks = [
                tf.debugging.Assert(
                    (seed >= 0) & (seed <= fmt.MAX_SEED_V2),
                    ["tfdplc codec: the archive seed must lie in [0, 2^28)."],
                )
            ]
            with tf.control_dependencies(checks):
                seed = tf.identity(seed) if layout.uses_seed else tf.zeros_like(seed)
            count = tf.shape(images, out_type=tf.int64)[0]
            seeds = tf.math.floormod(seed + tf.range(count, dtype=tf.int64), fmt.MAX_SEED_V2 + 1)
            codes = encode_fn(images, seeds)
            return {"archive_bytes": graph.write_archive(layout, seed, codes)}

        def decompress_archive(archive_bytes):
            seeds, codes = graph.read_archive(layout, archive_bytes)
            codes = tf.reshape(codes, [tf.shape(codes)[0], *spec.code_shape])
            return {"images": decode_fn(codes, seeds)}

        raw["compress_archive"] = (compress_archive, [images_spec, _SEED])
        raw["decompress_archive"] = (decompress_archive, [_ARCHIVE])
    raw["compress"] = (compress, [images_spec])
    raw["compress_seeded"] = (compress_seeded, [images_spec, _SEEDS])
    raw["decompress"] = (decompress, [_STRINGS])
    raw["decompress_codes"] = (decompress_codes, [_STRINGS])
    if spec.stochastic_decoder and not spec.seeded_encoder:
        raw["decompress_seeded"] = (decompress_seeded, [_STRINGS, _SEEDS])


def has_realism_decoder(model) -> bool:
    """Whether a model can decode with a realism weight: it has both an MSE decoder and a perceptual one.

    Such a model implements `decode_codes_realism(codes, seeds, realism)` and `has_mse_decoder()` returns
    True (`tfdplc.objectives.PerceptualG2` with its stage-1 G1 found); the exporter then adds the
    `decompress_realism` signature.
    """
    if not callable(getattr(model, "decode_codes_realism", None)):
        return False
    has_mse_decoder = getattr(model, "has_mse_decoder", None)
    return bool(callable(has_mse_decoder) and has_mse_decoder())


def _checked_realism(realism: tf.Tensor) -> tf.Tensor:
    """The scalar realism weight after an in-graph check: finite and in [0, 1] (NaN fails both tests)."""
    realism = tf.ensure_shape(realism, [])
    check = tf.debugging.Assert(
        tf.logical_and(realism >= 0.0, realism <= 1.0),
        [
            # No "]" in the text: Codec reports a graph refusal as the text up to the first "]".
            "tfdplc codec: realism must be a number from 0 to 1 (0: the MSE decoder, 1: the perceptual "
            "decoder); got",
            realism,
        ],
    )
    with tf.control_dependencies([check]):
        return tf.identity(realism)


def _add_realism_function(raw, model, spec, decode_fn):
    """Adds `decompress_realism`: containers decoded by (1 - alpha) G1(c) + alpha G2(c, n).

    n is drawn from each container's seed exactly as `decompress` draws it, so alpha = 1 gives the
    images of `decompress` and alpha = 0 those of the MSE decoder (`decode_codes_realism` of the model).
    """
    decompress_codes = raw["decompress_codes"][0]

    def decompress_realism(compressed_bytes, realism):
        alpha = _checked_realism(realism)
        parsed = decompress_codes(compressed_bytes)

        def one(codes, seeds):
            images = model.decode_codes_realism(codes, seeds, alpha)
            if images.shape[1:] != spec.image_shape:
                raise ValueError(
                    f"decode_codes_realism must return images (B, {spec.image_shape}), got {images.shape}."
                )
            return images

        return {"images": decode_fn(parsed["codes"], parsed["seeds"], one=one)}

    raw[REALISM_SIGNATURE] = (decompress_realism, [_STRINGS, _REALISM])


def _unique_variables(concrete_functions) -> List[tf.Variable]:
    seen, variables = set(), []
    for fn in concrete_functions:
        for variable in fn.variables:
            if variable.ref() not in seen:
                seen.add(variable.ref())
                variables.append(variable)
    return variables


def _structural_order(model, variables: List[tf.Variable]) -> List[tf.Variable]:
    """Orders variables as the model lists them (`model.variables`), the same for every copy of a model.

    A traced function lists its captured variables in an order that can differ between two copies of one
    architecture; the fingerprint needs an order that does not. Variables the model does not list come
    last, ordered by dtype, shape and content.
    """
    position = {}
    for index, variable in enumerate(getattr(model, "variables", None) or []):
        position.setdefault(variable.ref(), index)
    listed = sorted((v for v in variables if v.ref() in position), key=lambda v: position[v.ref()])
    others = sorted(
        (v for v in variables if v.ref() not in position),
        key=lambda v: (v.dtype.name, tuple(v.shape), hashlib.sha256(v.numpy().tobytes()).hexdigest()),
    )
    return listed + others


def _non_core_ops(concrete_function) -> List[str]:
    """Op types of a traced function (nested functions included) that core TensorFlow does not define.

    tensorflow_compression's range coders are custom ops: a graph that uses them cannot run in stock
    TensorFlow Serving, nor load in a process without tensorflow_compression.
    """
    graph_def = concrete_function.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    called = {f.signature.name for f in graph_def.library.function}
    return sorted(op for op in ops if op not in called and not hasattr(tf.raw_ops, op))


class _Exportable(tf.Module):
    """The root object of an exported SavedModel: the variables the signatures read, nothing else."""

    def __init__(self, variables):
        super().__init__(name="tfdplc_codec")
        self.codec_variables = list(variables)


@dataclasses.dataclass(frozen=True)
class ExportInfo:
    """Where `export_model` wrote what.

    Attributes:
      export_dir: the export folder.
      codec_dir: the full SavedModel.
      serving_dir: the model base path for TensorFlow Serving (holding the version folder).
      serving_version_dir: the stock-servable SavedModel.
      description: the content of codec.json.
    """

    export_dir: str
    codec_dir: str
    serving_dir: str
    serving_version_dir: str
    description: dict


def _save(functions: CodecFunctions, names: List[str], path: str, description: dict) -> None:
    concrete = {name: functions.functions[name].get_concrete_function() for name in names}
    variables = _unique_variables(concrete.values())
    default = next((n for n in ("compress", "encode", "sample") if n in concrete), None)
    signatures = dict(concrete)
    if default is not None:
        signatures["serving_default"] = concrete[default]
    tf.saved_model.save(_Exportable(variables), path, signatures=signatures)
    description = dict(description, signatures=sorted(signatures), serving_default=default)
    os.makedirs(os.path.join(path, os.path.dirname(SPEC_ASSET)), exist_ok=True)
    with open(os.path.join(path, SPEC_ASSET), "w") as f:
        json.dump(description, f, indent=2)


def export_model(model, export_dir: str, *, overwrite: bool = False, serving_version: int = 1) -> ExportInfo:
    """Exports a model implementing the codec interface (see the module docstring for the layout).

    Args:
      model: the trained model (built; an entropy bottleneck's tables are built here when missing).
      export_dir: output folder; must not exist (or be empty) unless `overwrite`.
      overwrite: replace an existing export.
      serving_version: the version folder of the stock-servable SavedModel (TF Serving's numbering).

    Returns:
      An `ExportInfo`.

    Raises:
      FileExistsError: if `export_dir` holds files and `overwrite` is False.
      TypeError, ValueError: see `build_functions`.
      RuntimeError: if a signature meant for stock TF Serving contains a non-core op.
    """
    if isinstance(serving_version, bool) or not isinstance(serving_version, int) or serving_version < 1:
        raise ValueError(f"serving_version must be a positive int, got {serving_version!r}.")
    if os.path.exists(export_dir) and os.listdir(export_dir) and not overwrite:
        raise FileExistsError(f"{export_dir!r} exists and is not empty (pass overwrite=True to replace it).")
    functions = build_functions(model)
    spec = functions.spec
    stock_names = [name for name in functions.functions if name in functions.stock]
    if spec.entropy_coded:
        expected = {"encode", "decode"} | ({"sample"} if spec.can_sample else set())
    else:
        expected = set(functions.functions)
    missing = sorted(expected - set(stock_names))
    if missing:
        raise RuntimeError(f"signatures {missing} should use core TF ops only but do not: cannot be served.")
    stock_names = sorted(expected)
    description = functions.description()
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    # Write into a temporary folder and rename, so a failed export never leaves half a model behind.
    staging = tempfile.mkdtemp(prefix=".export_", dir=parent)
    try:
        _save(functions, sorted(functions.functions), os.path.join(staging, CODEC_DIR), description)
        version_dir = os.path.join(staging, SERVING_DIR, str(serving_version))
        _save(functions, stock_names, version_dir, dict(description, stock_only=True))
        with open(os.path.join(staging, SPEC_FILE), "w") as f:
            json.dump(description, f, indent=2)
        if os.path.exists(export_dir):
            shutil.rmtree(export_dir)
        os.replace(staging, export_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportInfo(
        export_dir=export_dir,
        codec_dir=os.path.join(export_dir, CODEC_DIR),
        serving_dir=os.path.join(export_dir, SERVING_DIR),
        serving_version_dir=os.path.join(export_dir, SERVING_DIR, str(serving_version)),
        description=description,
    )


def read_description(saved_model_dir: str) -> dict:
    """The codec description stored with a SavedModel written by `export_model`.

    Raises:
      FileNotFoundError: if the folder has no description (not written by `export_model`).
      ValueError: if the description is not a tfdplc codec description.
    """
    path = os.path.join(saved_model_dir, SPEC_ASSET)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{saved_model_dir!r} is not a tfdplc codec SavedModel ({SPEC_ASSET} is missing)."
        )
    with open(path) as f:
        try:
            description = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: unreadable codec description: {error}") from error
    if not isinstance(description, dict) or description.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: not a {FORMAT_NAME} description.")
    return description

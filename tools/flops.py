#!/usr/bin/env python
"""Counts the floating-point operations of one training step of a gin-configured objective.

It builds the objective as tools/train.py does (same gin parsing, `tfdplc.train.build_objective`, one call
on an input to build it, `compile()`), takes the first batch of the config's input pipeline, traces the
objective's `train_step` ONCE as a `tf.function` concrete function on that batch's exact shapes, and counts
the FLOPs of the traced graph with TensorFlow's profiler
(`tf.compat.v1.profiler.profile(graph, options=ProfileOptionBuilder.float_operation())`). Nothing is
executed: the count is static, from the ops' shapes.

What the profiler counts (TF 2.14's flops registry; one multiply-add = 2 FLOPs):
- Conv2D: 2 * output elements * kh * kw * Cin; Conv2DBackpropInput (the input gradient, and the forward
  op of a transposed convolution) and Conv2DBackpropFilter (the kernel gradient): written from the input
  size and the strides, which equals the forward convolution's count where output = input / stride
  ("same" padding); MatMul / BatchMatMul: 2 * output elements * inner dimension;
- element-wise and reduction ops (Add, Mul, Sub, RealDiv, Square, Rsqrt, Pow, Mean, Sum, BiasAdd, ...):
  one FLOP per output (reductions: per input) element.
Where this tool departs from the profiler's total: (1) it leaves out the ops nothing uses, which TF prunes
before running (the profiler's total, printed too, includes them: e.g. the input gradient of a network's
first layer); (2) Conv2DBackpropInput / Conv2DBackpropFilter are counted as their forward convolution
exactly (`conv_gradient_flops`): the registry assumes output size = input size / stride, which overcounts
"valid" convolutions (16x for the 1x1 -> 4x4 transposed convolution that starts the DCGAN generator).
What it misses, and this tool reports instead of counting: every op without a registered count —
FusedBatchNorm(V3) and its gradient, activations and their gradients (Relu, LeakyRelu, Tanh, Sigmoid,
Softplus, Exp, Sqrt...), random-number generation, casts, transposes, tiling and gathers. The tool lists
them with the number of elements they write, an upper bound of their (element-wise) work.

Control flow: the profiler only sees the ops of the graph it is given, so the bodies of `tf.while_loop`
(the critic loops), `tf.cond` and nested function calls would count zero. This tool profiles each body as
its own graph and adds it: a while loop's body times its trip count (read from the loop condition
`counter < constant` and the counter's start; an error if it cannot be read), a `tf.cond` as its most
expensive branch (e.g. the G2 step rather than the critic pre-training of the perceptual decoder), a call
once.

What it stands in for, and says so in its output (the FLOPs do not depend on weights or pixel values):
- a data set that is not prepared (celeb_a, lsun/bedroom, mnist, svhn_cropped): `tfds.testing.mock_data`
  examples of the data set's real features, through the config's own pipeline (preprocessing, batch
  size, degradation and pairing), so the batch has the real structure and shapes;
- an upstream artifact that does not exist (DPLC.generator_path, PerceptualG2.encoder_path,
  ShiftCompression.restoration_path, ShiftDecomposition.source_workdir): the UNTRAINED objective of the
  upstream config (`UPSTREAM`, or --upstream_gin_config) writes its artifacts into a temporary folder with
  its own `save_artifacts`, and the path is bound there; the shape macros (K, M, ...) the two configs
  share are forwarded to the upstream config;
- CAE metrics files (scaled_lambda.metrics / reference_metrics) that do not exist: lambda(R) = its base.

Example:
  python tools/flops.py --gin_config=gin/wgan_gp_celeba64.gin
  python tools/flops.py --gin_config=gin/dplc_lsun64.gin --gin_bindings="K = 32"

It also prints the hours `train.total_steps` steps would take on one A100 / H100 (`PEAK_TFLOPS`, dense
tensor-core peaks from NVIDIA's datasheets) at an ASSUMED model FLOPs utilization (--mfu), floored by an
ASSUMED runtime cost per executed op (--op_overhead_us): projections, not measurements (docs/paper_scale.md).

Exit status: 0 done, 2 bad config or binding, 3 the graph could not be counted (an unreadable loop trip
count, or a convolution / matrix product whose shape is not fully known; element-wise ops of unknown shape
are listed, not counted, as the profiler skips them).
"""

import collections
import dataclasses
import math
import os
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

from tfdplc import quiet

# TF must be imported before absl's app.run: imported inside main, Keras functional models fail to build
# ('SymbolicTensor' object has no attribute 'node') on TF 2.14.
tf = quiet.import_tensorflow()
from absl import app, flags  # noqa: E402
from tensorflow.python.framework import ops as tf_ops  # noqa: E402  (the flops registry)

quiet.quiet_logs()


def _define_flags() -> None:
    """The command line's flags (defined only when run as a script, so importing the module defines none)."""
    flags.DEFINE_multi_string("gin_config", [], "gin config files, applied in order.")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings applied after the files.")
    flags.DEFINE_multi_string(
        "upstream_gin_config",
        [],
        "Config of the run whose artifacts the config loads (default: UPSTREAM, by the last --gin_config's "
        "file name); used only for the artifacts that do not exist.",
    )
    flags.DEFINE_multi_string("upstream_gin_bindings", [], "gin bindings for the upstream config.")
    flags.DEFINE_string("data_dir", None, "tfds data folder (default: tfds' own).")
    flags.DEFINE_integer("top", 8, "Op types listed in the breakdowns.")
    flags.DEFINE_float("mfu", 0.3, "Assumed model FLOPs utilization for the projected wall times.")
    flags.DEFINE_float(
        "op_overhead_us", 5.0, "Assumed runtime cost per executed op (microseconds): the projection's floor."
    )


FLAGS = flags.FLAGS

#: Upstream config of each config that loads another run's artifacts: (file name, extra bindings). The
#: decomposition is trained on an end-to-end run WITHOUT common randomness (Liu et al. Section 3.2).
UPSTREAM = {
    "dplc_celeba64.gin": ("wpp_celeba64.gin", ()),
    "dplc_lsun64.gin": ("wpp_lsun64.gin", ()),
    "dplc_mnist5k.gin": ("wpp_mnist5k.gin", ()),
    "perceptual_g2_mnist.gin": ("perceptual_g1_mnist.gin", ()),
    "perceptual_g2_mnist5k.gin": ("perceptual_g1_mnist5k.gin", ()),
    "shift_baseline_sr_mnist.gin": ("shift_restoration_sr_mnist.gin", ()),
    "shift_baseline_sr_mnist5k.gin": ("shift_restoration_sr_mnist5k.gin", ()),
    "shift_baseline_denoise_svhn.gin": ("shift_restoration_denoise_svhn.gin", ()),
    "shift_decomposition_sr_mnist.gin": ("shift_sr_mnist.gin", ("COMMON_RANDOMNESS = False",)),
    "shift_decomposition_sr_mnist5k.gin": ("shift_sr_mnist5k.gin", ("COMMON_RANDOMNESS = False",)),
    "shift_decomposition_denoise_svhn.gin": ("shift_denoise_svhn.gin", ("COMMON_RANDOMNESS = False",)),
}

#: Dense (no sparsity) peak tensor-core throughput in TFLOP/s, from NVIDIA's A100 (SXM4) and H100 (SXM5)
#: datasheets, whose figures "with sparsity" are twice these. TF 2.14 runs float32 convolutions and matrix
#: products in TF32 on these GPUs by default (tf.config.experimental.enable_tensor_float_32_execution).
PEAK_TFLOPS = {
    "A100 TF32": 156.0,
    "A100 BF16": 312.0,
    "H100 TF32": 494.5,
    "H100 BF16": 989.5,
}

#: Parameters naming another run's artifact (a file, or a workdir for the decomposition).
ARTIFACT_PARAMETERS = (
    "DPLC.generator_path",
    "PerceptualG2.encoder_path",
    "ShiftCompression.restoration_path",
    "ShiftDecomposition.source_workdir",
)

#: Macros that fix network shapes; forwarded to the upstream config where both define them.
SHAPE_MACROS = ("K", "M", "RESOLUTION", "CHANNELS", "N_BLOCKS", "WIDTH", "LEVELS")

_WHILE_OPS = ("While", "StatelessWhile")
_IF_OPS = ("If", "StatelessIf")
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
#: Ops that move or name data without arithmetic; left out of the "not counted" list.
_BOOKKEEPING = frozenset(
    "Const Placeholder Identity IdentityN NoOp ReadVariableOp AssignVariableOp VarHandleOp Reshape Shape "
    "ShapeN Size Rank Pack Unpack StridedSlice Slice Squeeze ExpandDims Range Fill ZerosLike OnesLike "
    "StopGradient BroadcastGradientArgs Assert All Any PreventGradient FloorDiv FloorMod LogicalAnd "
    "LogicalOr LogicalNot StatelessRandomGetKeyCounter StatelessRandomGetAlg".split()
)


#: The ops that carry nearly all the FLOPs of these networks: their shapes must be known.
_HEAVY = frozenset(
    "Conv2D Conv2DBackpropInput Conv2DBackpropFilter MatMul BatchMatMul BatchMatMulV2 BatchMatMulV3 "
    "DepthwiseConv2dNative Conv3D".split()
)

#: Ops that launch no device kernel (data already in place, or bookkeeping of the runtime).
_NO_KERNEL = frozenset(
    "Const Placeholder Identity IdentityN NoOp ReadVariableOp VarHandleOp StopGradient Assert".split()
)


class CountError(RuntimeError):
    """The graph cannot be counted (unknown trip count or shape)."""


@dataclasses.dataclass
class Count:
    """FLOPs of a graph, with its loops and calls expanded.

    Attributes:
      flops: FLOPs of the ops that run: those the function's outputs, control outputs or stateful ops
        depend on (TF prunes the rest, e.g. the input gradient of a network's first layer, before running).
      profiled: the profiler's total over every op of the traced graphs, dead ones included.
      by_type: {op type: FLOPs} of the ops that run.
      uncounted: {op type: elements written} of the arithmetic ops that run but have no registered count.
      loops: (op name, trip count, FLOPs per trip) of each while loop, nested ones included.
      unknown_shape: {op type: number} of element-wise ops that run but whose shape is not fully known
        at trace time (not counted, by the profiler either).
      ops: ops that run, loop bodies counted per trip, leaving out those that launch no device kernel
        (constants, placeholders, identities, variable reads): a floor on a step's time comes from this,
        each op costing the runtime some microseconds however small it is.
    """

    flops: int = 0
    profiled: int = 0
    ops: int = 0
    by_type: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    uncounted: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    loops: List[Tuple[str, int, int]] = dataclasses.field(default_factory=list)
    unknown_shape: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def add(self, other: "Count", times: int = 1) -> None:
        """Adds `times` x `other` to this count."""
        self.flops += times * other.flops
        self.profiled += times * other.profiled
        self.ops += times * other.ops
        for key, value in other.by_type.items():
            self.by_type[key] += times * value
        for key, value in other.uncounted.items():
            self.uncounted[key] += times * value
        for key, value in other.unknown_shape.items():
            self.unknown_shape[key] += times * value
        self.loops.extend(other.loops)


def profiler_flops(graph: tf.Graph) -> int:
    """Total FLOPs of the ops of `graph` itself (no function bodies), by `tf.compat.v1.profiler`."""
    options = (
        tf.compat.v1.profiler.ProfileOptionBuilder(
            tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        )
        .with_empty_output()
        .build()
    )
    return int(tf.compat.v1.profiler.profile(graph, options=options).total_float_ops)


def _elements(op: tf.Operation) -> int:
    total = 0
    for tensor in op.outputs:
        if tensor.shape.is_fully_defined():
            total += tensor.shape.num_elements()
    return total


def _function_graph(graph: tf.Graph, name: str) -> tf.Graph:
    # The FuncGraph a control-flow op calls; FuncGraph keeps the functions it calls by name (TF 2.14
    # has no public accessor; AtomicFunction.graph holds the traced body with its static shapes).
    function = graph._get_function(name)  # pylint: disable=protected-access
    if function is None or getattr(function, "graph", None) is None:
        raise CountError(f"function {name!r} called in the graph has no traced body to count")
    return function.graph


def _const_value(tensor: tf.Tensor) -> Optional[float]:
    if tensor.op.type != "Const":
        return None
    value = tf.get_static_value(tensor)
    return None if value is None or getattr(value, "ndim", 0) else float(value)


def trip_count(graph: tf.Graph, op: tf.Operation) -> int:
    """Iterations of a while loop `counter < limit` (or <=) with a constant start, limit and step.

    Args:
      graph: the graph holding `op`.
      op: a While / StatelessWhile op.

    Returns:
      The number of times the body runs.

    Raises:
      CountError: if the condition is not a comparison of a loop variable with a constant, the
        variable's start is not constant, or the body does not add a positive constant to it.
    """
    cond = _function_graph(graph, op.get_attr("cond").name)
    body = _function_graph(graph, op.get_attr("body").name)
    for compare in cond.get_operations():
        if compare.type not in ("Less", "LessEqual"):
            continue
        counter, limit = compare.inputs
        limit_value = _const_value(limit)
        if counter.op.type != "Placeholder" or limit_value is None:
            continue
        index = next(i for i, t in enumerate(cond.inputs) if t is counter)
        start = _const_value(op.inputs[index])
        step = _increment(body, index)
        if start is None or step is None or step <= 0:
            break
        trips = math.ceil((limit_value - start) / step) + (
            compare.type == "LessEqual" and (limit_value - start) % step == 0
        )
        return max(int(trips), 0)
    raise CountError(
        f"cannot read the trip count of the while loop {op.name!r} (its condition is not "
        "`counter < constant` with a constant start and step)"
    )


def _increment(body: tf.Graph, index: int) -> Optional[float]:
    """The constant the body adds to loop variable `index` (None if it does something else)."""
    out = body.outputs[index]
    while out.op.type == "Identity":
        out = out.op.inputs[0]
    if out.op.type not in ("AddV2", "Add"):
        return None
    a, b = out.op.inputs
    if a is body.inputs[index]:
        return _const_value(b)
    if b is body.inputs[index]:
        return _const_value(a)
    return None


def count_graph(graph: tf.Graph) -> Count:
    """FLOPs of `graph` with while-loop bodies times their trip counts, cond branches at their maximum.

    Args:
      graph: a traced graph, e.g. a concrete function's `.graph`.

    Returns:
      The `Count`.

    Raises:
      CountError: on an unreadable trip count, or an op with a registered count whose shapes are not
        fully known (the profiler would skip it silently).
    """
    count = Count(profiled=profiler_flops(graph))
    live = live_ops(graph)
    nested, registered = Count(), 0
    for op in graph.get_operations():
        if op.type in _WHILE_OPS + _IF_OPS + _CALL_OPS:
            if op in live:
                nested.add(_control_flow(graph, op))
            continue
        try:
            stats = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
        except ValueError as e:
            # The profiler skips such ops too. Acceptable for element-wise work (e.g. prior draws whose
            # batch size is a tensor inside a loop), not for a convolution or matrix product.
            if op.type in _HEAVY:
                raise CountError(
                    f"op {op.name!r} ({op.type}) has a shape that is not fully known: {e}"
                ) from e
            if op in live:
                count.unknown_shape[op.type] += 1
            continue
        registered += int(stats.value or 0)
        if op not in live:
            continue
        count.ops += op.type not in _NO_KERNEL
        if op.type in _CONV_GRADIENTS:
            count.by_type[op.type] += conv_gradient_flops(op)
        elif stats.value is not None:
            count.by_type[op.type] += int(stats.value)
        elif op.type not in _BOOKKEEPING and not op.type.endswith("VariableOp"):
            count.uncounted[op.type] += _elements(op)
    # The per-op counts use the profiler's own registry, so over all ops they add up to its total.
    if registered != count.profiled:
        raise CountError(
            f"the profiler counted {count.profiled} FLOPs in graph {graph.name!r}, its ops' registered counts "
            f"add up to {registered}"
        )
    count.flops = sum(count.by_type.values())
    count.add(nested)
    return count


def _control_flow(graph: tf.Graph, op: tf.Operation) -> Count:
    """The count of a while loop (body x trips), tf.cond (its dearer branch) or function call."""
    if op.type in _WHILE_OPS:
        trips = trip_count(graph, op)
        body = count_graph(_function_graph(graph, op.get_attr("body").name))
        body.add(count_graph(_function_graph(graph, op.get_attr("cond").name)))
        result = Count()
        result.add(body, trips)
        result.loops.insert(0, (op.name, trips, body.flops))
        return result
    if op.type in _IF_OPS:
        branches = [
            count_graph(_function_graph(graph, op.get_attr(a).name)) for a in ("then_branch", "else_branch")
        ]
        return max(branches, key=lambda c: c.flops)
    return count_graph(_function_graph(graph, op.get_attr("f").name))


_CONV_GRADIENTS = ("Conv2DBackpropInput", "Conv2DBackpropFilter")


def conv_gradient_flops(op: tf.Operation) -> int:
    """Exact FLOPs of a Conv2DBackpropInput / Conv2DBackpropFilter op: those of its forward convolution.

    Both take the gradient `out_backprop` (N, Ho, Wo, Co) of the convolution x (N, H, W, Ci) * w (kh, kw,
    Ci, Co) and cost 2 * N * Ho * Wo * kh * kw * Ci * Co, as the forward Conv2D. TF 2.14's registry
    instead writes the count in terms of the input size divided by the strides, i.e. it assumes
    Ho = H / stride: exact for "same" padding, too large for "valid" padding with a kernel larger than
    the stride (16x for the 1x1 -> 4x4 transposed convolution that starts the DCGAN generator G).

    Raises:
      CountError: if a shape is not fully known.
    """
    out_backprop = op.inputs[2].shape
    kernel = op.inputs[1].shape if op.type == "Conv2DBackpropInput" else op.outputs[0].shape
    if not (out_backprop.is_fully_defined() and kernel.is_fully_defined()):
        raise CountError(f"op {op.name!r} ({op.type}) has a shape that is not fully known")
    if op.get_attr("data_format") != b"NHWC" or any(d != 1 for d in op.get_attr("dilations")):
        raise CountError(f"op {op.name!r} ({op.type}): only NHWC, undilated convolutions are counted")
    kh, kw, ci, _ = kernel.as_list()
    return 2 * out_backprop.num_elements() * kh * kw * ci


def live_ops(graph: tf.Graph) -> set:
    """The ops of `graph` that its outputs, control outputs or stateful ops depend on (what TF runs)."""
    roots = [t.op for t in getattr(graph, "outputs", [])] + list(getattr(graph, "control_outputs", []))
    roots += [op for op in graph.get_operations() if op.op_def is not None and op.op_def.is_stateful]
    live, stack = set(), roots
    while stack:
        op = stack.pop()
        if op not in live:
            live.add(op)
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    return live


def concrete_train_step(model: tf.keras.Model, batch) -> tf.types.experimental.ConcreteFunction:
    """`model.train_step` traced once as a tf.function on `batch`'s exact shapes and dtypes (not run)."""
    spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), batch)
    return tf.function(model.train_step).get_concrete_function(spec)


def step_flops(model: tf.keras.Model, batch) -> Count:
    """FLOPs of one `train_step` of the built, compiled `model` on a batch shaped like `batch`."""
    return count_graph(concrete_train_step(model, batch).graph)


# --- gin and stand-ins ---------------------------------------------------------------------------------


def _value(name: str):
    """A bound parameter with macros resolved; None when unbound (`tfdplc.train.config.bound_value`)."""
    from tfdplc.train.config import bound_value

    return bound_value(name)


def _macros() -> Dict[str, object]:
    import gin

    from tfdplc.train import checks

    return checks.ConfigText(gin.config_str()).macros


def _parse(configs: Sequence[str], bindings: Sequence[str]) -> None:
    import gin

    from tfdplc.train import config as gin_config

    gin.clear_config()
    gin_config.parse_gin(configs, bindings)


def _objective_class():
    reference = _value("build_objective.objective")
    if reference is None:
        from tfdplc.train import checks

        raise checks.GinConfigError("the config binds no build_objective.objective")
    return reference.configurable.wrapped


def _first_batch(data_dir: Optional[str], notes: List[str]):
    """The first training batch of the bound pipeline, from tfds mock data if the data set is missing."""
    import tensorflow_datasets as tfds

    from tfdplc import data

    name = _value("input_pipeline.name")
    try:
        return next(iter(data.input_pipeline(split="train", data_dir=data_dir, seed=0)))
    except data.DatasetNotFoundError:
        with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
            batch = next(iter(data.input_pipeline(split="train", data_dir=data_dir, seed=0)))
        note = f"data set {name!r} is not prepared: tfds mock examples of its real features"
        if note not in notes:
            notes.append(note)
        return batch


def _build(batch) -> tf.keras.Model:
    """The objective as tools/train.py builds it: build_objective, one call on an input, compile."""
    from tfdplc.train import build_objective

    tf.keras.utils.set_random_seed(0)
    model = build_objective()
    inputs = batch[0] if isinstance(batch, tuple) else batch
    model(inputs[:1])
    model.compile()
    return model


def _stand_in_bindings(configs, bindings, upstream, data_dir, directory: str, notes: List[str]) -> List[str]:
    """Bindings that point missing upstream artifacts at an untrained upstream run's, and skip CAE metrics."""
    extra = []
    for parameter in ("scaled_lambda.metrics", "scaled_lambda.reference_metrics"):
        path = _value(parameter)
        if isinstance(path, str) and not os.path.exists(path):
            extra += ["scaled_lambda.metrics = None", "scaled_lambda.reference_metrics = None"]
            notes.append(f"{path!r} does not exist: lambda(R) = scaled_lambda.base (no effect on FLOPs)")
            break
    missing = {}
    for parameter in ARTIFACT_PARAMETERS:
        path = _value(parameter)
        if isinstance(path, str) and not os.path.exists(path):
            missing[parameter] = path
    if not missing:
        return extra
    from tfdplc.train import checks

    upstream_configs, upstream_bindings = list(upstream[0]), list(upstream[1])
    if not upstream_configs:
        key = os.path.basename(configs[-1]) if configs else ""
        if key not in UPSTREAM:
            raise checks.GinConfigError(
                f"{', '.join(f'{p} = {v!r}' for p, v in missing.items())} does not exist and "
                f"{key!r} has no default upstream config: pass --upstream_gin_config (the config that writes "
                "it) or bind the parameter to an existing file."
            )
        file_name, fixed = UPSTREAM[key]
        upstream_configs = [os.path.join(os.path.dirname(configs[-1]), file_name)]
        upstream_bindings = list(fixed) + upstream_bindings
    shared = {k: v for k, v in _macros().items() if k in SHAPE_MACROS}
    _parse(upstream_configs, upstream_bindings)
    own = _macros()
    forwarded = [f"{k} = {v!r}" for k, v in shared.items() if k in own and own[k] != v]
    _parse(upstream_configs, upstream_bindings + forwarded)
    _build(_first_batch(data_dir, notes)).save_artifacts(directory)
    for parameter, path in missing.items():
        stand_in = (
            directory if parameter.endswith("workdir") else os.path.join(directory, os.path.basename(path))
        )
        extra.append(f"{parameter} = {stand_in!r}")
        notes.append(
            f"{parameter} = {path!r} does not exist: an UNTRAINED run of "
            f"{' '.join(upstream_configs + [repr(b) for b in upstream_bindings + forwarded])} stands in"
        )
    _parse(configs, list(bindings))
    return extra


@dataclasses.dataclass
class Report:
    """What `measure` found: the objective, the batch, the count and the configs' step count."""

    objective: str
    batch_shapes: list
    images_per_step: int
    total_steps: int
    count: Count
    notes: List[str]
    model: tf.keras.Model

    @property
    def flops_per_image(self) -> float:
        """FLOPs per image the pipeline delivers in one step."""
        return self.count.flops / self.images_per_step

    @property
    def total_flops(self) -> float:
        """FLOPs of all `train.total_steps` training steps (validation not included)."""
        return self.count.flops * self.total_steps


def measure(
    configs: Sequence[str],
    bindings: Sequence[str] = (),
    data_dir: Optional[str] = None,
    upstream_configs: Sequence[str] = (),
    upstream_bindings: Sequence[str] = (),
) -> Report:
    """Builds the configured objective, traces one train step and counts its FLOPs.

    Args:
      configs: gin config files.
      bindings: gin bindings after them.
      data_dir: tfds data folder (None: tfds' own); a data set missing there is mocked.
      upstream_configs: config of the run whose missing artifacts the config loads (default: `UPSTREAM`).
      upstream_bindings: bindings for it.

    Returns:
      The `Report`.

    Raises:
      GinConfigError / FileNotFoundError: on a bad config or binding.
      CountError: if the graph cannot be counted.
    """
    notes: List[str] = []
    _parse(configs, bindings)
    with tempfile.TemporaryDirectory(prefix="tfdplc_flops_") as directory:
        extra = _stand_in_bindings(
            configs, bindings, (upstream_configs, upstream_bindings), data_dir, directory, notes
        )
        if extra:
            _parse(configs, list(bindings) + extra)
        objective = _objective_class().__name__
        batch = _first_batch(data_dir, notes)
        model = _build(batch)
        count = step_flops(model, batch)
    leading = tf.nest.flatten(batch)[0]
    return Report(
        objective=objective,
        batch_shapes=[tuple(t.shape) for t in tf.nest.flatten(batch)],
        images_per_step=int(leading.shape[0]),
        total_steps=int(_value("train.total_steps")),
        count=count,
        notes=notes,
        model=model,
    )


def projected_hours(report: Report, peak_tflops: float, mfu: float, op_overhead_us: float) -> float:
    """Hours for `train.total_steps` steps: max(FLOPs / (peak x mfu), ops x overhead) per step.

    A projection from assumptions (the utilization, the per-op overhead), not a measurement.
    """
    compute = report.count.flops / (peak_tflops * 1e12 * mfu)
    floor = report.count.ops * op_overhead_us * 1e-6
    return max(compute, floor) * report.total_steps / 3600.0


def _top(counter: collections.Counter, n: int) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in counter.most_common(n)) or "-"


def run(
    configs: Sequence[str],
    bindings: Sequence[str] = (),
    data_dir: Optional[str] = None,
    upstream_configs: Sequence[str] = (),
    upstream_bindings: Sequence[str] = (),
    top: int = 8,
    mfu: float = 0.3,
    op_overhead_us: float = 5.0,
) -> int:
    """Measures and prints one config's count (what the command line does) and returns the exit status.

    Args:
      configs: gin config files.
      bindings: gin bindings after them.
      data_dir: tfds data folder, see `measure`.
      upstream_configs: upstream config, see `measure`.
      upstream_bindings: bindings for it.
      top: op types listed in the breakdowns.
      mfu: assumed model FLOPs utilization of the projection.
      op_overhead_us: assumed runtime cost per executed op, in microseconds.

    Returns:
      0 done, 2 bad config or binding (one line on stderr), 3 the graph cannot be counted.
    """
    from tfdplc.train import checks

    try:
        report = measure(configs, bindings, data_dir, upstream_configs, upstream_bindings)
    except (checks.GinConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except CountError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    count = report.count
    print(f"config: {' '.join(configs)} {' '.join(repr(b) for b in bindings)}".rstrip())
    print(f"objective: {report.objective}; batch: {' + '.join(str(s) for s in report.batch_shapes)}")
    for note in report.notes:
        print(f"STAND-IN: {note}")
    for name, trips, flops in count.loops:
        print(f"loop {name}: {trips} trips x {flops:.4g} FLOPs")
    print(
        f"FLOPs per train step: {count.flops:.4g} ({count.flops / 1e9:.2f} GFLOP; the profiler's total over "
        f"the traced graph is {count.profiled:.4g}, with the ops TF prunes as unused)"
    )
    print(f"FLOPs per image: {report.flops_per_image:.4g} ({report.images_per_step} images per step)")
    print(
        f"train.total_steps: {report.total_steps}; total: {report.total_flops:.4g} FLOPs "
        f"({report.total_flops / 1e15:.3f} PFLOP, validation not included)"
    )
    print(f"ops executed per train step (device kernels, loop bodies per trip): {count.ops}")
    print(f"counted, by op type: {_top(count.by_type, top)}")
    print(f"NOT counted (no FLOP count registered; elements written): {_top(count.uncounted, top)}")
    if count.unknown_shape:
        print(
            f"NOT counted (element-wise, shape unknown at trace time; ops): {_top(count.unknown_shape, top)}"
        )
    uncounted = sum(count.uncounted.values())
    print(f"uncounted elements / counted FLOPs: {uncounted / max(count.flops, 1):.2%}")
    hours = [projected_hours(report, peak, mfu, op_overhead_us) for peak in PEAK_TFLOPS.values()]
    print(
        f"projected hours on one GPU (a PROJECTION, not a measurement: FLOPs / (peak x MFU {mfu:g}), "
        f"floored at {op_overhead_us:g} us per executed op): "
        + ", ".join(f"{gpu} {h:.3g}" for gpu, h in zip(PEAK_TFLOPS, hours))
    )
    print(
        "| config | objective | images / step | GFLOP / step | MFLOP / image | ops / step | steps | PFLOP |"
        + "".join(f" h {gpu} |" for gpu in PEAK_TFLOPS)
    )
    print(
        f"| {' '.join(os.path.basename(c) for c in configs)} | {report.objective} | "
        f"{report.images_per_step} | {count.flops / 1e9:.1f} | {report.flops_per_image / 1e6:.1f} | "
        f"{count.ops} | {report.total_steps} | {report.total_flops / 1e15:.2f} |"
        + "".join(f" {h:.3g} |" for h in hours)
    )
    return 0


def main(argv):
    del argv
    return run(
        FLAGS.gin_config,
        FLAGS.gin_bindings,
        FLAGS.data_dir,
        FLAGS.upstream_gin_config,
        FLAGS.upstream_gin_bindings,
        FLAGS.top,
        FLAGS.mfu,
        FLAGS.op_overhead_us,
    )


if __name__ == "__main__":
    _define_flags()
    app.run(main)

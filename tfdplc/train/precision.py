"""Mixed precision for the trainer (`train.precision`).

Under `mixed_bfloat16` or `mixed_float16` the networks compute in bfloat16 / float16 while their variables,
checkpoints and exports stay float32 (Keras mixed-precision policies). What stays float32 under every
policy, and where:
  - the quantizers and the tfc entropy models (`FLOAT32_LAYERS`, set here before they are built): their
    centres, dithers, likelihoods and range-coding tables are exact only in float32;
  - every network output an objective computes with (`Objective.float32`): the distortions, MMD kernel
    sums, gradient penalties (interpolates and input gradients), critic scores, losses and metrics of the
    objectives are float32 tensors;
  - frozen networks loaded from float32 stage-1 files (DPLC's G*, PerceptualG2's E, ...), unless
    `prepare_objective.frozen_in_policy` is set (faster, and it changes results; see `prepare_objective`);
  - under `mixed_float16`, each optimizer is a `tf.keras.mixed_precision.LossScaleOptimizer` (dynamic loss
    scaling, `Objective.gradients`), so small float16 gradients do not underflow.
The policy is global in Keras: `policy` sets it for the models built inside and restores the previous one
on exit, so nothing leaks into the rest of the process.
"""

import contextlib
from typing import Iterator

import gin
import tensorflow as tf

from tfdplc import cpu
from tfdplc.layers import bottlenecks, quantizers

__all__ = [
    "FLOAT32_LAYERS",
    "PRECISIONS",
    "check_precision",
    "in_global_policy",
    "policy",
    "prepare_objective",
]

#: The precisions `train.precision` accepts (Keras policy names).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

#: Layers that compute in float32 under any policy: quantizers and tfc entropy models.
FLOAT32_LAYERS = (
    quantizers.ScalarQuantizer,
    quantizers.UniversalQuantizer,
    bottlenecks.EntropyBottleneck,
    bottlenecks.UniversalBottleneck,
)


def check_precision(precision: str) -> str:
    """Returns `precision` if it is one of `PRECISIONS`.

    Raises:
      ValueError: naming the accepted values otherwise.
    """
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(
            f"train.precision must be one of {', '.join(repr(p) for p in PRECISIONS)}, got {precision!r}."
        )
    return precision


@contextlib.contextmanager
def policy(precision: str) -> Iterator[None]:
    """Sets Keras' global dtype policy to `precision` inside the block, then restores the previous one.

    Warns once per process if `precision` is mixed_bfloat16 on a CPU without bfloat16 instructions, where
    TensorFlow emulates it (`tfdplc.cpu.warn_if_bf16_emulated`).

    Raises:
      ValueError: if `precision` is not one of `PRECISIONS`.
      RuntimeError: if `precision` is mixed_bfloat16 on a CPU whose oneDNN is capped below the ISA TensorFlow
        sends bfloat16 ops to (`tfdplc.cpu.bf16_blocked_by_isa_cap`): the run would crash in its first step.
    """
    check_precision(precision)
    if precision == "mixed_bfloat16" and not tf.config.list_physical_devices("GPU"):
        blocked = cpu.bf16_blocked_by_isa_cap()
        if blocked:
            raise RuntimeError(f"train.precision = 'mixed_bfloat16' cannot run here: {blocked}")
        cpu.warn_if_bf16_emulated()  # once per process, on CPUs without bfloat16 instructions
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def _frozen_float32_network(value) -> bool:
    """Whether `value` is a frozen network whose layers (inputs aside) all compute in float32."""
    if not isinstance(value, tf.keras.Model) or value.trainable:
        return False
    layers = [layer for layer in value.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
    return bool(layers) and all(layer.compute_dtype == "float32" for layer in layers)


def in_global_policy(model: tf.keras.Model) -> tf.keras.Model:
    """A copy of a functional or sequential `model` whose layers compute in Keras' global policy.

    A model loaded from a file keeps the float32 policy it was saved with, and Keras casts variables to the
    compute dtype only if they were created under a mixed policy; so the model is rebuilt from its config
    with every layer's dtype set to the global policy, and given the same (float32) weights.

    Args:
      model: a built functional or sequential Keras model.

    Returns:
      `model` itself under the float32 policy, otherwise the copy (with `model`'s `trainable`).
    """
    policy_name = tf.keras.mixed_precision.global_policy().name
    if policy_name == "float32":
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer":
            layer["config"]["dtype"] = policy_name
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    copy.trainable = model.trainable
    return copy


@gin.configurable(module="tfdplc.train", denylist=["objective", "precision"])
def prepare_objective(
    objective: tf.keras.Model, precision: str, frozen_in_policy: bool = False
) -> tf.keras.Model:
    """Adapts an objective built under `policy(precision)` before its first call and `compile`.

    Sets the numerically sensitive layers (`FLOAT32_LAYERS`) to float32 and, under `mixed_float16`, wraps
    each optimizer the objective holds as an attribute in a `LossScaleOptimizer` (one wrapper per optimizer
    object, so an optimizer shared by two attributes stays shared). With `frozen_in_policy`, it also
    rebuilds the frozen networks it holds as attributes that were loaded from float32 files (DPLC's G*) in
    the policy's dtype (`in_global_policy`); by default they compute in float32, as saved. Networks an
    objective loads only at their first use (PerceptualG2's E, the separate baseline's restoration network,
    the decomposition's source f and g) are not there yet, and stay float32 either way.

    `frozen_in_policy` is off by default because it changes results, not only speed: on 1000-step mnist5k
    DPLC runs (K = 2, seeds 0 and 1) under mixed_bfloat16, G* in bfloat16 ended with FD 183 / 177 against
    223-242 for float32 and 219-251 for mixed_bfloat16 with G* in float32, at the same MSE (within 2%);
    it makes DPLC stage 2 1.57x faster than float32 instead of 1.16x (results/precision/README.md).

    Args:
      objective: the objective, built but not yet called.
      precision: one of `PRECISIONS`.
      frozen_in_policy: whether frozen networks loaded from float32 files compute in the policy's dtype
        (gin: `prepare_objective.frozen_in_policy = True`).

    Returns:
      The same objective.
    """
    check_precision(precision)
    if precision == "float32":
        return objective
    for name, value in list(vars(objective).items()):
        if frozen_in_policy and _frozen_float32_network(value):
            # A frozen network loaded from a float32 stage-1 file (DPLC's G*) computes in the policy's
            # dtype like the networks built under it; its outputs are cast to float32 where used
            # (`Objective.float32`).
            setattr(objective, name, in_global_policy(value))
    for layer in objective._flatten_layers(include_self=False, recursive=True):  # noqa: SLF001
        if isinstance(layer, FLOAT32_LAYERS):
            # Keras' layer constructors set the policy the same way; the layer's variables are float32
            # under every policy, so this changes only the dtype it computes in.
            layer._set_dtype_policy("float32")  # noqa: SLF001
    if precision == "mixed_float16":
        wrapped = {}
        for name, value in list(vars(objective).items()):
            if isinstance(value, tf.keras.optimizers.Optimizer) and not isinstance(
                value, tf.keras.mixed_precision.LossScaleOptimizer
            ):
                if id(value) not in wrapped:
                    wrapped[id(value)] = tf.keras.mixed_precision.LossScaleOptimizer(value)
                setattr(objective, name, wrapped[id(value)])
    return objective

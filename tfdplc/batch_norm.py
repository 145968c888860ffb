"""Re-estimation of BatchNormalization moving statistics after training (issue 25, DESIGN.md "Scales").

Not in Tschannen et al. 2018: the authors never call `.eval()`, so their E and B always normalise with
the statistics of the batch at hand, and the moving statistics are never used. A codec encodes and
decodes one image at a time in inference mode, where every batch norm uses its moving mean and variance
instead: exponential averages of batch statistics that lag the weights they were computed with (with
Keras' momentum 0.99 they average the last few hundred steps of a run whose weights kept moving). On
DPLC stage 2 this put the deployed B(E(X)) 11-16 null sd away from P_Z while the batch-statistics mode
met the constraint (results/dplc/calibration_plan.md).

`recalibrate` sets every given layer's moving mean and variance to the population statistics of its
input over a data set, with the networks in inference mode, layer by layer in the order the forward
pass calls them: layer j's input is computed with layers 1..j-1 already recalibrated, so each moving
statistic is the exact mean / variance of what that layer sees in the deployed network. The statistics
are accumulated over mini-batches in float64 (Chan et al.'s pairwise update), so the result does not
depend on the batch size. It equals what one training-mode pass over the whole set as ONE batch with
momentum 0 would assign (upstream layers then normalise with the same full-set statistics), without
holding the whole set's activations in memory.

Variance convention: the biased variance (divided by the number of values, ddof = 0), what Keras'
BatchNormalization assigns from a batch (its fused kernel's Bessel correction is removed again,
`_maybe_add_or_remove_bessels_correction`), and what it divides by in training mode. Trainable weights
are never touched.
"""

from typing import Callable, Dict, Iterable, List, Sequence

import numpy as np
import tensorflow as tf

__all__ = ["batch_norm_layers", "population_statistics", "recalibrate"]


class _Stop(Exception):
    """Ends a forward pass early, once the layer being recalibrated has seen its input."""


def batch_norm_layers(networks: Sequence[tf.keras.Model]) -> List[tf.keras.layers.BatchNormalization]:
    """Every BatchNormalization layer inside `networks` (nested models included), each once.

    Args:
      networks: Keras models or layers.

    Returns:
      The layers, in the order `submodules` lists them (not necessarily the call order).
    """
    layers, seen = [], set()
    for network in networks:
        for layer in [network, *network.submodules]:
            if isinstance(layer, tf.keras.layers.BatchNormalization) and id(layer) not in seen:
                seen.add(id(layer))
                layers.append(layer)
    return layers


def _check_layer(layer) -> None:
    if not layer.built:
        raise ValueError(f"recalibrate: {layer.name} is not built (call the networks once first).")
    if getattr(layer, "renorm", False) or getattr(layer, "virtual_batch_size", None):
        raise ValueError(
            f"recalibrate: {layer.name} uses batch renormalisation or virtual batches, whose inference "
            "statistics are not a population mean and variance."
        )


class _Moments:
    """Running count, mean and sum of squared deviations per parameter entry (float64, Chan's update)."""

    def __init__(self, layer):
        self.axes = list(layer.axis)  # Keras stores the normalised axes after `build`
        self.shape = tuple(layer.moving_mean.shape)
        self.count, self.mean, self.m2 = 0, None, None

    def add(self, inputs) -> None:
        x = np.asarray(inputs, np.float64)
        axes = sorted(a % x.ndim for a in self.axes)
        # Parameter axes last, in order, then one row per value that shares a parameter.
        rows = np.transpose(x, [a for a in range(x.ndim) if a not in axes] + axes)
        rows = rows.reshape(-1, int(np.prod(self.shape)))
        n, mean = len(rows), rows.mean(axis=0)
        m2 = ((rows - mean) ** 2).sum(axis=0)
        if self.count == 0:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    def result(self):
        if self.count == 0:
            raise ValueError("recalibrate: a batch-norm layer saw no input (no batches, or not on the path).")
        return self.mean.reshape(self.shape), (self.m2 / self.count).reshape(self.shape), self.count


class _Hook:
    """Replaces `layer.call` (eager forward passes only) to observe the layer's input."""

    def __init__(self, layer, on_input: Callable[[tf.Tensor], None]):
        self.layer, self.on_input = layer, on_input

    def __enter__(self):
        original = self.layer.call

        def call(inputs, *args, **kwargs):
            self.on_input(inputs)
            return original(inputs, *args, **kwargs)

        self.layer.call = call
        return self

    def __exit__(self, *exc):
        del self.layer.call  # back to the class's method
        return False


def _call_order(layers, forward, first_batch) -> List[int]:
    """Indices of `layers` in the order one forward pass calls them; each must be called exactly once."""
    order = []
    hooks = [_Hook(layer, lambda _, i=i: order.append(i)) for i, layer in enumerate(layers)]
    for hook in hooks:
        hook.__enter__()
    try:
        forward(first_batch)
    finally:
        for hook in hooks:
            hook.__exit__()
    if sorted(order) != list(range(len(layers))):
        names = [layers[i].name for i in order]
        missing = [layer.name for i, layer in enumerate(layers) if i not in order]
        raise ValueError(
            f"recalibrate: every batch-norm layer must run exactly once per forward pass; calls {names}, "
            f"never called {missing} (a layer shared between calls, or not on the forward path)."
        )
    return order


def population_statistics(layer, forward, batches: Callable[[], Iterable]) -> tuple:
    """Mean and biased variance of `layer`'s input over all batches, each run through `forward`.

    The pass over a batch stops as soon as `layer` has seen its input.

    Args:
      layer: a built BatchNormalization layer on `forward`'s path.
      forward: batch -> anything; runs the networks eagerly in inference mode.
      batches: a callable returning a fresh iterable of batches.

    Returns:
      (mean, variance, count): float64 arrays of the moving statistics' shape, and the number of values
      behind each entry.
    """
    moments = _Moments(layer)

    def observe(inputs):
        moments.add(inputs)
        raise _Stop

    with _Hook(layer, observe):
        for batch in batches():
            try:
                forward(batch)
            except _Stop:
                pass
    return moments.result()


def recalibrate(
    layers: Sequence[tf.keras.layers.BatchNormalization],
    forward: Callable[[object], object],
    batches: Callable[[], Iterable],
) -> List[Dict[str, object]]:
    """Sets each layer's moving mean / variance to its input's population statistics (module docstring).

    Layer by layer in call order, so each layer's input is computed with the layers before it already
    recalibrated. Only `moving_mean` and `moving_variance` change.

    Args:
      layers: the batch-norm layers to recalibrate (e.g. `batch_norm_layers([encoder, mapping])`), built.
      forward: batch -> anything; must run the networks EAGERLY (not inside a `tf.function`) and in
        inference mode (`training=False`), as the deployed model runs; every layer once per call.
      batches: a callable returning a fresh iterable over the data set (called once per layer, plus once
        to find the call order); every call must yield the same batches.

    Returns:
      One record per layer, in call order: name, count (values per statistic), mean_change and
      variance_change (largest absolute change of the moving statistics).

    Raises:
      ValueError: if `layers` is empty, a layer is unbuilt or uses renorm / virtual batches, the data set
        is empty, or a layer is not called exactly once per forward pass.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("recalibrate: no batch-norm layers given (per-example normalisation needs none).")
    for layer in layers:
        _check_layer(layer)
    first = next(iter(batches()), None)
    if first is None:
        raise ValueError("recalibrate: the data set is empty.")
    records = []
    for index in _call_order(layers, forward, first):
        layer = layers[index]
        mean, variance, count = population_statistics(layer, forward, batches)
        old_mean, old_variance = layer.moving_mean.numpy(), layer.moving_variance.numpy()
        layer.moving_mean.assign(mean.astype(old_mean.dtype))
        layer.moving_variance.assign(variance.astype(old_variance.dtype))
        records.append(
            {
                "name": layer.name,
                "count": int(count),
                "mean_change": float(np.abs(mean - old_mean).max()),
                "variance_change": float(np.abs(variance - old_variance).max()),
            }
        )
    return records

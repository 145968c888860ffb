"""tfdplc.batch_norm: moving statistics re-estimated layer by layer, against an independent NumPy forward."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from tfdplc import batch_norm

EPS = 1e-3  # Keras' default BatchNormalization epsilon


def _tiny_model(seed=0):
    """x (2, 3, 2) -> conv 1x1 -> bn (fused, 4D) -> relu -> flatten -> dense 4 -> bn (2D, not fused).

    gamma / beta / moving statistics are far from their initial 1 / 0, so an upstream layer left at its
    old statistics changes what the next layer sees.
    """
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((2, 3, 2))
    h = tf.keras.layers.Conv2D(3, 1, name="conv")(inputs)
    h = tf.keras.layers.BatchNormalization(name="bn_conv")(h)
    h = tf.keras.layers.Flatten()(tf.keras.layers.ReLU()(h))
    h = tf.keras.layers.Dense(4, name="dense")(h)
    model = tf.keras.Model(inputs, tf.keras.layers.BatchNormalization(name="bn_dense")(h))
    rng = np.random.default_rng(seed)
    for name in ("bn_conv", "bn_dense"):
        layer = model.get_layer(name)
        shape = layer.gamma.shape
        layer.gamma.assign(rng.uniform(0.5, 2.0, shape).astype(np.float32))
        layer.beta.assign(rng.normal(0.0, 1.0, shape).astype(np.float32))
        layer.moving_mean.assign(rng.normal(0.0, 2.0, shape).astype(np.float32))
        layer.moving_variance.assign(rng.uniform(0.1, 5.0, shape).astype(np.float32))
    return model


def _data(n=10, seed=1):
    return (np.random.default_rng(seed).normal(1.0, 2.0, (n, 2, 3, 2))).astype(np.float32)


def _batches(x, size):
    return lambda: (x[i : i + size] for i in range(0, len(x), size))


def _numpy_population_statistics(model, x):
    """Each bn's input mean / biased variance over x, bn_conv first, bn_dense's input computed with
    bn_conv already normalising by ITS population statistics (float64 NumPy forward)."""
    weights = {w.name: w.numpy().astype(np.float64) for w in model.weights}
    conv = x.astype(np.float64) @ weights["conv/kernel:0"][0, 0] + weights["conv/bias:0"]  # 1x1 conv
    mean1 = conv.mean(axis=(0, 1, 2))
    var1 = conv.var(axis=(0, 1, 2))  # ddof 0: what Keras assigns from a batch
    normalised = weights["bn_conv/gamma:0"] * (conv - mean1) / np.sqrt(var1 + EPS) + weights["bn_conv/beta:0"]
    dense = (
        np.maximum(normalised, 0.0).reshape(len(x), -1) @ weights["dense/kernel:0"] + weights["dense/bias:0"]
    )
    return {"bn_conv": (mean1, var1), "bn_dense": (dense.mean(axis=0), dense.var(axis=0))}


def test_moving_statistics_are_the_population_statistics_layer_by_layer():
    model, x = _tiny_model(), _data()
    layers = batch_norm.batch_norm_layers([model])
    assert sorted(layer.name for layer in layers) == ["bn_conv", "bn_dense"]
    forward = functools.partial(model, training=False)
    records = batch_norm.recalibrate(layers, forward, _batches(x, 3))  # batches 3, 3, 3, 1
    expected = _numpy_population_statistics(model, x)
    assert [r["name"] for r in records] == ["bn_conv", "bn_dense"]  # call order, not `submodules` order
    assert [r["count"] for r in records] == [60, 10]  # 10 images x 2 x 3 positions; 10 images
    for name, (mean, variance) in expected.items():
        layer = model.get_layer(name)
        # float32 forward of O(1-10) values through <= 18-term sums: ~1e-6 relative. The wrong variance
        # (ddof 1) is off by 60/59 or 10/9, the last batch alone or stale upstream statistics by far more.
        np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layer.moving_variance.numpy(), variance, rtol=1e-4)
    assert not np.allclose(expected["bn_dense"][1] * 10 / 9, expected["bn_dense"][1], rtol=1e-4)


def _statistics(model):
    layers = batch_norm.batch_norm_layers([model])
    return [v.numpy().copy() for layer in layers for v in (layer.moving_mean, layer.moving_variance)]


def test_result_does_not_depend_on_the_batch_size_and_is_idempotent():
    x = _data(12)
    results = []
    for size in (12, 5, 1):
        model = _tiny_model()
        batch_norm.recalibrate(
            batch_norm.batch_norm_layers([model]), functools.partial(model, training=False), _batches(x, size)
        )
        results.append(_statistics(model))
    # Again on the last model: each layer's statistics depend on the weights and the data only.
    batch_norm.recalibrate(
        batch_norm.batch_norm_layers([model]), functools.partial(model, training=False), _batches(x, 5)
    )
    results.append(_statistics(model))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_only_the_moving_statistics_change():
    model, x = _tiny_model(), _data()
    moving = {
        id(v)
        for layer in batch_norm.batch_norm_layers([model])
        for v in (layer.moving_mean, layer.moving_variance)
    }
    before = {id(v): v.numpy().copy() for v in model.variables}
    batch_norm.recalibrate(
        batch_norm.batch_norm_layers([model]), functools.partial(model, training=False), _batches(x, 4)
    )
    for v in model.variables:
        changed = not np.array_equal(before[id(v)], v.numpy())
        assert changed == (id(v) in moving), v.name
    assert "call" not in vars(model.get_layer("bn_conv"))  # the hooks are gone


def test_clear_errors():
    model, x = _tiny_model(), _data()
    layers = batch_norm.batch_norm_layers([model])
    forward = functools.partial(model, training=False)
    with pytest.raises(ValueError, match="no batch-norm layers"):
        batch_norm.recalibrate([], forward, _batches(x, 3))
    with pytest.raises(ValueError, match="empty"):
        batch_norm.recalibrate(layers, forward, lambda: iter(()))
    stranger = tf.keras.layers.BatchNormalization()
    stranger.build((None, 4))
    with pytest.raises(ValueError, match="never called"):
        batch_norm.recalibrate(layers + [stranger], forward, _batches(x, 3))
    with pytest.raises(ValueError, match="not built"):
        batch_norm.recalibrate([tf.keras.layers.BatchNormalization()], forward, _batches(x, 3))
    renorm = tf.keras.layers.BatchNormalization(renorm=True)
    renorm.build((None, 4))
    with pytest.raises(ValueError, match="renormalisation"):
        batch_norm.recalibrate([renorm], forward, _batches(x, 3))

"""Tests of the "+n" noise input (tfdplc.layers.noise)."""

import json
import os
import subprocess
import sys
import textwrap

import gin
import numpy as np
import pytest
import tensorflow as tf

from tfdplc.layers.noise import NoiseInput, WithNoiseInput

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)


def test_feature_map_reshape_rule_and_concatenation():
    layer = NoiseInput(32, seed=1)
    features = tf.random.uniform((3, 4, 4, 5))
    noise = tf.reshape(tf.range(3 * 32, dtype=tf.float32), (3, 32))
    out = layer(features, noise=noise)
    assert out.shape == (3, 4, 4, 5 + 2)
    np.testing.assert_array_equal(out[..., :5], features)
    # Row-major: position (i, j) holds noise entries 2 * (4 * i + j) and 2 * (4 * i + j) + 1.
    np.testing.assert_array_equal(out[..., 5:], tf.reshape(noise, (3, 4, 4, 2)))
    np.testing.assert_array_equal(out[0, 1, 2, 5:], [12.0, 13.0])


def test_vector_input_appends_m_entries():
    layer = NoiseInput(6, seed=1)
    code = tf.ones((2, 4))
    out = layer(code)
    assert out.shape == (2, 10)
    np.testing.assert_array_equal(out[:, :4], code)
    noise = tf.fill((2, 6), 0.25)
    np.testing.assert_array_equal(layer(code, noise=noise)[:, 4:], noise)


def test_zero_channel_input_gives_the_noise_alone():
    layer = NoiseInput(16, seed=2)
    out = layer(tf.zeros((5, 2, 2, 0)))
    assert out.shape == (5, 2, 2, 4)
    noise = tf.random.uniform((5, 16))
    np.testing.assert_array_equal(layer(tf.zeros((5, 2, 2, 0)), noise=noise), tf.reshape(noise, (5, 2, 2, 4)))
    # Also inside a functional model (rate-0 decoder input).
    inputs = tf.keras.Input((4, 4, 0))
    model = tf.keras.Model(inputs, NoiseInput(32, seed=3)(inputs))
    assert model.output_shape == (None, 4, 4, 2)
    assert model(tf.zeros((2, 4, 4, 0))).shape == (2, 4, 4, 2)


def test_indivisible_m_is_a_clear_error():
    with pytest.raises(ValueError, match="divisible by h\\*w=16"):
        NoiseInput(10)(tf.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="divisible"):
        NoiseInput(6)(tf.keras.Input((2, 2, 3)))


@pytest.mark.parametrize(
    "kwargs",
    [{"m": 0}, {"m": 2.0}, {"m": True}, {"m": 4, "distribution": "laplace"}, {"m": 4, "seed": "1"}],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        NoiseInput(**kwargs)


def test_bad_inputs_raise():
    layer = NoiseInput(8, seed=0)
    with pytest.raises(ValueError, match="feature map"):
        layer(tf.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="m=8 entries"):
        layer(tf.zeros((2, 3)), noise=tf.zeros((2, 7)))


def test_uniform_noise_lies_in_unit_interval_with_uniform_moments():
    noise = NoiseInput(1000, seed=4)(tf.zeros((50, 0)))
    values = noise.numpy()
    assert values.min() >= 0.0 and values.max() < 1.0
    assert abs(values.mean() - 0.5) < 0.01
    assert abs(values.std() - np.sqrt(1 / 12)) < 0.01


def test_normal_noise_is_standard_gaussian():
    values = NoiseInput(1000, distribution="normal", seed=4)(tf.zeros((50, 0))).numpy()
    assert values.min() < 0.0
    assert abs(values.mean()) < 0.02
    assert abs(values.std() - 1.0) < 0.02


def test_seeded_layers_reproduce_and_successive_draws_differ():
    x = tf.zeros((4, 2, 2, 1))
    first, second = NoiseInput(8, seed=11), NoiseInput(8, seed=11)
    a1, a2 = first(x), first(x)
    b1, b2 = second(x), second(x)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.allclose(a1, a2)
    assert not np.allclose(NoiseInput(8, seed=12)(x), a1)
    # Unseeded layers draw from non-deterministic state.
    assert not np.allclose(NoiseInput(8)(x), NoiseInput(8)(x))


def test_works_in_xla_compiled_functions():
    x = tf.ones((3, 2, 2, 1))

    def compiled(layer):
        return tf.function(lambda t: layer(t), jit_compile=True)

    run_a, run_b = compiled(NoiseInput(12, seed=5)), compiled(NoiseInput(12, seed=5))
    out1, out2 = run_a(x), run_a(x)
    assert out1.shape == (3, 2, 2, 4)
    np.testing.assert_array_equal(out1[..., :1], x[..., :1])
    noise = out1[..., 1:].numpy()
    assert noise.min() >= 0.0 and noise.max() < 1.0
    assert not np.allclose(out1, out2)  # the generator state advances under XLA too
    np.testing.assert_array_equal(run_b(x), out1)  # and is reproducible from the seed
    explicit = tf.fill((3, 12), 0.5)
    fixed_layer = NoiseInput(12, seed=0)
    fixed = tf.function(lambda t, n: fixed_layer(t, noise=n), jit_compile=True)
    np.testing.assert_array_equal(fixed(x, explicit)[..., 1:], tf.fill((3, 2, 2, 3), 0.5))


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfdplc.layers.noise import NoiseInput

    tf.keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {"replicas": strategy.num_replicas_in_sync}
    with strategy.scope():
        inputs = tf.keras.Input((2, 2, 1))
        noise_layer = NoiseInput(8, seed=3)
        model = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(noise_layer(inputs)))
        model.compile(tf.keras.optimizers.SGD(0.01), "mse")

    @tf.function
    def draw(x):
        return strategy.run(noise_layer, args=(x,))

    batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(tf.zeros((4, 2, 2, 1))))
    per_replica = strategy.experimental_local_results(draw(next(iter(batches))))
    noise = [p.numpy()[..., 1:] for p in per_replica]
    results["shapes"] = [list(p.shape) for p in per_replica]
    results["in_range"] = bool(all(n.min() >= 0 and n.max() < 1 for n in noise))
    results["replicas_differ"] = bool(not np.allclose(noise[0], noise[1]))
    history = model.fit(tf.ones((8, 2, 2, 1)), tf.zeros((8, 2, 2, 1)), batch_size=4, epochs=2, verbose=0)
    results["losses"] = [float(v) for v in history.history["loss"]]
    print("RESULT" + json.dumps(results))
    """
)


def test_works_under_mirrored_strategy_with_two_logical_cpus():
    # Logical devices must be configured before TF initialises its devices: use a fresh interpreter.
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, timeout=300, env=env
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    results = json.loads(lines[-1][len("RESULT") :])
    assert results["replicas"] == 2
    assert results["shapes"] == [[2, 2, 2, 3], [2, 2, 2, 3]]  # 4 examples split over 2 replicas
    assert results["in_range"]
    assert results["replicas_differ"]  # each replica draws its own noise
    assert all(np.isfinite(results["losses"]))


def _noisy_model():
    inputs = tf.keras.Input((2, 2, 3))
    hidden = NoiseInput(8, seed=21, name="noise")(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Conv2D(2, 1)(hidden))


@pytest.mark.parametrize("file_name", ["saved_model", "model.keras"])
def test_model_with_noise_input_saves_and_reloads(tmp_path, file_name):
    model = _noisy_model()
    x = tf.random.uniform((3, 2, 2, 3))
    model(x)  # advance the generator: its state must be saved, not re-seeded
    path = str(tmp_path / file_name)
    model.save(path)
    reloaded = tf.keras.models.load_model(path)
    np.testing.assert_allclose(reloaded(x), model(x), rtol=1e-6, atol=1e-6)  # same weights, same next noise
    layer = reloaded.get_layer("noise")
    assert isinstance(layer, NoiseInput)
    assert (layer.m, layer.distribution, layer.seed) == (8, "uniform", 21)


def test_get_config_round_trip():
    layer = NoiseInput(12, distribution="normal", seed=9, name="n")
    clone = NoiseInput.from_config(layer.get_config())
    assert (clone.m, clone.distribution, clone.seed, clone.name) == (12, "normal", 9, "n")
    x = tf.zeros((2, 3))
    np.testing.assert_array_equal(clone(x), layer(x))


def test_with_noise_input_model_passes_noise_through(tmp_path):
    trunk_input = tf.keras.Input((5,))
    trunk = tf.keras.Model(trunk_input, tf.keras.layers.Dense(1)(trunk_input))
    model = WithNoiseInput(NoiseInput(3, seed=1), trunk)
    code = tf.ones((4, 2))
    noise = tf.random.uniform((4, 3))
    np.testing.assert_allclose(model(code, noise=noise), trunk(tf.concat([code, noise], -1)), rtol=1e-6)
    assert not np.allclose(model(code), model(code))
    clone = WithNoiseInput.from_config(model.get_config())
    assert clone.noise_layer.m == 3 and clone.trunk.output_shape == (None, 1)
    with pytest.raises(TypeError):
        WithNoiseInput(tf.keras.layers.Dense(2), trunk)


def test_gin_configurable():
    try:
        gin.parse_config("tfdplc.layers.NoiseInput.distribution = 'normal'")
        assert NoiseInput(4).distribution == "normal"
    finally:
        gin.clear_config()
    assert NoiseInput(4).distribution == "uniform"

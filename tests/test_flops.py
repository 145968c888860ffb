"""tools/flops.py: the profiler's count of a traced train step against analytic counts of conv/dense nets.

Analytic convention (the profiler's, one multiply-add = 2 FLOPs): a convolution's forward pass costs
2 * B * Ho * Wo * kh * kw * Cin * Cout, a transposed convolution's 2 * B * Hi * Wi * kh * kw * Cin * Cout,
a dense layer's 2 * B * in * out; its kernel gradient and its input gradient cost the same again each,
except the input gradient of the first layer, which nothing uses (TF prunes it; the tool leaves it out).
So a train step's convolutions and matrix products cost exactly 3 x forward - first layer's forward.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from inprocess_tools import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul")


flops = load_tool("flops")


def _forward_flops(layer, batch):
    """2 x multiply-adds of one Conv2D / Conv2DTranspose / Dense layer on `batch` inputs."""
    if isinstance(layer, tf.keras.layers.Conv2DTranspose):  # before Conv2D: it is a subclass
        _, h, w, c_in = layer.input_shape
        kh, kw = layer.kernel_size
        return 2 * batch * h * w * kh * kw * c_in * layer.filters
    if isinstance(layer, tf.keras.layers.Conv2D):
        _, h, w, _ = layer.output_shape
        kh, kw = layer.kernel_size
        return 2 * batch * h * w * kh * kw * layer.input_shape[-1] * layer.filters
    if isinstance(layer, tf.keras.layers.Dense):
        return 2 * batch * int(np.prod(layer.input_shape[1:])) * layer.units
    return 0


def _heavy(count):
    return sum(count.by_type[t] for t in HEAVY)


@pytest.fixture(autouse=True)
def _clean_gin():
    """tools/flops.py parses configs in this process: leave no bindings behind for other test files."""
    import gin

    gin.clear_config()
    yield
    gin.clear_config()


def test_conv_transposed_conv_dense_step_matches_analytic_count():
    net = tf.keras.Sequential(
        [
            tf.keras.layers.Conv2D(4, 3, strides=2, padding="same", input_shape=(8, 8, 2)),
            tf.keras.layers.Conv2DTranspose(3, 5, strides=2, padding="same"),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(6),
        ]
    )
    optimizer = tf.keras.optimizers.SGD(0.1)

    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(net(x))
        optimizer.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
        return loss

    batch = 5
    graph = tf.function(step).get_concrete_function(tf.TensorSpec((batch, 8, 8, 2))).graph
    count = flops.count_graph(graph)
    conv = 2 * batch * 4 * 4 * 3 * 3 * 2 * 4  # 4x4 outputs, 3x3 kernel, 2 -> 4 channels
    conv_t = 2 * batch * 4 * 4 * 5 * 5 * 4 * 3  # 4x4 inputs, 5x5 kernel, 4 -> 3 channels
    dense = 2 * batch * (8 * 8 * 3) * 6
    assert [_forward_flops(layer, batch) for layer in net.layers] == [conv, conv_t, 0, dense]
    # Forward, kernel gradient and input gradient of each layer; the first layer's input gradient is dead.
    assert count.by_type["Conv2D"] == conv + conv_t  # conv forward + the transposed conv's input gradient
    assert count.by_type["Conv2DBackpropInput"] == conv_t  # the transposed conv's forward only
    assert count.by_type["Conv2DBackpropFilter"] == conv + conv_t
    assert count.by_type["MatMul"] == 3 * dense
    assert _heavy(count) == 3 * (conv + conv_t + dense) - conv
    assert count.profiled - count.flops == conv  # the profiler's total includes the dead input gradient
    # The rest is element-wise (bias adds, reductions, the SGD update): one FLOP per element, far below
    # the >= 36 FLOPs per output element of each convolution here.
    assert 0 < count.flops - _heavy(count) < 0.1 * _heavy(count)
    # No activation or normalization here: only the Tile that broadcasts reduce_sum's gradient is listed.
    assert set(count.uncounted) == {"Tile"}


def test_valid_transposed_conv_counted_exactly_where_the_registry_is_not():
    # DCGAN's first generator layer: 1x1 -> 4x4 by a 4x4 kernel, stride 1, "valid" padding.
    net = tf.keras.Sequential([tf.keras.layers.Conv2DTranspose(8, 4, padding="valid", input_shape=(1, 1, 6))])
    batch = 3

    def step(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            loss = tf.reduce_sum(tf.square(net(z)))
        return tape.gradient(loss, [z] + net.trainable_variables)

    graph = tf.function(step).get_concrete_function(tf.TensorSpec((batch, 1, 1, 6))).graph
    count = flops.count_graph(graph)
    forward = 2 * batch * 1 * 1 * 4 * 4 * 6 * 8
    assert _forward_flops(net.layers[0], batch) == forward
    # Forward (Conv2DBackpropInput), its kernel gradient (Conv2DBackpropFilter), its input gradient (Conv2D).
    assert [count.by_type[t] for t in HEAVY[:3]] == [forward, forward, forward]
    # TF's registry assumes output = input x stride for both backprop ops: 4 * 4 = 16 times too many here.
    (op,) = [o for o in graph.get_operations() if o.type == "Conv2DBackpropFilter"]
    registered = flops.tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value
    assert registered == 16 * forward


def _loop_count(trips):
    """The count of a step that runs `trips` x (w -= 0.1 x^T (x w)) in a tf.while_loop."""
    w = tf.Variable(tf.ones((5, 6)))

    def step(x):
        def body(t):
            # (4, 5) @ (5, 6), then x^T (5, 4) @ (4, 6).
            w.assign_sub(0.1 * tf.matmul(x, tf.matmul(x, w), transpose_a=True))
            return (t + 1,)

        tf.while_loop(lambda t: t < trips, body, (tf.constant(0),))
        return tf.reduce_sum(w)

    return flops.count_graph(tf.function(step).get_concrete_function(tf.TensorSpec((4, 5))).graph)


def test_while_loop_body_counts_once_per_trip():
    counts = {trips: _loop_count(trips) for trips in (0, 3, 6)}
    assert [[n for _, n, _ in counts[t].loops] for t in (0, 3, 6)] == [[0], [3], [6]]
    for trips, count in counts.items():
        assert count.by_type["MatMul"] == trips * (2 * 4 * 6 * 5 + 2 * 5 * 6 * 4)
    # Executed ops grow by the body's ops per trip: linear in the trip count, and more than zero per trip.
    ops = [counts[t].ops for t in (0, 3, 6)]
    assert ops[2] - ops[1] == ops[1] - ops[0] >= 3 * 4  # 2 MatMul, Mul, AssignSub (+ counter) per trip


def test_cae_config_matches_its_keras_layers(mnist5k_dir):
    bindings = [
        "encoder_E.width = 4",
        "mapping_B.width = 8",
        "generator_G.width = 4",
        "input_pipeline.batch_size = 8",
        "train.total_steps = 123",
    ]
    report = flops.measure([os.path.join(ROOT, "gin", "cae_mnist5k.gin")], bindings, data_dir=mnist5k_dir)
    layers = [
        layer
        for network in (report.model.encoder, report.model.mapping, report.model.generator)
        for layer in network.submodules
        if isinstance(layer, tf.keras.layers.Layer)
    ]
    forward = [_forward_flops(layer, 8) for layer in layers]
    # The encoder's first convolution (the one fed the images): its input gradient is dead.
    (first,) = [
        _forward_flops(layer, 8)
        for layer in layers
        if isinstance(layer, tf.keras.layers.Conv2D) and layer.input_shape == (None, 32, 32, 1)
    ]
    # G starts with a "valid" 1x1 -> 4x4 transposed convolution, whose gradients TF's registry overcounts.
    assert report.objective == "CAE" and report.images_per_step == 8 and report.total_steps == 123
    assert report.batch_shapes == [(8, 32, 32, 1)]
    assert _heavy(report.count) == 3 * sum(forward) - first
    assert report.count.uncounted["FusedBatchNormV3"] > 0  # listed as not counted, not silently dropped
    assert report.total_flops == 123 * report.count.flops
    assert report.flops_per_image == report.count.flops / 8


def test_unknown_shapes_skip_element_wise_ops_but_refuse_products():
    w = tf.Variable(tf.ones((5, 3)))

    def draws(x):
        n = tf.shape(x)[0]  # a tensor inside the loop body: the draws' batch size is unknown there

        def body(t, acc):
            return t + 1, acc + tf.reduce_sum(2.0 * tf.random.normal(tf.stack([n, 3])))

        return tf.while_loop(lambda t, _: t < 2, body, (tf.constant(0), tf.constant(0.0)))[1] + tf.reduce_sum(
            tf.matmul(x, w)
        )

    count = flops.count_graph(tf.function(draws).get_concrete_function(tf.TensorSpec((4, 5))).graph)
    # Two per trip (random_normal's scaling by its stddev, and 2.0 *), listed instead of counted.
    assert count.unknown_shape["Mul"] == 4
    assert count.by_type["MatMul"] == 2 * 4 * 3 * 5
    graph = tf.function(lambda x: tf.matmul(x, w)).get_concrete_function(tf.TensorSpec((None, 5))).graph
    with pytest.raises(flops.CountError, match="not fully known"):
        flops.count_graph(graph)


def test_trip_count_refuses_a_loop_it_cannot_read():
    def step(x):
        return tf.while_loop(lambda v: tf.reduce_sum(v) < 10.0, lambda v: (v * 2.0,), (x,))

    graph = tf.function(step).get_concrete_function(tf.TensorSpec((3,))).graph
    with pytest.raises(flops.CountError, match="trip count"):
        flops.count_graph(graph)


def test_bad_binding_exits_2_with_one_line():
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tools", "flops.py"),
            f"--gin_config={ROOT}/gin/cae_mnist5k.gin",
            "--gin_bindings=encoder_E.widht = 4",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "widht" in errors[0]
    assert "FLOPs" not in result.stdout


def test_projected_hours_take_the_slower_of_flops_and_per_op_floor():
    count = flops.Count(flops=int(3e12), ops=1000)
    report = flops.Report("X", [(8, 4)], 8, total_steps=3600, count=count, notes=[], model=None)
    # 3e12 / (100e12 * 0.3) = 0.1 s per step vs 1000 ops x 5 us = 5 ms: FLOP-bound, 3600 steps = 0.1 h.
    assert flops.projected_hours(report, 100.0, 0.3, 5.0) == pytest.approx(0.1)
    # 1000 ops x 200 us = 0.2 s per step: the floor binds.
    assert flops.projected_hours(report, 100.0, 0.3, 200.0) == pytest.approx(0.2)


def test_missing_config_file_and_missing_upstream_are_refused(tmp_path):
    from tfdplc.train import checks

    with pytest.raises(FileNotFoundError, match="no_such.gin"):
        flops.measure([str(tmp_path / "no_such.gin")])
    # A stage-2 config under a name with no default upstream and a G* that does not exist.
    config = tmp_path / "my_dplc.gin"
    config.write_text(open(os.path.join(ROOT, "gin", "dplc_mnist5k.gin")).read())
    with pytest.raises(checks.GinConfigError, match="upstream_gin_config"):
        flops.measure([str(config)], [f"GENERATOR_PATH = '{tmp_path / 'none.keras'}'"])

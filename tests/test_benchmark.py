"""tools/benchmark.py: ratios only against the PyTorch reference measured on a CPU of the same identity."""

import os

import pytest
from inprocess_tools import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def benchmark():
    return load_tool("benchmark")  # its flags active (other in-process tools define --output too)


@pytest.fixture(autouse=True)
def _clean_gin():
    """The benchmark builds its cases from gin configs in this process: leave no bindings behind."""
    import gin

    yield
    gin.clear_config()


def _identity(vendor, family, model, features, name="AMD EPYC"):
    from tfdplc import cpu

    return cpu.CpuIdentity(vendor, family, model, name, frozenset(features), 2450.0, "x86_64")


ZEN3 = ("AuthenticAMD", 25, 1, {"avx", "avx2", "fma"})
ZEN4 = ("AuthenticAMD", 25, 17, {"avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"})


def test_reference_matches_the_cpu_identity_only(benchmark):
    references = benchmark.CASES["dplc_64"][4]
    assert benchmark.reference_for(references, _identity(*ZEN4))[1] == 51.1
    assert benchmark.reference_for(references, _identity(*ZEN3))[1] == 21.3
    # Same marketing name, another family, model or ISA: no ratio.
    assert benchmark.reference_for(references, _identity("AuthenticAMD", 25, 2, ZEN3[3])) is None
    assert benchmark.reference_for(references, _identity("AuthenticAMD", 23, 1, ZEN3[3])) is None
    assert benchmark.reference_for(references, _identity("AuthenticAMD", 25, 17, ZEN3[3])) is None
    assert (
        benchmark.reference_for(references, _identity("GenuineIntel", 25, 1, ZEN3[3], "Intel Xeon")) is None
    )
    assert benchmark.reference_for(None, _identity(*ZEN4)) is None


def test_every_reference_case_has_both_cpus_of_design_md(benchmark):
    # DESIGN.md "Speed targets": the EPYC Zen 4 (2026-11-30) and EPYC Zen 3 (2026-12-07) columns.
    expected = {
        "liu_sr": (145.0, 65.4),
        "yan_mnist": (364.0, 149.3),
        "yan_mnist_joint": (364.0, 149.3),
        "dplc_64": (51.1, 21.3),
        "dplc_64_b256": (43.5, 19.3),
        "dplc_64_frozen_in_policy": (51.1, 21.3),
        "wgan_gp_64": (15.8, 6.6),
    }
    with_reference = {name: case[4] for name, case in benchmark.CASES.items() if case[4]}
    assert set(with_reference) == set(expected)
    for name, (zen4, zen3) in expected.items():
        by_identity = {(r.vendor, r.family, r.model): value for r, value in with_reference[name].items()}
        assert by_identity == {ZEN4[:3]: zen4, ZEN3[:3]: zen3}


def test_timed_case_reports_flops_and_the_fraction_of_peak(benchmark, flags_of, tmp_path):
    from tfdplc import cpu

    flags_of("--steps=1", "--warmup=1", "--xla_modes=off")
    result = benchmark._time_case("cae_mnist", "off", str(tmp_path))
    assert result["cpu_key"] == cpu.cpu_identity().key and "onednn" in result
    # The count is the flops tool's for the same step; GFLOP/s follows from the median step time.
    assert result["flops_per_step"] > 1e8
    assert result["gflops_per_s"] == pytest.approx(result["flops_per_step"] / result["median_step_s"] / 1e9)
    if cpu.fma_peak_gflops():
        assert result["fraction_of_peak"] == pytest.approx(result["gflops_per_s"] / result["peak_gflops"])


@pytest.fixture
def flags_of(benchmark):
    """Parses the tool's flags from a command line; leaves them unparsed afterwards."""

    def parse(*args):
        benchmark.FLAGS.unparse_flags()
        benchmark.FLAGS(["benchmark.py", *args])
        return benchmark.FLAGS

    yield parse
    benchmark.FLAGS.unparse_flags()


def test_every_training_case_is_timed_in_every_requested_precision(benchmark, flags_of, monkeypatch, capsys):
    calls = []

    def fake_time_case(name, xla, scratch, precision="float32"):  # records the wiring; times nothing
        calls.append((name, xla, precision))
        return {
            "case": name,
            "xla": xla,
            "precision": precision,
            "batch": 64,
            "images_per_s": 1.0,
            "median_step_s": 1.0,
        }

    monkeypatch.setattr(benchmark, "_time_case", fake_time_case)
    flags_of("--cases=cae_mnist,wgan_gp_64", "--xla_modes=off", "--precision=float32,mixed_bfloat16")
    benchmark.main([])
    assert calls == [
        ("cae_mnist", "off", "float32"),
        ("cae_mnist", "off", "mixed_bfloat16"),
        ("wgan_gp_64", "off", "float32"),
        ("wgan_gp_64", "off", "mixed_bfloat16"),
    ]
    assert "mixed_bfloat16" in capsys.readouterr().out
    flags_of("--cases=cae_mnist")
    assert benchmark.FLAGS.precision == ["float32"]  # the default


def test_unknown_precision_is_refused_before_anything_runs(benchmark, flags_of, monkeypatch):
    monkeypatch.setattr(benchmark, "_time_case", lambda *a, **k: pytest.fail("timed a case"))
    flags_of("--cases=cae_mnist", "--precision=float32,bfloat16")
    with pytest.raises(benchmark.app.UsageError, match="'bfloat16'.*float32, mixed_bfloat16, mixed_float16"):
        benchmark.main([])


@pytest.mark.bfloat16
def test_a_case_is_built_under_its_precision_and_the_policy_restored(benchmark, tmp_path):
    import tensorflow as tf

    from tfdplc.train import precision

    config, bindings, batch, shape, _ = benchmark.CASES["cae_mnist"]
    model, step, iterator = benchmark.build_case(
        os.path.join(ROOT, config), bindings, 8, shape, False, "off", str(tmp_path), "mixed_bfloat16"
    )
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    convolutions = [layer for layer in model.generator.layers if hasattr(layer, "kernel")]
    assert convolutions and {layer.compute_dtype for layer in convolutions} == {"bfloat16"}
    assert model.quantizer.compute_dtype == "float32" and isinstance(
        model.quantizer, precision.FLOAT32_LAYERS
    )
    logs = step(iterator)  # one step runs (not timed)
    assert all(tf.math.is_finite(value) for value in logs.values())


def test_pipeline_case_times_the_real_pipeline_on_mocked_encoded_images(
    benchmark, flags_of, tmp_path, capsys
):
    # svhn_cropped is not on this machine: the case serves encoded PNGs of its real size from memory through
    # tfds' mock, and tfdplc.data.input_pipeline decodes, batches and prefetches them.
    output = tmp_path / "pipeline.json"
    flags_of(
        "--cases=",
        "--pipeline_cases=svhn_cropped",
        "--pipeline_batches=2",
        "--pipeline_repeats=1",
        "--pipeline_examples=16",
        "--warmup=1",
        f"--output={output}",
    )
    benchmark.main([])
    import json

    (result,) = json.loads(output.read_text())
    assert result["case"] == "pipeline:svhn_cropped" and result["output_shape"] == [64, 32, 32, 3]
    assert result["images_per_s"] > 0 and "16 png" in result["source"]
    assert "pipeline:svhn_cropped" in capsys.readouterr().out


def test_encoded_examples_decode_to_images_of_the_data_sets_size(benchmark):
    import tensorflow as tf

    for shape, image_format in ((218, 178, 3), "jpeg"), ((32, 32, 3), "png"):
        encoded = benchmark._encoded_examples(shape, image_format, 2)
        decoded = tf.io.decode_image(encoded[0])
        assert tuple(decoded.shape) == shape
        assert (
            10 < float(tf.math.reduce_std(tf.cast(decoded, tf.float32))) < 120
        )  # not constant, not saturated
    assert tf.io.decode_image(benchmark._encoded_examples((8, 8, 3), "png", 1)[0]).dtype == tf.uint8


def test_unknown_pipeline_case_is_refused_before_anything_runs(benchmark, flags_of, monkeypatch):
    monkeypatch.setattr(benchmark, "_time_pipeline_case", lambda *a, **k: pytest.fail("timed a case"))
    flags_of("--cases=", "--pipeline_cases=imagenet")
    with pytest.raises(benchmark.app.UsageError, match="'imagenet'.*celeb_a"):
        benchmark.main([])


def test_profile_sums_op_time_by_type_from_a_real_trace(benchmark, tmp_path):
    import tensorflow as tf

    conv = tf.keras.layers.Conv2D(4, 3)
    images = tf.random.stateless_uniform((2, 16, 16, 1), seed=[0, 1])

    @tf.function
    def step(_):
        return {"loss": tf.reduce_sum(tf.square(conv(images)))}

    step(None)
    rows = benchmark.profile_steps([(step, None)], 2, str(tmp_path))
    ops = {row["op"] for row in rows}
    # Op types from "name:type" events; the executor's own "ExecutorState::Process" events are not ops.
    assert any("Conv2D" in op for op in ops) and "Square" in ops and "Process" not in ops
    assert sum(row["share"] for row in rows) == pytest.approx(1.0)
    assert rows == sorted(rows, key=lambda row: -row["ms_per_step"]) and rows[0]["ms_per_step"] > 0
    with pytest.raises(FileNotFoundError, match="No profiler trace"):
        benchmark.summarize_trace(str(tmp_path / "empty"), 1)

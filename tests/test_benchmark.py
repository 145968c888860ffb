"""tools/benchmark.py: ratios only against the PyTorch reference measured on the same CPU model."""

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


def test_reference_matches_the_cpu_model_only(benchmark):
    references = benchmark.CASES["dplc_64"][4]
    assert benchmark.reference_for(references, "AMD EPYC") == ("AMD EPYC", 51.1)
    assert benchmark.reference_for(references, "AMD EPYC 9B14") == ("AMD EPYC", 51.1)
    assert benchmark.reference_for(references, "Intel(R) Xeon(R) CPU @ 2.20GHz") == ("Intel Xeon", 61.5)
    assert benchmark.reference_for(references, "Intel(R) Core(TM) i7-8700") is None
    assert benchmark.reference_for(references, "Intel Xeon Processor (Cascadelake)") == ("Intel Xeon", 61.5)
    assert benchmark.reference_for(references, "Apple M2") is None
    assert benchmark.reference_for(None, "AMD EPYC") is None


def test_every_reference_case_has_both_cpus_of_design_md(benchmark):
    # DESIGN.md "Speed targets": Xeon (2026-11-22) and EPYC (2026-11-30) columns.
    expected = {
        "liu_sr": (162.0, 145.0),
        "yan_mnist": (439.0, 364.0),
        "yan_mnist_joint": (439.0, 364.0),
        "dplc_64": (61.5, 51.1),
        "dplc_64_b256": (47.1, 43.5),
        "dplc_64_frozen_in_policy": (61.5, 51.1),
        "wgan_gp_64": (17.4, 15.8),
    }
    with_reference = {name: case[4] for name, case in benchmark.CASES.items() if case[4]}
    assert set(with_reference) == set(expected)
    for name, (xeon, epyc) in expected.items():
        assert with_reference[name] == {"Intel Xeon": xeon, "AMD EPYC": epyc}


def test_cpu_model_is_a_name(benchmark):
    assert isinstance(benchmark.cpu_model(), str) and benchmark.cpu_model()


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

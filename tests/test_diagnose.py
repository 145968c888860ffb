"""tfdplc.calibration's gradient ratios against closed forms, and tools/diagnose.py end to end."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfdplc import calibration, losses, nets
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import DAL, GC, WAE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M = 8


def _linear_critic(w):
    critic = tf.keras.Sequential([tf.keras.layers.Flatten(), tf.keras.layers.Dense(1)])
    critic.build((None, 32, 32, 1))
    critic.layers[1].kernel.assign(w)
    return critic


@pytest.mark.parametrize("distortion", [losses.euclidean_distance, losses.batch_rmse_pm1])
def test_gc_adversarial_ratio_matches_the_closed_form(distortion):
    # f(x) = w . x: -mean f(x^) has gradient -w / b at every image, batch norm ||w|| / sqrt(b). The
    # paper-text distortion's gradient is a unit vector / b per image (batch norm 1 / sqrt(b)), the
    # authors' has batch norm 2 / sqrt(b D): ratios lambda ||w|| and lambda ||w|| sqrt(D) / 2.
    tf.keras.utils.set_random_seed(0)
    w = np.random.default_rng(0).normal(scale=0.05, size=(1024, 1)).astype(np.float32)
    lam, b = 0.3, 4
    model = GC(
        encoder=nets.encoder_E(32, 2, width=4, channels=1),
        mapping=nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=True, seed=1),
        generator=nets.generator_G(32, m=M, width=4, channels=1),
        critic=_linear_critic(w),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard"),
        optimizer=tf.keras.optimizers.Adam(1e-3),
        critic_optimizer=tf.keras.optimizers.Adam(1e-3),
        lambda_wd=lam,
        n_critic=2,
        distortion=distortion,
    )
    images = tf.random.stateless_uniform((2 * b, 32, 32, 1), seed=[1, 2])
    ratios = calibration.gradient_ratios(model, images)
    expected = (
        lam * np.linalg.norm(w) * (1.0 if distortion is losses.euclidean_distance else np.sqrt(1024) / 2)
    )
    np.testing.assert_allclose(ratios["adversarial_ratio"], expected, rtol=1e-3)
    np.testing.assert_allclose(ratios["critic_grad"], np.linalg.norm(w), rtol=1e-4)
    assert calibration.regularizer_weights(model) == {"lambda_gc": lam, "lambda_gp": 10.0}


def test_dal_adversarial_ratio_matches_the_closed_form():
    # Yan et al. eq. 5 with a linear J(x) = w . x: lambda * (-mean J) has batch gradient norm
    # lambda ||w|| / sqrt(b) at the reconstructions x^; the per-pixel MSE's is 2 ||x^ - x|| / (b N).
    tf.keras.utils.set_random_seed(0)
    w = np.random.default_rng(1).normal(scale=0.05, size=(1024, 1)).astype(np.float32)
    lam, b, n = 0.7, 4, 1024
    model = DAL(
        encoder=nets.yan_encoder(4, width=4),
        decoder=nets.yan_decoder(4, width=4),
        critic=_linear_critic(w),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        optimizer=tf.keras.optimizers.RMSprop(1e-3),
        critic_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        lambda_adv=lam,
        n_critic=2,
    )
    images = tf.random.stateless_uniform((2 * b, 32, 32, 1), seed=[4, 2])
    real = images[b:].numpy()  # the generator step's (last) mini-batch
    decoded = model(real, training=True).numpy()
    expected = lam * (np.linalg.norm(w) / np.sqrt(b)) / (2 * np.linalg.norm(decoded - real) / (b * n))
    ratios = calibration.gradient_ratios(model, images)
    np.testing.assert_allclose(ratios["adversarial_ratio"], expected, rtol=1e-3)
    np.testing.assert_allclose(ratios["distortion"], np.mean((decoded - real) ** 2), rtol=1e-4)
    np.testing.assert_allclose(ratios["critic_grad"], np.linalg.norm(w), rtol=1e-4)
    assert calibration.regularizer_weights(model) == {"lambda_adv": lam, "lambda_gp": 10.0}


def test_wae_mmd_ratio_matches_a_direct_computation():
    tf.keras.utils.set_random_seed(0)
    model = WAE(nets.encoder_F(32, M, width=4, channels=1), nets.generator_G(32, M, width=4, channels=1),
                tf.keras.optimizers.Adam(), tf.keras.optimizers.Adam(), mmd_weight=7.0)  # fmt: skip
    prior = tf.random.stateless_normal((4, M), seed=[3, 3])
    model.sample_prior = lambda batch_size, seed=None: prior
    images = tf.random.stateless_uniform((4, 32, 32, 1), seed=[1, 3])
    z = model.encoder(images, training=True)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        distortion = losses.euclidean_distance(images, model.generator(z, training=True))
        mmd = losses.mmd_imq(prior, z)
    expected = 7.0 * np.linalg.norm(tape.gradient(mmd, z)) / np.linalg.norm(tape.gradient(distortion, z))
    ratios = calibration.gradient_ratios(model, images)
    np.testing.assert_allclose(ratios["mmd_ratio"], expected, rtol=1e-4)
    np.testing.assert_allclose(ratios["distortion"], distortion, rtol=1e-5)


def test_diagnose_tool_runs_a_paper_scale_config_with_stand_ins(tmp_path):
    # celeb_a is not prepared here, nor is the stage-1 G* or the CAE metrics: all three stand-ins show.
    bindings = ["encoder_E.width = 4", "mapping_B.width = 8", "mapping_B.n_blocks = 1", "M = 16",
                "input_pipeline.batch_size = 4"]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "tools/diagnose.py", "--gin_config=gin/dplc_celeba64.gin", "--steps=1",
         "--measure_batches=1", "--convention=paper_text", f"--data_dir={tmp_path}"]
        + [f"--gin_bindings={b}" for b in bindings],
        cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "objective: DPLC; convention: paper_text (distortion euclidean_distance" in out
    assert "lambda_mmd = 150" in out
    assert out.count("STAND-IN:") == 3 and "UNTRAINED stand-in G*" in out and "uniform random images" in out
    rows = [line for line in out.splitlines() if line.startswith("| 0 |") or line.startswith("| 1 |")]
    assert len(rows) == 2
    for row in rows:
        mmd_ratio = float(row.split("|")[4])
        assert np.isfinite(mmd_ratio) and mmd_ratio > 0


# tools/diagnose.py --deployed_workdir: the deployed-mode check of a trained DPLC workdir (issue 25).


def _tiny_dplc_workdir(tmp_path, data_dir):
    import gin

    import tfdplc
    from tfdplc import train as tr

    tfdplc.nets.generator_G(32, M, width=4, channels=1).save(str(tmp_path / "generator.keras"))
    bindings = [
        f"GENERATOR_PATH = '{tmp_path / 'generator.keras'}'", f"M = {M}", "K = 1", "encoder_E.width = 4",
        "mapping_B.width = 8", "input_pipeline.batch_size = 8", "train.total_steps = 2",
        "train.steps_per_epoch = 2", "train.eval_steps = 1", "train.num_grid_images = 2", "train.verbose = 0",
    ]  # fmt: skip
    gin.clear_config()
    tr.config.parse_gin([f"{ROOT}/gin/dplc_mnist5k.gin"], bindings)
    tr.train(str(tmp_path / "dplc"), data_dir)
    gin.clear_config()
    return tmp_path / "dplc"


def test_diagnose_deployed_check_of_a_trained_dplc_workdir(tmp_path, mnist5k_dir):
    import json

    from inprocess_tools import load_tool

    from tfdplc import data, deployed
    from tfdplc.train import load_workdir_config, restore_objective

    workdir = _tiny_dplc_workdir(tmp_path, mnist5k_dir)
    output = tmp_path / "deployed.json"
    diagnose = load_tool("diagnose")
    diagnose.FLAGS(
        ["diagnose.py", f"--deployed_workdir={workdir}", f"--data_dir={mnist5k_dir}", "--deployed_images=40",
         "--pv_codes=4", "--pv_decodes=3", "--null_repetitions=5", "--authors_batch_size=16", "--seed=3",
         f"--output={output}"]
    )  # fmt: skip
    try:
        assert diagnose.main([]) == 0
        record = json.loads(output.read_text())
        diagnose.FLAGS(["diagnose.py", f"--deployed_workdir={tmp_path}", f"--data_dir={mnist5k_dir}"])
        assert diagnose.main([]) == 2  # not a workdir: a clear error, nothing written
    finally:
        diagnose.FLAGS.unparse_flags()
    assert record["method"] == "dplc" and record["checkpoint"] == "ckpt-2" and record["split"] == "test"
    assert record["num_images"] == 40 and record["latent_dim"] == M and record["rate_bits"] == 4.0
    assert record["pv_codes"] == 4 and record["authors_mode_batch_size"] == 16
    assert "NOT what the codec produces" in record["authors_mode_note"]
    # The same numbers from the restored model and 40 test images spread evenly over the (class-sorted) split.
    load_workdir_config(str(workdir))
    test = data.load_images("mnist5k", "test", data_dir=mnist5k_dir, resolution=32)
    images = np.stack([x.numpy() for x in test])
    images = images[np.linspace(0, len(images) - 1, 40).round().astype(int)]
    model = restore_objective(str(workdir), images[:1])
    expected = deployed.prior_mmd(deployed.deployed_latents(model, images, seed=3), seed=5)
    np.testing.assert_allclose(record["mmd_deployed"], expected, atol=1e-4)
    # After 2 steps the codes hardly depend on the image; the data's pixel variance pins which images.
    spread_variance = images.reshape(40, -1).astype(np.float64).var(0, ddof=1).mean()
    assert record["data_pixel_variance"] == pytest.approx(spread_variance, rel=1e-5)
    assert record["mmd_null_sd"] > 0 and np.isfinite(record["authors_mode_mmd"])

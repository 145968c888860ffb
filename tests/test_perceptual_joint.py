"""Yan et al.'s E, G1 and G2 trained in one loop (`PerceptualJoint`, the authors' code's loop).

Checked against independent computations: E and G1 must take exactly the update of a stage-1
`PerceptualG1` step on the same images (so nothing of the critic or G2 reaches them, and the target is the
input), G2 and J must train on the codes of that step's forward pass of E (training mode, before E's
update), and the joint model must work as a stage-1 workdir and as a slider model (G1 is its MSE decoder).
The paper-scale config goes through tools/train.py, evaluate, export and the codec in tools/smoke.py (CI).
"""

import numpy as np
import pytest
import tensorflow as tf
from test_perceptual import WIDTH, D, _images, _sensitive, _snapshot, _tiny_g1

from tfdplc import codec, nets
from tfdplc.codec.interface import realism_value
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import PerceptualJoint
from tfdplc.objectives.perceptual import code_map, load_encoder


def _joint(g1, pretrain_steps=0, seed=0, centers=(-1.0, 1.0)):
    """A joint model whose E and G1 start as copies of `g1`'s, with the same optimizer settings."""
    encoder = tf.keras.models.clone_model(g1.encoder)
    encoder.set_weights(g1.encoder.get_weights())
    decoder = tf.keras.models.clone_model(g1.decoder)
    decoder.set_weights(g1.decoder.get_weights())
    tf.keras.utils.set_random_seed(seed)
    return PerceptualJoint(
        encoder=encoder,
        decoder=decoder,
        generator=_sensitive(nets.yan_generator(D, width=WIDTH, seed=seed + 1)),
        critic=_sensitive(nets.yan_critic(D, width=WIDTH), 5.0),
        quantizer=ScalarQuantizer(centers, gradient="straight_through"),
        optimizer=tf.keras.optimizers.RMSprop(1e-3),
        generator_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        critic_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        pretrain_steps=pretrain_steps,
    )


def _built(n, g1_lr=1e-3, **joint_args):
    """n test images, a built stage-1 `PerceptualG1` and a built joint model that starts from its E and G1."""
    images = _images(n)
    g1 = _tiny_g1(lr=g1_lr)
    g1(images[:1])
    joint = _joint(g1, **joint_args)
    joint(images[:1])
    return images, g1, joint


def _assert_same_weights(a, b):
    assert len(a.variables) == len(b.variables)
    for x, y in zip(a.variables, b.variables):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-7, err_msg=x.name)


def test_e_and_g1_take_exactly_the_stage_one_update_and_g2_and_j_train_too():
    images, g1, joint = _built(8)
    before = _snapshot(joint.generator.trainable_variables + joint.critic.trainable_variables)
    for _ in range(2):  # the second step also checks the optimizer state carried between steps
        g1.train_step(images)
        logs = joint.train_step(images)
    _assert_same_weights(joint.encoder, g1.encoder)
    _assert_same_weights(joint.mse_decoder, g1.decoder)
    assert float(logs["mse_g1"]) == pytest.approx(float(g1.metrics[0].result()), rel=1e-6)

    def moved(network):
        return [v for v in network.trainable_variables if not np.allclose(v.numpy(), before[v.name])]

    assert moved(joint.generator) and moved(joint.critic)  # both stage-2 networks trained
    assert joint.encoder.trainable and all(
        v.trainable for v in joint.encoder.variables if "moving" not in v.name
    )


def test_g2_and_j_see_the_codes_of_this_steps_encoder_in_training_mode(monkeypatch):
    # 65 centres: binary codes hardly tell E's modes (and E before / after its update) apart.
    images, _, joint = _built(8, centers=tuple(np.linspace(-1.0, 1.0, 65)))
    reference = tf.keras.models.clone_model(joint.encoder)
    reference.set_weights(joint.encoder.get_weights())
    expected = joint.quantizer(reference(images, training=True))
    inference = joint.quantizer(reference(images, training=False))
    assert not np.array_equal(expected.numpy(), inference.numpy())  # the test can tell the two apart
    seen = []
    monkeypatch.setattr(joint, "stage2_step", lambda batches, codes: seen.append((batches, codes)))
    joint.train_step(images)
    ((batches, codes),) = seen
    np.testing.assert_array_equal(batches.numpy()[0], images.numpy())
    np.testing.assert_array_equal(codes.numpy()[0], expected.numpy())
    after = joint.quantizer(joint.encoder(images, training=True))
    assert not np.array_equal(after.numpy(), expected.numpy())  # E did move in this step


def test_joint_model_is_a_slider_model_and_writes_a_stage_one_workdir(tmp_path):
    images, _, joint = _built(4)
    assert joint.has_mse_decoder() and joint.stage1_decoder() is joint.mse_decoder
    codes = code_map(joint.quantizer.indices(joint.encoder(images, training=False)))
    seeds = tf.constant([1, 2, 3, 4], tf.int64)
    code = joint.quantizer.dequantize(tf.reshape(codes, (4, D)))
    np.testing.assert_array_equal(
        joint.decode_codes_realism(codes, seeds, realism_value(0.0)).numpy(),
        joint.mse_decoder(code, training=False).numpy(),
    )
    np.testing.assert_array_equal(
        joint.decode_codes_realism(codes, seeds, realism_value(1.0)).numpy(),
        joint.decode_codes(codes, seeds).numpy(),
    )
    joint.save_artifacts(str(tmp_path))
    encoder = load_encoder(str(tmp_path / "encoder.keras"))
    np.testing.assert_array_equal(
        encoder(images, training=False).numpy(), joint.encoder(images, training=False).numpy()
    )
    decoder = tf.keras.models.load_model(str(tmp_path / "decoder.keras"), compile=False)
    np.testing.assert_array_equal(decoder(code).numpy(), joint.mse_decoder(code).numpy())


def test_g1_code_length_must_match():
    g1 = _tiny_g1()
    with pytest.raises(ValueError, match="G1 takes"):
        PerceptualJoint(
            encoder=g1.encoder,
            decoder=nets.yan_decoder(D + 1, width=WIDTH),
            generator=nets.yan_generator(D, width=WIDTH),
            critic=nets.yan_critic(D, width=WIDTH),
            quantizer=ScalarQuantizer((-1.0, 1.0)),
            optimizer=tf.keras.optimizers.RMSprop(),
            generator_optimizer=tf.keras.optimizers.RMSprop(),
            critic_optimizer=tf.keras.optimizers.RMSprop(),
        )


def test_export_decodes_with_g1_g2_and_the_blend(tmp_path):
    images, _, joint = _built(4)
    loaded = codec.load(codec.export_model(joint, str(tmp_path / "export")).export_dir)
    assert loaded.can_decode_realism
    pixels = np.random.default_rng(0).integers(0, 256, size=(2, 32, 32, 1), dtype=np.uint8)
    files = loaded.compress(pixels, seeds=[5, 6])
    codes, seeds = loaded.decompress_codes(files)
    code = joint.quantizer.dequantize(tf.reshape(tf.constant(codes), (2, D)))
    g1_decode = joint.mse_decoder(code, training=False).numpy()
    g2_decode = joint.decode_codes(tf.constant(codes), tf.constant(seeds)).numpy()

    def uint8(x):
        return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)

    for realism, expected in ((0.0, g1_decode), (1.0, g2_decode), (0.5, 0.5 * g1_decode + 0.5 * g2_decode)):
        diff = np.abs(loaded.decompress(files, realism=realism).astype(int) - uint8(expected).astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (realism, diff.max())

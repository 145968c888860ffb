"""DPLC's distribution constraint checked in the mode a deployed codec runs (issue 25, DESIGN.md "Scales").

Stage 2 (Tschannen et al. 2018, eq. 8, Section 4) relaxes B(E(X)) ~ P_Z to an MMD penalty computed on
training batches, with E and B in Keras training mode: their batch norms use the batch's statistics, so
each z_i depends on the other images of its batch. The codec encodes and decodes one image at a time with
the moving statistics (inference mode). This module measures the constraint in that mode:

- `deployed_latents`: z_i = B(E(x_i), n_i) for each image ALONE (a batch of one, `training=False`), with
  B's noise n_i drawn from a per-image seed as the codec draws it (`noise_layer_draw`);
- `prior_mmd`: the MMD^2 U-statistic of Algorithm 1 line 16 (`losses.mmd_imq`) of those z against as many
  prior samples z ~ N(0, I_m);
- `mmd_null_band`: the same estimator between two independent prior batches of the same size, over
  repetitions: its sd is the scale on which the deployed MMD is "zero" (issue 25: within 3 null sd);
- `sample_pixel_variance`: the pixel variance of G*(z) samples, what the PV at 0 bits approaches when B(noise)
  ~ P_Z (PV of Section 5; `metrics.conditional_pixel_variance` conventions);
- `authors_mode_latents` / `authors_mode_pixel_variance`: what the authors' code measures (it never calls
  `.eval()`): every network in training mode, on batches of up to 256 images. This is NOT what the codec
  produces; it is reported only beside the deployed values, to compare with the paper's numbers. The
  variables it would change (batch-norm moving statistics) are restored afterwards (`preserved_variables`).

`deployed_check` gathers all of it into one JSON-ready record (`tools/diagnose.py --deployed_workdir`).

`recalibrate_batch_norm` / `recalibrate_workdir` make the deployed mode meet what training optimised
(issue 25 item 3, "a documented fine-tune that freezes them"): E's and B's batch-norm moving statistics
are set to the population statistics of the training images in the deployed pipeline
(`tfdplc.batch_norm.recalibrate`); not in the paper (see that module). Entry points:
`tools/recalibrate.py`, or `DPLC.recalibrate_batch_norm = True` at the end of stage 2.
The objective must expose DPLC's interface: `encode`, `latents`, `generator`, `mapping.noise_layer`,
`latent_dim`, `rate_bits` (`tfdplc.objectives.DPLC`).
"""

import contextlib
import json
import os
import shutil
import time
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfdplc import batch_norm, losses, metrics
from tfdplc.codec.interface import noise_layer_draw

__all__ = [
    "AUTHORS_BATCH_SIZE",
    "AUTHORS_MODE_NOTE",
    "NULL_SDS",
    "RECALIBRATED_CHECKPOINT_NAME",
    "RECALIBRATION_FILE",
    "authors_mode_latents",
    "authors_mode_pixel_variance",
    "deployed_check",
    "deployed_latents",
    "image_seeds",
    "mmd_null_band",
    "preserved_variables",
    "prior_mmd",
    "recalibrate_batch_norm",
    "recalibrate_workdir",
    "sample_pixel_variance",
]

# The authors' evaluation batch (their training batch, Table 3: b = 256).
AUTHORS_BATCH_SIZE = 256
AUTHORS_MODE_NOTE = (
    "authors' mode: E, B (and G* for PV) in training mode with batch statistics on batches of up to "
    "256 images, as the authors' code evaluates; NOT what the codec produces (one image at a time, "
    "inference mode)"
)
# Issue 25's criterion: the deployed MMD within this many null sd of the null mean.
NULL_SDS = 3.0
# Checkpoints written by `recalibrate_workdir` are CHECKPOINT_DIR/bn_recalibrated-STEP; its record goes here.
RECALIBRATED_CHECKPOINT_NAME = "bn_recalibrated"
RECALIBRATION_FILE = "bn_recalibration.json"


def _check_images(images) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[0] < 2:
        raise ValueError(
            f"expected (n, H, W, C) images with n >= 2 (the MMD needs two samples), got shape {images.shape}."
        )
    return images


def image_seeds(n: int, seed: int) -> np.ndarray:
    """(n,) int64 per-image seeds of B's noise, a function of `seed` (as the codec stores one per image)."""
    return np.random.default_rng(seed).integers(0, 2**31 - 1, size=n, dtype=np.int64)


def _noise(model, seeds) -> tf.Tensor:
    """B's noise for these per-image seeds, with the distribution of B's own noise layer."""
    return noise_layer_draw(model.mapping.noise_layer, tf.cast(seeds, tf.int64))


def deployed_latents(model, images, seed: int = 0) -> np.ndarray:
    """B(E(x_i), n_i) for each image alone, in inference mode: the z the deployed decoder feeds G*.

    Each image goes through E, the quantizer and B as a batch of ONE with `training=False` (so every batch
    norm uses its moving statistics), B's noise n_i drawn from the i-th of `image_seeds(n, seed)`.

    Args:
      model: a DPLC objective.
      images: (n, H, W, C) images in [0, 1], n >= 2.
      seed: seed of the per-image noise seeds.

    Returns:
      (n, m) float32 array.

    Raises:
      ValueError: on a malformed image batch.
    """
    images = _check_images(images)
    seeds = image_seeds(len(images), seed)

    @tf.function(reduce_retracing=True)
    def one(image, image_seed):
        code = model.encode(image, training=False)
        return model.latents(code, noise=_noise(model, image_seed), training=False)

    return np.concatenate(
        [one(images[i : i + 1], tf.constant(seeds[i : i + 1])).numpy() for i in range(len(images))]
    )


@contextlib.contextmanager
def preserved_variables(model) -> Iterator[None]:
    """Restores every variable of `model` on exit (batch-norm moving statistics, noise generator states).

    Keras' BatchNormalization assigns its moving mean and variance whenever it runs with `training=True`;
    the authors' mode must leave the trained model as it found it.

    Raises:
      RuntimeError: if a variable still differs after the restore.
    """
    variables = list(model.variables)
    saved = [v.numpy().copy() for v in variables]
    try:
        yield
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)
        for variable, value in zip(variables, saved):
            if not np.array_equal(variable.numpy(), value):
                raise RuntimeError(f"preserved_variables: {variable.name} was not restored.")


def _authors_batches(n: int, batch_size: int):
    """Index ranges of ceil(n / batch_size) near-equal batches of at most `batch_size` (none of size 1)."""
    if batch_size < 2:
        raise ValueError(f"batch statistics need batches of at least 2 images, got batch_size={batch_size}.")
    return np.array_split(np.arange(n), -(-n // batch_size))


def authors_mode_latents(model, images, seed: int = 0, batch_size: int = AUTHORS_BATCH_SIZE) -> np.ndarray:
    """Codes B(E(x), n) with E and B in training mode (batch statistics), batches of up to `batch_size`.

    The authors' evaluation mode (their code never calls `.eval()`); NOT what the codec computes. The n
    images are split into ceil(n / batch_size) near-equal batches; B's noise comes from the same per-image
    seeds as in `deployed_latents`, so the two differ by the mode alone. No variable of `model` changes.

    Args:
      model: a DPLC objective.
      images: (n, H, W, C) images in [0, 1], n >= 2.
      seed: seed of the per-image noise seeds.
      batch_size: the largest batch (the authors': 256), >= 2.

    Returns:
      (n, m) float32 array.

    Raises:
      ValueError: on a malformed image batch or batch_size < 2.
    """
    images = _check_images(images)
    seeds = image_seeds(len(images), seed)
    parts = []
    with preserved_variables(model):
        for index in _authors_batches(len(images), batch_size):
            code = model.encode(images[index], training=True)
            parts.append(model.latents(code, noise=_noise(model, seeds[index]), training=True).numpy())
    return np.concatenate(parts)


def prior_mmd(z, seed: int = 0) -> float:
    """MMD^2 U-statistic (`losses.mmd_imq`) of z against len(z) samples of N(0, I_m) drawn from `seed`."""
    z = np.asarray(z, dtype=np.float32)
    prior = np.random.default_rng(seed).standard_normal(z.shape).astype(np.float32)
    return float(losses.mmd_imq(prior, z))


def mmd_null_band(n: int, m: int, repetitions: int = 100, seed: int = 0) -> Tuple[float, float]:
    """Mean and sd of the MMD^2 U-statistic between two independent N(0, I_m) batches of n samples.

    The estimator's spread when the constraint holds exactly: a measured MMD within a few sd of the mean
    (~0, the statistic is unbiased) cannot be told from a perfect match at this sample size.

    Args:
      n: samples per batch (the number of codes the measured MMD used), >= 2.
      m: latent dimension.
      repetitions: independent pairs of batches, >= 2.
      seed: seed of the draws.

    Returns:
      (mean, sd) over the repetitions, sd with ddof = 1.

    Raises:
      ValueError: if n or repetitions is below 2 or m below 1.
    """
    if n < 2 or repetitions < 2 or m < 1:
        raise ValueError(
            f"mmd_null_band needs n >= 2, repetitions >= 2, m >= 1; got {n}, {repetitions}, {m}."
        )
    rng = np.random.default_rng(seed)
    values = [
        float(losses.mmd_imq(*rng.standard_normal((2, n, m)).astype(np.float32))) for _ in range(repetitions)
    ]
    return float(np.mean(values)), float(np.std(values, ddof=1))


def _pixel_variance(images: np.ndarray) -> float:
    """Unbiased per-entry variance over the first axis, averaged over all H * W * C entries (float64)."""
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    return float(flat.var(axis=0, ddof=1).mean())


def sample_pixel_variance(model, n: int, seed: int = 0, batch_size: int = 256) -> float:
    """Pixel variance of n samples G*(z), z ~ N(0, I_m), G* in inference mode.

    What the PV at 0 bits equals when B(noise) ~ P_Z exactly (the decoder is then G*(z)): the per-pixel
    variance over the samples (unbiased), averaged over the pixels and channels, on [0, 1] pixels as PV.

    Raises:
      ValueError: if n < 2.
    """
    if n < 2:
        raise ValueError(f"a pixel variance needs n >= 2 samples, got {n}.")
    z = np.random.default_rng(seed).standard_normal((n, model.latent_dim)).astype(np.float32)
    samples = [
        model.generator(z[i : i + batch_size], training=False).numpy() for i in range(0, n, batch_size)
    ]
    return _pixel_variance(np.concatenate(samples))


def authors_mode_pixel_variance(
    model,
    images,
    num_decodes: int = metrics.PV_NUM_DECODES,
    seed: int = 0,
    batch_size: int = AUTHORS_BATCH_SIZE,
) -> float:
    """PV of the decoder with E, B and G* in training mode on batches of up to `batch_size` codes.

    As the authors' code computes it (their G* is in training mode too); NOT what the codec produces.
    Each batch of codes is decoded `num_decodes` times with fresh noise (`metrics.conditional_pixel_variance`);
    no variable of `model` changes.
    """
    images = _check_images(images)
    noise_layer = model.mapping.noise_layer

    def decode_training_mode(codes, noise):
        return model.generator(model.latents(codes, noise=noise, training=True), training=True)

    decode_fn = metrics.noise_decode_fn(decode_training_mode, noise_layer.m, noise_layer.distribution)
    index = _authors_batches(len(images), batch_size)
    with preserved_variables(model):
        codes = tf.concat([model.encode(images[i], training=True) for i in index], 0)
        size = max(len(i) for i in index)
        return metrics.conditional_pixel_variance(decode_fn, codes, num_decodes, seed, size)


def _latent_summary(z: np.ndarray, prefix: str) -> Dict[str, float]:
    return {
        f"{prefix}z_mean_abs": float(np.abs(z.mean(axis=0)).mean()),
        f"{prefix}z_var_mean": float(z.var(axis=0, ddof=1).mean()),
    }


def deployed_check(
    model,
    images,
    pv_images=None,
    pv_decodes: int = metrics.PV_NUM_DECODES,
    null_repetitions: int = 100,
    seed: int = 0,
    authors_batch_size: Optional[int] = AUTHORS_BATCH_SIZE,
) -> Dict[str, object]:
    """The distribution constraint and the PV of a DPLC model in the deployed mode, one JSON-ready record.

    Keys (all floats unless said):
      num_images, latent_dim (ints), rate_bits;
      mmd_deployed: `prior_mmd` of `deployed_latents`; mmd_null_mean, mmd_null_sd: `mmd_null_band` at the
        same n; mmd_deployed_null_sds: (mmd_deployed - mmd_null_mean) / mmd_null_sd;
        mmd_deployed_within_null: whether that is <= NULL_SDS (bool);
      z_mean_abs, z_var_mean: mean over dimensions of |mean z| and of var z (the prior: 0 and 1);
      with pv_images: pv_deployed (`metrics.objective_pixel_variance`, inference mode, B's noise drawn
        from seeds; batches in inference mode compute per image, so batching does not change it),
        sample_pixel_variance (`sample_pixel_variance`, n = len(images)), pv_over_sample_pixel_variance,
        data_pixel_variance (of `images`), pv_codes, pv_decodes;
      with authors_batch_size: authors_mode_batch_size, authors_mode_mmd, authors_mode_mmd_null_sds,
        authors_mode_z_mean_abs, authors_mode_z_var_mean, authors_mode_pv (with pv_images),
        authors_mode_note (what it is not).

    Args:
      model: a trained DPLC objective.
      images: (n, H, W, C) test images in [0, 1], n >= 2; their codes give the MMDs.
      pv_images: test images whose codes give the PV (the paper: 256), or None to skip the PVs.
      pv_decodes: decodes per code for the PV, >= 2.
      null_repetitions: pairs of prior batches for the null band, >= 2.
      seed: seed of B's noise, the prior batch and the null band.
      authors_batch_size: batch of the authors' mode (None skips it).

    Returns:
      The record.

    Raises:
      ValueError: on malformed images or arguments.
    """
    images = _check_images(images)
    n = len(images)
    z = deployed_latents(model, images, seed)
    null_mean, null_sd = mmd_null_band(n, model.latent_dim, null_repetitions, seed + 1)
    mmd = prior_mmd(z, seed + 2)
    record = {
        "num_images": n,
        "latent_dim": int(model.latent_dim),
        "rate_bits": float(model.rate_bits),
        "mmd_deployed": mmd,
        "mmd_null_mean": null_mean,
        "mmd_null_sd": null_sd,
        "mmd_null_repetitions": int(null_repetitions),
        "mmd_deployed_null_sds": (mmd - null_mean) / null_sd,
        "mmd_deployed_within_null": bool((mmd - null_mean) / null_sd <= NULL_SDS),
        **_latent_summary(z, ""),
    }
    if pv_images is not None:
        noise_layer = model.mapping.noise_layer
        pv = metrics.objective_pixel_variance(
            model, pv_images, noise_layer.m, pv_decodes, seed, distribution=noise_layer.distribution
        )
        reference = sample_pixel_variance(model, n, seed + 3)
        record.update(
            pv_deployed=pv,
            sample_pixel_variance=reference,
            pv_over_sample_pixel_variance=pv / reference,
            data_pixel_variance=_pixel_variance(images),
            pv_codes=len(pv_images),
            pv_decodes=int(pv_decodes),
        )
    if authors_batch_size is not None:
        z_authors = authors_mode_latents(model, images, seed, authors_batch_size)
        mmd_authors = prior_mmd(z_authors, seed + 2)
        record.update(
            authors_mode_batch_size=int(authors_batch_size),
            authors_mode_mmd=mmd_authors,
            authors_mode_mmd_null_sds=(mmd_authors - null_mean) / null_sd,
            **_latent_summary(z_authors, "authors_mode_"),
        )
        if pv_images is not None:
            record["authors_mode_pv"] = authors_mode_pixel_variance(
                model, pv_images, pv_decodes, seed, authors_batch_size
            )
        record["authors_mode_note"] = AUTHORS_MODE_NOTE
    return record


def recalibrate_batch_norm(model, images, batch_size: int = 256, seed: int = 0) -> List[Dict[str, object]]:
    """Sets E's and B's batch-norm moving statistics to their population statistics over `images`.

    Not in the paper (`tfdplc.batch_norm`): the statistics the codec's inference mode uses become the
    exact mean and (biased) variance of each layer's input over `images` (the training set), computed in
    the deployed pipeline: E, the hard quantizer and B in inference mode, layer by layer, B's noise drawn
    from the per-image seeds `image_seeds(len(images), seed)` with B's own distribution. G* and every
    trainable weight stay as they are.

    Args:
      model: a DPLC objective (`encode`, `latents`, `encoder`, `mapping.noise_layer`), built.
      images: (n, H, W, C) images in [0, 1] (the training split), n >= 1.
      batch_size: images per forward pass (the result does not depend on it), >= 1.
      seed: seed of the per-image noise seeds.

    Returns:
      One record per layer in call order (`tfdplc.batch_norm.recalibrate`).

    Raises:
      ValueError: on malformed images, batch_size < 1, or if E and B have no batch norm.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"expected (n, H, W, C) images with n >= 1, got shape {images.shape}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    seeds = image_seeds(len(images), seed)
    layers = batch_norm.batch_norm_layers([model.encoder, model.mapping])
    if not layers:
        raise ValueError("E and B have no batch norm (per-example normalisation): nothing to recalibrate.")

    def forward(batch):
        batch_images, batch_seeds = batch
        code = model.encode(tf.constant(batch_images), training=False)
        return model.latents(code, noise=_noise(model, tf.constant(batch_seeds)), training=False)

    def batches():
        return (
            (images[i : i + batch_size], seeds[i : i + batch_size]) for i in range(0, len(images), batch_size)
        )

    return batch_norm.recalibrate(layers, forward, batches)


def recalibrate_workdir(
    model,
    workdir: str,
    images,
    output_workdir: Optional[str] = None,
    batch_size: int = 256,
    seed: int = 0,
    metadata: Optional[Dict[str, object]] = None,
) -> Dict[str, object]:
    """Recalibrates a DPLC workdir's latest checkpoint and saves it as the latest checkpoint of the output.

    The workdir's latest training checkpoint (objective with its optimizer state, step, random generator:
    `tfdplc.train.training_checkpoint`) is restored into `model`, `recalibrate_batch_norm` runs, and the
    result is written as OUTPUT/checkpoints/bn_recalibrated-STEP, which becomes the latest checkpoint
    there, so tools/evaluate.py, tools/export.py, the codec and tools/diagnose.py use it; a resumed run
    starts from it. In place (no `output_workdir`) the source checkpoint stays in the folder; with an
    `output_workdir` the workdir is left unchanged and its config.gin / operative_config.gin are copied.
    The record (also written to OUTPUT/bn_recalibration.json) names the source checkpoint, the images, the
    per-layer changes and the wall time.

    Args:
      model: the workdir's DPLC objective built from its config (`load_workdir_config`, `build_objective`)
        and called once.
      workdir: a trained DPLC stage-2 workdir.
      images: the images to recalibrate on (the training split).
      output_workdir: where to write (None: in place); must not hold checkpoints yet.
      batch_size: images per forward pass.
      seed: seed of B's per-image noise seeds.
      metadata: extra keys for the record (e.g. the split of `images`).

    Returns:
      The record.

    Raises:
      FileNotFoundError: if the workdir has no checkpoint.
      FileExistsError: if `output_workdir` already holds checkpoints.
      ValueError: as `recalibrate_batch_norm`.
    """
    # Imported here: the trainer imports the objectives, and DPLC calls this module.
    from tfdplc.objectives.base import RANDOM_CHECKPOINT_KEY
    from tfdplc.train import trainer

    start = time.time()
    checkpoints = os.path.join(workdir, trainer.CHECKPOINT_DIR)
    source = tf.train.latest_checkpoint(checkpoints)
    if source is None:
        raise FileNotFoundError(f"No checkpoint in {checkpoints!r}: train the DPLC stage 2 first.")
    output = workdir if output_workdir is None else output_workdir
    output_checkpoints = os.path.join(output, trainer.CHECKPOINT_DIR)
    if output_workdir is not None and os.path.abspath(output) != os.path.abspath(workdir):
        if tf.train.latest_checkpoint(output_checkpoints) is not None:
            raise FileExistsError(f"{output_checkpoints!r} already holds checkpoints: choose a new folder.")
        tf.io.gfile.makedirs(output)
        for name in (trainer.CONFIG_FILE, trainer.OPERATIVE_CONFIG_FILE):
            if tf.io.gfile.exists(os.path.join(workdir, name)):
                shutil.copyfile(os.path.join(workdir, name), os.path.join(output, name))
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = trainer.training_checkpoint(model, step)
    # Slots first, so the optimizer state is restored now and written again (an exact resume).
    model.optimizer_eb.build(model.encoder.trainable_variables + model.mapping.trainable_variables)
    # What the source holds of the training checkpoint's objects: older checkpoints lack the step or the
    # random generator (written again with step 0 / the generator at its seed state).
    names = tf.train.load_checkpoint(source).get_variable_to_shape_map()
    held = dict(model=model)
    if "step/.ATTRIBUTES/VARIABLE_VALUE" in names:
        held["step"] = step
    generator = getattr(model, "random_generator", None)
    if generator is not None and any(n.startswith(f"{RANDOM_CHECKPOINT_KEY}/") for n in names):
        held[RANDOM_CHECKPOINT_KEY] = generator
    tf.train.Checkpoint(**held).restore(source).assert_existing_objects_matched()
    trainable = [v.numpy().copy() for v in model.trainable_variables]
    layers = recalibrate_batch_norm(model, images, batch_size, seed)
    if not all(np.array_equal(a, v.numpy()) for a, v in zip(trainable, model.trainable_variables)):
        raise RuntimeError("recalibrate_workdir: a trainable weight changed.")  # never expected
    manager = tf.train.CheckpointManager(
        checkpoint, output_checkpoints, max_to_keep=None, checkpoint_name=RECALIBRATED_CHECKPOINT_NAME
    )
    path = manager.save(checkpoint_number=int(step.numpy()))
    record = {
        "workdir": workdir,
        "source_checkpoint": source,
        "checkpoint": path,
        "step": int(step.numpy()),
        "num_images": int(len(images)),
        "batch_size": int(batch_size),
        "noise_seed": int(seed),
        "num_layers": len(layers),
        "layers": layers,
        **(metadata or {}),
        "wall_s": round(time.time() - start, 1),
    }
    with tf.io.gfile.GFile(os.path.join(output, RECALIBRATION_FILE), "w") as f:
        json.dump(record, f, indent=1)
    return record

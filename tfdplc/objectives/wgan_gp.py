"""WGAN-GP: the dual form (eq. 5) of W_d for learning the DPLC generator G* (Tschannen et al. 2018).

The critic update with the gradient penalty of Gulrajani et al. (2017) is shared with Wasserstein++.
"""

from typing import Callable, Dict, Optional, Tuple

import gin
import tensorflow as tf

from tfdplc import losses
from tfdplc.objectives.base import GeneratorObjective, Objective, accepts_seed

__all__ = [
    "WGANGP",
    "critic_update",
    "objective_critic_update",
    "repeat_critic_updates",
    "split_critic_batches",
]


def split_critic_batches(images: tf.Tensor, n_critic: int) -> tf.Tensor:
    """Splits one (per-replica) input batch of n_critic * b images into n_critic mini-batches of b.

    Keras `fit` hands one batch to each `train_step`; the objectives with n_critic critic updates per
    generator update therefore read n_critic mini-batches from one input batch (the configs set
    `input_pipeline.batch_size = n_critic * b`): mini-batch t is images[t * b : (t + 1) * b].

    Args:
      images: (n_critic * b, H, W, C) images.
      n_critic: number of critic mini-batches.

    Returns:
      A (n_critic, b, H, W, C) tensor.

    Raises:
      ValueError: if the static batch size is not a multiple of n_critic (under a distribution strategy,
        the per-replica batch must be).
    """
    batch = images.shape[0]
    message = (
        f"The (per-replica) batch of images must be a multiple of n_critic = {n_critic}: "
        "set input_pipeline.batch_size = n_critic * b (times the number of replicas)."
    )
    if batch is not None and batch % n_critic:
        raise ValueError(f"{message} Got {batch} images.")
    dynamic = tf.shape(images)[0]
    # A dynamic batch (e.g. a last partial batch) is checked when the step runs.
    with tf.control_dependencies([tf.debugging.assert_equal(dynamic % n_critic, 0, message=message)]):
        shape = tf.concat([[n_critic, dynamic // n_critic], tf.shape(images)[1:]], axis=0)
        return tf.reshape(images, shape)


def repeat_critic_updates(n_critic: int, update: Callable[[tf.Tensor], None]) -> None:
    """Runs `update(t)` for t = 0, ..., n_critic - 1 inside a training step: the critic loop of WGAN-GP.

    With n_critic = 1 `update(tf.constant(0))` is called once, with no graph loop around it. Otherwise one
    `tf.while_loop` holds one traced copy of the (double-backprop) update: unrolling n_critic copies took
    minutes to trace and optimise on CPU. `update` may not create variables (build optimizers first).

    Under a strategy with several replicas (MirroredStrategy over GPUs or logical CPUs, multi-worker), the
    updates are unrolled instead: each one aggregates its gradients across replicas (a `merge_call`), which
    TensorFlow does not allow inside a `tf.while_loop` of a traced step ("merge_call called while defining a
    new graph"). The step then traces n_critic copies of the update, once.

    Args:
      n_critic: the number of critic updates (a positive Python int).
      update: one critic update; gets the update's index t as a scalar int32 tensor.
    """

    def body(t):
        update(t)
        return (t + 1,)

    if n_critic == 1:
        update(tf.constant(0))
    elif _replicas_in_sync() > 1:
        for t in range(n_critic):
            update(tf.constant(t))
    else:
        tf.while_loop(lambda t: t < n_critic, body, (tf.constant(0),), parallel_iterations=1)


def _replicas_in_sync() -> int:
    """How many replicas aggregate gradients in the current context (1 outside any strategy)."""
    context = tf.distribute.get_replica_context()
    if context is not None:
        return context.num_replicas_in_sync
    return tf.distribute.get_strategy().num_replicas_in_sync


def critic_update(
    critic: tf.keras.Model,
    optimizer: tf.keras.optimizers.Optimizer,
    real: tf.Tensor,
    fake: tf.Tensor,
    gp_weight: float,
    scale: Callable[[tf.Tensor], tf.Tensor],
    penalty_fn: Callable[..., tf.Tensor] = losses.gradient_penalty,
    seed: Optional[tf.Tensor] = None,
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One Adam step of the WGAN critic with the gradient penalty (DPLC Algorithm 1 lines 8, 11-13).

    L_f = 1/b sum_i f(x^_i) - f(x_i) + lambda_GP (||grad f(x~_i)|| - 1)^2 with x~_i = nu_i x_i +
    (1 - nu_i) x^_i, nu_i ~ U(0, 1) per sample; by default the norm runs over all pixels and channels of
    sample i (`losses.gradient_penalty`, the paper text), `losses.per_pixel_gradient_penalty` is the
    authors'-code convention (see `tfdplc.losses`). Only the critic's variables are updated; `fake` is
    treated as constant. WGAN-GP, Wasserstein++ and GC share this step (as do shift, perceptual and DAL).

    Args:
      critic: f, images -> (b, 1) scores.
      optimizer: the critic's optimizer.
      real: (b, ...) real images x.
      fake: (b, ...) generated images x^.
      gp_weight: lambda_GP.
      scale: maps the loss to the value whose gradient is applied (`Objective.scale_for_replicas`).
      penalty_fn: (critic, real, fake[, seed]) -> the scalar penalty, e.g. `losses.gradient_penalty`.
      seed: stateless seed (shape [2]) of the penalty's interpolation weights nu, passed to `penalty_fn`
        when it takes a `seed` (`objective_critic_update` gives the objective's `next_seed()`, so a resumed
        run draws the nu of the uninterrupted one); None: the penalty draws nu from TF's global generator.

    Returns:
      (L_f, the Wasserstein estimate E f(x) - E f(x^), the gradient penalty), all scalars.
    """
    # Under a mixed-precision policy the critic runs in float16/bfloat16 but its scores, the interpolates,
    # the gradient penalty and the loss are float32.
    real, fake = Objective.float32((real, tf.stop_gradient(fake)))

    def scores(x):
        return Objective.float32(critic(x, training=True))

    with tf.GradientTape() as tape:
        wasserstein_loss = losses.critic_loss(scores(real), scores(fake))
        if seed is not None and accepts_seed(penalty_fn):
            penalty = penalty_fn(scores, real, fake, seed=seed)
        else:
            penalty = penalty_fn(scores, real, fake)
        loss = wasserstein_loss + gp_weight * penalty
        scaled_loss = scale(loss)
    Objective.apply_gradients(optimizer, tape, scaled_loss, critic.trainable_variables)
    return loss, -wasserstein_loss, penalty


def objective_critic_update(
    objective, real: tf.Tensor, fake: tf.Tensor
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`critic_update` with an objective's own critic, critic optimizer, lambda_GP and penalty function.

    For objectives with the attributes `critic`, `optimizer_critic`, `gp_weight` and `gradient_penalty`
    (WGAN-GP, Wasserstein++, GC). The penalty's interpolation weights come from the objective's
    `next_seed()` (exact resume).

    Returns:
      (L_f, the Wasserstein estimate, the gradient penalty), as `critic_update`.
    """
    return critic_update(
        objective.critic,
        objective.optimizer_critic,
        real,
        fake,
        objective.gp_weight,
        objective.scale_for_replicas,
        objective.gradient_penalty,
        seed=objective.next_seed(),
    )


@gin.configurable(module="tfdplc.objectives")
class WGANGP(GeneratorObjective):
    """WGAN with gradient penalty (Gulrajani et al. 2017), the dual form (eq. 5) of W_d in DPLC.

    Per generator iteration: n_critic critic updates (`critic_update`, lambda_GP = 10), each on its own
    mini-batch of b real images and b samples G(z), z ~ P_Z = N(0, I_m); then one generator update on
    L_G = -1/b sum_i f(G(z_i)) with fresh z. Every z and the penalty's nu come from the objective's
    `random_generator` (exact resume). Table 2 of DPLC: Adam 1e-4 for G and f, beta1 = 0.5,
    beta2 = 0.9, b = 64, n_critic = 5, 100k generator iterations, no learning-rate decay.

    Batch convention: Keras `fit` hands one batch per `train_step`, so the input batch holds
    n_critic * b images and `train_step` splits it into the n_critic critic mini-batches
    (`split_critic_batches`; the configs set `input_pipeline.batch_size = n_critic * b`). One trainer step
    is thus one generator iteration as Table 2 counts them, and the critic optimizer's `iterations` grow
    n_critic times faster than the generator's (scale the boundaries of a critic schedule accordingly).

    WGAN-GP has no encoder: `can_reconstruct` is False and `reconstruct` raises. Calling the model on a
    batch returns as many samples G(z) (the images themselves are not used).
    """

    can_reconstruct = False

    def __init__(
        self,
        generator: tf.keras.Model = gin.REQUIRED,
        critic: tf.keras.Model = gin.REQUIRED,
        generator_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        critic_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        n_critic: int = 5,
        gp_weight: float = 10.0,
        gradient_penalty: Callable[..., tf.Tensor] = losses.gradient_penalty,
        name: Optional[str] = "wgan_gp",
    ):
        """Initialises the objective.

        Args:
          generator: G, z (B, m) -> images in [0, 1].
          critic: f, images -> (B, 1) scores (no batch norm: the penalty is per sample).
          generator_optimizer: the optimizer of G (Table 2: Adam 1e-4, 0.5, 0.9).
          critic_optimizer: the optimizer of f (Table 2: Adam 1e-4, 0.5, 0.9).
          n_critic: critic updates per generator update (5).
          gp_weight: lambda_GP (10).
          gradient_penalty: the penalty function and its scale convention (`tfdplc.losses`): the
            per-sample `gradient_penalty` of Gulrajani et al., where lambda_GP = 10 was tuned, or the
            authors'-code `per_pixel_gradient_penalty`.
          name: Keras model name.

        Raises:
          ValueError: if n_critic < 1 or gp_weight < 0.
        """
        super().__init__(name=name)
        if int(n_critic) != n_critic or n_critic < 1:
            raise ValueError(f"n_critic must be a positive integer, got {n_critic!r}.")
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight!r}.")
        self.generator = generator
        self.critic = critic
        self.optimizer_generator = generator_optimizer
        self.optimizer_critic = critic_optimizer
        self.n_critic = int(n_critic)
        self.gp_weight = float(gp_weight)
        self.gradient_penalty = gradient_penalty
        # Creates the critic optimizer's slots now: the critic steps run inside a graph loop, where
        # variables cannot be created.
        self.optimizer_critic.build(self.critic.trainable_variables)
        self.critic_loss_tracker = tf.keras.metrics.Mean("critic_loss")
        self.wasserstein_tracker = tf.keras.metrics.Mean("wasserstein")
        self.penalty_tracker = tf.keras.metrics.Mean("gradient_penalty")
        self.generator_loss_tracker = tf.keras.metrics.Mean("generator_loss")

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"generator": self.optimizer_generator, "critic": self.optimizer_critic}

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return [
            self.critic_loss_tracker,
            self.wasserstein_tracker,
            self.penalty_tracker,
            self.generator_loss_tracker,
        ]

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:  # noqa: D102
        return self.float32(self.generator(self.sample_prior(tf.shape(images)[0]), training=training))

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:  # noqa: D102
        raise NotImplementedError("WGAN-GP has no encoder: it cannot reconstruct images (use `sample`).")

    def train_step(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(images)
        batches = split_critic_batches(images, self.n_critic)

        def critic_iteration(t):
            real = batches[t]
            fake = self.generator(self.sample_prior(tf.shape(real)[0]), training=True)
            loss, wasserstein, penalty = objective_critic_update(self, real, fake)
            self.critic_loss_tracker.update_state(loss)
            self.wasserstein_tracker.update_state(wasserstein)
            self.penalty_tracker.update_state(penalty)

        repeat_critic_updates(self.n_critic, critic_iteration)

        z = self.sample_prior(tf.shape(batches)[1])
        with tf.GradientTape() as tape:
            generator_loss = losses.generator_loss(
                self.float32(self.critic(self.generator(z, training=True), training=True))
            )
            scaled_loss = self.scale_for_replicas(generator_loss)
        self.apply_gradients(self.optimizer_generator, tape, scaled_loss, self.generator.trainable_variables)
        self.generator_loss_tracker.update_state(generator_loss)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        """Critic estimate of W on held-out images against samples (no penalty, no update)."""
        images = self.images_of(images)
        real_scores = self.float32(self.critic(images, training=False))
        fake_scores = self.float32(self.critic(self(images, training=False), training=False))
        self.wasserstein_tracker.update_state(-losses.critic_loss(real_scores, fake_scores))
        self.generator_loss_tracker.update_state(losses.generator_loss(fake_scores))
        return {m.name: m.result() for m in (self.wasserstein_tracker, self.generator_loss_tracker)}

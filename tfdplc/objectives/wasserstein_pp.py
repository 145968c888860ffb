"""Wasserstein++ (DPLC eq. 11, Algorithm 1): a convex combination of the WGAN and WAE forms of W_d."""

from typing import Callable, Dict, Optional, Tuple

import gin
import tensorflow as tf

from tfdplc import losses
from tfdplc.objectives.base import GeneratorObjective
from tfdplc.objectives.wgan_gp import objective_critic_update, split_critic_batches

__all__ = ["WassersteinPP"]


@gin.configurable(module="tfdplc.objectives")
class WassersteinPP(GeneratorObjective):
    """Wasserstein++ of Tschannen et al. (2018), Algorithm 1 of Appendix C.

    One `train_step` is one iteration of Algorithm 1's outer loop:
      for t = 1..n_critic (lines 3-14), on the t-th critic mini-batch x:
        z_bar = F(x), z ~ P_Z = N(0, I_m), eta_i ~ U(0, 1) and nu_i ~ U(0, 1) PER SAMPLE,
        z~_i = eta_i z_i + (1 - eta_i) z_bar_i, x^ = G(z~), and one Adam step of the critic on
        L_f = 1/b sum_i f(x^_i) - f(x_i) + lambda_GP (||grad f(x~_i)|| - 1)^2, x~_i = nu_i x_i + (1-nu_i) x^_i
        (the critic sees G(Z~), not G(Z): choice (i) of Section 4);
      then (lines 15-19), with x, z of the LAST critic iteration (Algorithm 1 reuses them; z_bar = F(x) is
      recomputed under the tape, F being unchanged by the critic updates):
        L_d = 1/b sum_i ||x_i - G(z_bar_i)||,  L_MMD = MMD_IMQ(z, z_bar) (U-statistic),
        L_WGAN = -1/b sum_i f(G(z_bar_i))  (G is trained only on F(X), choice (ii)),
        theta (G) <- Adam((1 - gamma) L_d + gamma L_WGAN),
        phi (F)   <- Adam((1 - gamma)(L_d + lambda_MMD L_MMD))   (F's update ignores the critic).

    Batch convention (as `WGANGP`): the input batch holds n_critic * b images, split into the n_critic
    critic mini-batches in order; the G/F step uses the last one. Configs set
    `input_pipeline.batch_size = n_critic * b`.

    Table 2 (CelebA): alpha_F = alpha_G = 3e-4, alpha_f = 1e-4, beta1 = 0.5, beta2 = 0.999,
    lambda_MMD = 100, lambda_GP = 10, b = 256, n_critic = 5, 25k iterations, x0.4 at 15k and 21k;
    gamma = 2.5e-5 (Section 5). LSUN: lambda_MMD = 300, gamma = 1e-4, iterations and schedule doubled.

    `sample_eta` and `sample_prior` are the only random draws besides the penalty's nu; tests override them
    to check the interpolation, and `weighted_losses` holds lines 18-19's weighting. All three draw from
    the objective's `random_generator` (exact resume).
    """

    def __init__(
        self,
        encoder: tf.keras.Model = gin.REQUIRED,
        generator: tf.keras.Model = gin.REQUIRED,
        critic: tf.keras.Model = gin.REQUIRED,
        encoder_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        generator_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        critic_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        gamma: float = 2.5e-5,
        mmd_weight: float = 100.0,
        gp_weight: float = 10.0,
        n_critic: int = 5,
        distortion: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] = losses.euclidean_distance,
        gradient_penalty: Callable[..., tf.Tensor] = losses.gradient_penalty,
        name: Optional[str] = "wasserstein_pp",
    ):
        """Initialises the objective.

        Args:
          encoder: F, images -> z (B, m).
          generator: G, z (B, m) -> images in [0, 1].
          critic: f, images -> (B, 1) scores (no batch norm: the penalty is per sample).
          encoder_optimizer: the optimizer of F (phi).
          generator_optimizer: the optimizer of G (theta).
          critic_optimizer: the optimizer of f (psi).
          gamma: the WGAN weight of eq. (11), in [0, 1].
          mmd_weight: lambda_MMD.
          gp_weight: lambda_GP.
          n_critic: critic updates per G/F update.
          distortion: d(x, x_hat) -> scalar batch mean; DPLC uses the Euclidean distance (line 15). Its
            scale convention (`tfdplc.losses`) fixes what gamma and lambda_MMD mean: Table 2's values
            were tuned with the authors'-code `losses.batch_rmse_pm1`.
          gradient_penalty: the critic's penalty function (`losses.gradient_penalty`, per sample as line
            12 writes it, or the authors'-code `losses.per_pixel_gradient_penalty`).
          name: Keras model name.

        Raises:
          ValueError: on gamma outside [0, 1], negative weights or n_critic < 1.
        """
        super().__init__(name=name)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}.")
        if mmd_weight < 0 or gp_weight < 0:
            raise ValueError(f"mmd_weight and gp_weight must be >= 0, got {mmd_weight!r}, {gp_weight!r}.")
        if int(n_critic) != n_critic or n_critic < 1:
            raise ValueError(f"n_critic must be a positive integer, got {n_critic!r}.")
        self.encoder = encoder
        self.generator = generator
        self.critic = critic
        self.optimizer_encoder = encoder_optimizer
        self.optimizer_generator = generator_optimizer
        self.optimizer_critic = critic_optimizer
        self.gamma = float(gamma)
        self.mmd_weight = float(mmd_weight)
        self.gp_weight = float(gp_weight)
        self.n_critic = int(n_critic)
        self.distortion = distortion
        self.gradient_penalty = gradient_penalty
        # Creates the critic optimizer's slots now: the critic steps run inside a graph loop, where
        # variables cannot be created.
        self.optimizer_critic.build(self.critic.trainable_variables)
        self.loss_tracker = tf.keras.metrics.Mean("loss")
        self.distortion_tracker = tf.keras.metrics.Mean("distortion")
        self.mmd_tracker = tf.keras.metrics.Mean("mmd")
        self.wgan_tracker = tf.keras.metrics.Mean("wgan")
        self.critic_loss_tracker = tf.keras.metrics.Mean("critic_loss")
        self.wasserstein_tracker = tf.keras.metrics.Mean("wasserstein")
        self.penalty_tracker = tf.keras.metrics.Mean("gradient_penalty")
        self.mse_tracker = tf.keras.metrics.Mean("mse")

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {
            "encoder": self.optimizer_encoder,
            "generator": self.optimizer_generator,
            "critic": self.optimizer_critic,
        }

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return [
            self.loss_tracker,
            self.distortion_tracker,
            self.mmd_tracker,
            self.wgan_tracker,
            self.critic_loss_tracker,
            self.wasserstein_tracker,
            self.penalty_tracker,
            self.mse_tracker,
        ]

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """G(F(x)), the unconstrained reconstruction (DPLC Table 1)."""
        return self.float32(self.generator(self.encoder(images, training=training), training=training))

    def sample_eta(self, batch_size) -> tf.Tensor:
        """Draws the interpolation weights eta_i ~ U(0, 1), one per sample (Algorithm 1 line 7).

        They come from the objective's `random_generator` (advancing it).

        Returns:
          A (batch_size, 1) tensor.
        """
        return self.random_generator.uniform(tf.stack([tf.cast(batch_size, tf.int32), 1]))

    @staticmethod
    def interpolate_latents(z: tf.Tensor, z_bar: tf.Tensor, eta: tf.Tensor) -> tf.Tensor:
        """z~_i = eta_i z_i + (1 - eta_i) z_bar_i (Algorithm 1 line 9).

        Args:
          z: (b, m) prior draws.
          z_bar: (b, m) encoded codes F(x).
          eta: (b, 1) weights.

        Returns:
          The (b, m) interpolated codes.
        """
        return eta * z + (1.0 - eta) * z_bar

    def weighted_losses(
        self, distortion: tf.Tensor, mmd: tf.Tensor, wgan: tf.Tensor
    ) -> Tuple[tf.Tensor, tf.Tensor]:
        """The losses of Algorithm 1 lines 18-19.

        Args:
          distortion: L_d.
          mmd: L_MMD.
          wgan: L_WGAN.

        Returns:
          (G's loss (1 - gamma) L_d + gamma L_WGAN, F's loss (1 - gamma)(L_d + lambda_MMD L_MMD)).
        """
        generator_loss = (1.0 - self.gamma) * distortion + self.gamma * wgan
        encoder_loss = (1.0 - self.gamma) * (distortion + self.mmd_weight * mmd)
        return generator_loss, encoder_loss

    def train_step(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(images)
        batches = split_critic_batches(images, self.n_critic)
        batch = tf.shape(batches)[1]

        def critic_iteration(t, previous_z):
            real = batches[t]
            z_bar = self.float32(self.encoder(real, training=True))
            z = tf.ensure_shape(self.sample_prior(batch), previous_z.shape)
            fake = self.generator(self.interpolate_latents(z, z_bar, self.sample_eta(batch)), training=True)
            loss, wasserstein, penalty = objective_critic_update(self, real, fake)
            self.critic_loss_tracker.update_state(loss)
            self.wasserstein_tracker.update_state(wasserstein)
            self.penalty_tracker.update_state(penalty)
            return t + 1, z

        # A graph loop, not n_critic unrolled copies of the double-backprop critic step (tracing and
        # optimising the unrolled graph took minutes on CPU). The prior draw z of the last iteration
        # comes out of the loop: line 16's L_MMD uses it.
        initial_z = tf.zeros(tf.stack([batch, self.latent_dim]))
        _, z = tf.while_loop(lambda t, _: t < self.n_critic, critic_iteration, (tf.constant(0), initial_z))
        real = batches[-1]
        with tf.GradientTape(persistent=True) as tape:
            # Under mixed precision the networks' outputs are cast: distortion, MMD kernel sums, critic
            # scores and losses stay float32.
            z_bar = self.float32(self.encoder(real, training=True))
            reconstructions = self.float32(self.generator(z_bar, training=True))
            distortion = self.distortion(real, reconstructions)
            mmd = losses.mmd_imq(z, z_bar)
            wgan = losses.generator_loss(self.float32(self.critic(reconstructions, training=True)))
            generator_loss, encoder_loss = self.weighted_losses(distortion, mmd, wgan)
            scaled_generator_loss = self.scale_for_replicas(generator_loss)
            scaled_encoder_loss = self.scale_for_replicas(encoder_loss)
        generator_vars = self.generator.trainable_variables
        encoder_vars = self.encoder.trainable_variables
        generator_grads = self.gradients(
            self.optimizer_generator, tape, scaled_generator_loss, generator_vars
        )
        encoder_grads = self.gradients(self.optimizer_encoder, tape, scaled_encoder_loss, encoder_vars)
        del tape
        self.optimizer_generator.apply_gradients(zip(generator_grads, generator_vars))
        self.optimizer_encoder.apply_gradients(zip(encoder_grads, encoder_vars))
        total = generator_loss + (1.0 - self.gamma) * self.mmd_weight * mmd
        return self._update_metrics(real, reconstructions, total, distortion, mmd, wgan)

    def test_step(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(images)
        z_bar = self.float32(self.encoder(images, training=False))
        reconstructions = self.float32(self.generator(z_bar, training=False))
        z = self.sample_prior(tf.shape(images)[0])
        distortion = self.distortion(images, reconstructions)
        # A last validation batch of one image has no U-statistic (it would divide by b(b-1) = 0).
        mmd = tf.cond(tf.shape(z)[0] > 1, lambda: losses.mmd_imq(z, z_bar), lambda: tf.zeros([]))
        wgan = losses.generator_loss(self.float32(self.critic(reconstructions, training=False)))
        generator_loss, _ = self.weighted_losses(distortion, mmd, wgan)
        total = generator_loss + (1.0 - self.gamma) * self.mmd_weight * mmd
        logs = self._update_metrics(images, reconstructions, total, distortion, mmd, wgan)
        return {k: logs[k] for k in ("loss", "distortion", "mmd", "wgan", "mse")}

    def _update_metrics(self, images, reconstructions, total, distortion, mmd, wgan) -> Dict[str, tf.Tensor]:
        self.loss_tracker.update_state(total)
        self.distortion_tracker.update_state(distortion)
        self.mmd_tracker.update_state(mmd)
        self.wgan_tracker.update_state(wgan)
        self.mse_tracker.update_state(losses.squared_error(images, reconstructions))
        return {m.name: m.result() for m in self.metrics}

"""The base class of every training objective."""

from typing import Dict

import tensorflow as tf

__all__ = ["Objective"]


class Objective(tf.keras.Model):
    """A Keras model whose `train_step` holds one paper's update rule.

    Subclasses own their networks and optimizers (injected by gin), implement `train_step` / `test_step`,
    and expose:
      - `reconstruct(images)`: the decoded images for a batch (used by evaluation and image summaries);
      - `rate_bits`: the exact rate in bits per image for fixed-rate codes.
    The trainer calls `compile()` with no optimizer: the objective passes its own to Keras.
    """

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:
        """The objective's optimizers by role (e.g. {"autoencoder": ..., "critic": ...})."""
        raise NotImplementedError

    def compile(self, **kwargs):  # noqa: D102 - see Keras.
        optimizers = self.optimizers()
        # Keras wants one optimizer in `compile`; the others are tracked as attributes of the subclass.
        super().compile(optimizer=next(iter(optimizers.values())), **kwargs)

    @property
    def rate_bits(self) -> float:
        """Exact rate in bits per image of the fixed-rate code."""
        raise NotImplementedError

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:
        """Encodes and decodes a batch in inference mode."""
        return self(images, training=False)

    @staticmethod
    def scale_for_replicas(loss: tf.Tensor) -> tf.Tensor:
        """Scales a per-replica mean loss so that summing gradients over replicas averages them.

        Keras optimizers all-reduce gradients by SUM across replicas; a custom `train_step` must divide
        its loss by the number of replicas (Keras's compiled losses do the same).
        """
        return loss / tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)

"""Learning-rate schedules as the papers state them."""

from typing import Sequence

import gin
import tensorflow as tf

__all__ = ["step_decay"]


@gin.configurable(module="tfdplc.train")
def step_decay(
    learning_rate: float, boundaries: Sequence[int] = (), factor: float = 1.0
) -> tf.keras.optimizers.schedules.LearningRateSchedule | float:
    """A piecewise-constant schedule multiplying the rate by `factor` at each boundary.

    DPLC Table 2 writes "x0.4@22k;38k": `step_decay(1e-3, boundaries=(22000, 38000), factor=0.4)`.
    Liu et al. (App. B.3) decay by a factor of 5 once: `factor=0.2`. Boundaries count the optimizer's own
    update steps (for a critic updated n_critic times per generator step, scale them accordingly).

    Args:
      learning_rate: the initial learning rate.
      boundaries: increasing step counts at which the rate is multiplied by `factor`.
      factor: multiplicative decay applied at every boundary.

    Returns:
      A Keras schedule, or the plain float when there are no boundaries.

    Raises:
      ValueError: if the boundaries are not strictly increasing positive integers.
    """
    boundaries = [int(b) for b in boundaries]
    if any(b <= 0 for b in boundaries) or any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
        raise ValueError(f"boundaries must be strictly increasing positive steps, got {boundaries}.")
    if not boundaries:
        return learning_rate
    values = [learning_rate * factor**i for i in range(len(boundaries) + 1)]
    return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)

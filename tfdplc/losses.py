"""Losses shared by the objectives: distortions (more come with the generative objectives)."""

import gin
import tensorflow as tf

__all__ = ["euclidean_distance", "squared_error", "per_example_squared_error"]

# Keeps the gradient of the Euclidean norm finite at a perfect reconstruction (d/dx sqrt(x) at 0 is inf).
_NORM_EPSILON = 1e-12


def per_example_squared_error(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Mean squared error of each example over all its pixels and channels.

    Args:
      x: a batch of images, shape (B, ...).
      y: a batch of the same shape.

    Returns:
      A (B,) float tensor.
    """
    x, y = tf.convert_to_tensor(x), tf.cast(y, tf.convert_to_tensor(x).dtype)
    return tf.reduce_mean(tf.reshape(tf.math.squared_difference(x, y), [tf.shape(x)[0], -1]), axis=1)


@gin.configurable(module="tfdplc.losses")
def euclidean_distance(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Batch mean of the Euclidean distance ||x_i - y_i||_2 over all pixels and channels.

    This is the distortion d of DPLC (Tschannen et al. 2018, Section 5: "The Euclidean distance is used as
    distortion measure"; Algorithm 1 line 15: L_d = 1/b sum_i ||x_i - G(z_i)||). A tiny epsilon inside the
    square root keeps the gradient finite when x_i == y_i.

    Args:
      x: a batch of images, shape (B, ...).
      y: a batch of the same shape.

    Returns:
      A scalar tensor.
    """
    x = tf.convert_to_tensor(x)
    diff = tf.reshape(x - tf.cast(y, x.dtype), [tf.shape(x)[0], -1])
    return tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(diff), axis=1) + _NORM_EPSILON))


@gin.configurable(module="tfdplc.losses")
def squared_error(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Mean squared error over the batch, pixels and channels (the MSE of Yan et al. and Liu et al.).

    Args:
      x: a batch of images.
      y: a batch of the same shape.

    Returns:
      A scalar tensor.
    """
    return tf.reduce_mean(per_example_squared_error(x, y))

"""tfdplc: generative (distribution-preserving) lossy compression in TensorFlow/Keras.

Importing the package registers every gin configurable (layers, networks, objectives, trainer).
"""

import gin.tf.external_configurables  # noqa: F401 - registers tf.keras.optimizers.* with gin

from tfdplc import data, layers, losses, metrics, nets, objectives, train

__version__ = "0.1.0"

__all__ = ["data", "layers", "losses", "metrics", "nets", "objectives", "train", "__version__"]

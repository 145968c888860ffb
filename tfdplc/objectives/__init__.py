"""Training objectives: one module per paper objective, each a Keras model with its own train_step."""

from tfdplc.objectives.base import Objective
from tfdplc.objectives.cae import CAE

__all__ = ["CAE", "Objective"]

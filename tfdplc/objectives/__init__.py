"""Training objectives: one module per paper objective, each a Keras model with its own train_step."""

from tfdplc.objectives.base import Objective
from tfdplc.objectives.cae import CAE
from tfdplc.objectives.dplc import DPLC, load_generator
from tfdplc.objectives.gc import GC
from tfdplc.objectives.lambdas import PAPER_LAMBDAS, read_mse, scaled_lambda

__all__ = [
    "CAE",
    "DPLC",
    "GC",
    "Objective",
    "PAPER_LAMBDAS",
    "load_generator",
    "read_mse",
    "scaled_lambda",
]

"""Training objectives: one module per paper objective, each a Keras model with its own train_step."""

from tfdplc.objectives.base import GeneratorObjective, Objective
from tfdplc.objectives.cae import CAE
from tfdplc.objectives.dal import DAL
from tfdplc.objectives.dplc import DPLC, load_generator
from tfdplc.objectives.gc import GC
from tfdplc.objectives.lambdas import PAPER_LAMBDAS, read_mse, scaled_lambda
from tfdplc.objectives.perceptual import PerceptualG1, PerceptualG2
from tfdplc.objectives.perceptual_joint import PerceptualJoint
from tfdplc.objectives.restoration import Restoration
from tfdplc.objectives.shift import ShiftCompression, load_shift_codec
from tfdplc.objectives.shift_decomposition import ShiftDecomposition
from tfdplc.objectives.wae import WAE
from tfdplc.objectives.wasserstein_pp import WassersteinPP
from tfdplc.objectives.wgan_gp import WGANGP

__all__ = [
    "CAE",
    "DAL",
    "DPLC",
    "GC",
    "GeneratorObjective",
    "Objective",
    "PAPER_LAMBDAS",
    "PerceptualG1",
    "PerceptualG2",
    "PerceptualJoint",
    "load_generator",
    "read_mse",
    "Restoration",
    "ShiftCompression",
    "ShiftDecomposition",
    "load_shift_codec",
    "scaled_lambda",
    "WAE",
    "WGANGP",
    "WassersteinPP",
]

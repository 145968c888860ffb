"""Training: strategies, schedules, callbacks and the gin-configured trainer."""

from tfdplc.train import checks, config, precision
from tfdplc.train.callbacks import (
    GoodCheckpoint,
    ImageGrid,
    NonFiniteGuard,
    Scalars,
    StepClock,
    image_grid,
    spread_images,
)
from tfdplc.train.checks import GinConfigError
from tfdplc.train.config import parse_gin, split_cpu
from tfdplc.train.schedules import step_decay
from tfdplc.train.strategy import STRATEGIES, is_chief, make_strategy
from tfdplc.train.trainer import (
    RUN_PARAMETERS,
    CheckpointMismatchError,
    ConfigChangeError,
    NonFiniteLossError,
    build_objective,
    load_workdir_config,
    restore_objective,
    train,
)

__all__ = [
    "CheckpointMismatchError",
    "ConfigChangeError",
    "GinConfigError",
    "RUN_PARAMETERS",
    "StepClock",
    "Scalars",
    "checks",
    "config",
    "parse_gin",
    "precision",
    "split_cpu",
    "spread_images",
    "GoodCheckpoint",
    "ImageGrid",
    "NonFiniteGuard",
    "NonFiniteLossError",
    "STRATEGIES",
    "build_objective",
    "image_grid",
    "is_chief",
    "load_workdir_config",
    "make_strategy",
    "restore_objective",
    "step_decay",
    "train",
]

"""Training: strategies, schedules, callbacks and the gin-configured trainer."""

from tfdplc.train.callbacks import GoodCheckpoint, ImageGrid, NonFiniteGuard, image_grid
from tfdplc.train.schedules import step_decay
from tfdplc.train.strategy import STRATEGIES, is_chief, make_strategy
from tfdplc.train.trainer import (
    NonFiniteLossError,
    build_objective,
    load_workdir_config,
    restore_objective,
    train,
)

__all__ = [
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

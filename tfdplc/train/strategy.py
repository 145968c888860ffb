"""Chooses the `tf.distribute` strategy a training run uses."""

import json
import os

import gin
import tensorflow as tf

__all__ = ["STRATEGIES", "make_strategy", "is_chief"]

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")


@gin.configurable(module="tfdplc.train")
def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Creates a distribution strategy by name.

    Args:
      name: one of `STRATEGIES`.
        - "auto": `MultiWorkerMirroredStrategy` when `TF_CONFIG` names a cluster, else `MirroredStrategy`
          when more than one GPU (or logical CPU device set up by the caller) is visible, else the default
          strategy.
        - "default": the default (no-op) strategy of the process.
        - "one_device": `OneDeviceStrategy` on the first GPU, or the CPU.
        - "mirrored": `MirroredStrategy` over all local GPUs, or over all logical CPU devices when there
          is no GPU (so several logical CPU devices exercise the same code path as several GPUs).
        - "multi_worker": `MultiWorkerMirroredStrategy`; reads the cluster from `TF_CONFIG`.

    Returns:
      The strategy.

    Raises:
      ValueError: on an unknown name.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")
    # Decide on multi-worker before listing devices: listing starts TF's context, and
    # MultiWorkerMirroredStrategy must be created before that.
    if name == "multi_worker" or (name == "auto" and _tf_config_has_cluster()):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if name == "auto":
        if len(gpus) > 1 or (not gpus and len(cpus) > 1):
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else cpus[0].name)
    devices = [d.name for d in (gpus or cpus)]  # "mirrored"
    return tf.distribute.MirroredStrategy(devices)


def _tf_config_has_cluster() -> bool:
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    return bool(config.get("cluster"))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process should write shared outputs (checkpoints, summaries, configs).

    Only the chief (worker 0 of a multi-worker cluster, or the single process otherwise) writes to the
    workdir; other workers write their copies of collective saves to a scratch folder.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not _tf_config_has_cluster():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0)

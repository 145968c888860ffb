"""Writes TensorBoard event files with chosen wall times, for tests of the readers in tfdplc.plots."""

import tensorflow as tf
from tensorflow.core.util import event_pb2


def write_events(path, wall_times):
    """Writes one event per wall time (steps 0, 1, ...) to the event file `path`."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for step, wall_time in enumerate(wall_times):
            writer.write(event_pb2.Event(wall_time=wall_time, step=step).SerializeToString())

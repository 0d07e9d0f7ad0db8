"""Run a :class:`~caffe2keras.training.Training` iteration by iteration, as Caffe's ``Solver::Step``
does, with what Caffe reports: each net output, the smoothed loss, the rate."""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from caffe2keras.errors import ModelFileError
from caffe2keras.layers.training_model import TOTAL_LOSS

# Called after each Caffe iteration with its index, every net output (the last sub-batch's)
# and the loss Caffe reports for it (the mean over sub-batches of the weighted sum).
OnIteration = Callable[[int, dict[str, float], float], None]


@dataclass
class TrainingLog:
    """Each net output and the total loss, one value per iteration run."""

    outputs: dict[str, list[float]] = field(default_factory=dict)
    total_loss: list[float] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        """The outputs as float32 arrays, as real Caffe's golden ``losses.npz`` holds them."""
        return {name: np.asarray(values, np.float32) for name, values in self.outputs.items()}


class _Iterations(keras.callbacks.Callback):
    """Turns Keras steps into Caffe iterations of ``iter_size`` forward/backward passes each."""

    def __init__(self, blob_names, output_names, iter_size: int, first: int, log: TrainingLog, on_iteration):
        super().__init__()
        self.names = list(zip(output_names, blob_names))
        self.iter_size, self.first, self.log, self.on_iteration = iter_size, first, log, on_iteration
        self.sub_losses: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.sub_losses.append(float(logs[TOTAL_LOSS]))
        if (batch + 1) % self.iter_size:
            return
        outputs = {blob: float(logs[name]) for name, blob in self.names}
        total = float(np.mean(self.sub_losses))
        self.sub_losses = []
        for blob, value in outputs.items():
            self.log.outputs.setdefault(blob, []).append(value)
        self.log.total_loss.append(total)
        if self.on_iteration is not None:
            self.on_iteration(self.first + batch // self.iter_size, outputs, total)


def completed_iterations(training) -> int:
    """Caffe iterations the optimizer has applied (non-zero after :func:`resume`)."""
    optimizer = training.model.optimizer
    return int(keras.ops.convert_to_numpy(optimizer.iterations)) if optimizer.built else 0


def resume(training, snapshot: str | os.PathLike) -> int:
    """Load the weights and solver state of a ``.keras`` snapshot of the same net; returns its iteration."""
    model = training.model
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(snapshot)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFileError(snapshot, f"cannot resume from it: not a snapshot of this net ({exc}).") from None
    return completed_iterations(training)


def run(training, on_iteration: OnIteration | None = None, callbacks=()) -> TrainingLog:
    """Run the iterations from the optimizer's current one to ``training.iterations``."""
    start = completed_iterations(training)
    log = TrainingLog()
    remaining = training.iterations - start
    if remaining <= 0:
        return log
    iter_size = training.solver.iter_size
    dataset = training.dataset
    dataset.first_step = start * iter_size
    dataset.steps = remaining * iter_size
    blobs = [ref.name for ref in training.net.graph.outputs]
    steps = _Iterations(blobs, training.model.output_names, iter_size, start, log, on_iteration)
    # shuffle=False: Keras would otherwise reorder a PyDataset's batches, and Caffe reads them in order.
    training.model.fit(
        dataset, epochs=1, steps_per_epoch=dataset.steps, shuffle=False, verbose=0, callbacks=[steps, *callbacks]
    )
    return log


class SmoothedLoss:
    """Caffe's displayed loss: the mean of the last ``average_loss`` iterations' losses."""

    def __init__(self, average_loss: int):
        self.window = collections.deque(maxlen=max(int(average_loss), 1))

    def add(self, loss: float) -> float:
        self.window.append(loss)
        return float(np.mean(self.window))

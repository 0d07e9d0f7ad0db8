"""Train a Caffe net in Keras as Caffe's solver would: :func:`from_solver`.

See docs/training.md. The solver becomes a :class:`~caffe2keras.layers.CaffeSolver` with a
:class:`~caffe2keras.layers.CaffeLearningRate`, the TRAIN net a
:class:`~caffe2keras.layers.CaffeTrainingModel`, its data layers ``keras.utils.PyDataset``s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from caffe2keras.default_backend import use_default_backend

use_default_backend()

import keras  # noqa: E402

from caffe2keras.caffe import read_weights  # noqa: E402
from caffe2keras.caffe.limits import check_path_type  # noqa: E402
from caffe2keras.errors import ArgumentError, NetError, WeightsError, about_file  # noqa: E402
from caffe2keras.framework_internals import tensorflow_left_unimported  # noqa: E402
from caffe2keras.graph import DATA_LAYER_TYPES, layer_is_kept  # noqa: E402
from caffe2keras.layers import CaffeLearningRate, CaffeSolver  # noqa: E402
from caffe2keras.layout import Layout  # noqa: E402
from caffe2keras.training.data import data_layer_batches, memory_batches  # noqa: E402
from caffe2keras.training.net import TRAIN, TrainingNet, build_training_net, train_graph  # noqa: E402
from caffe2keras.training.solver import Solver, read_solver_file  # noqa: E402
from caffe2keras.training.testing import TestNet, test_net_of  # noqa: E402

PathLike = str | os.PathLike

__all__ = ["Training", "from_solver", "optimizer_of"]


@dataclass
class Training:
    """What :func:`from_solver` sets up; unpacks as ``model, datasets, iterations``.

    Attributes:
        model: the compiled :class:`~caffe2keras.layers.CaffeTrainingModel`.
        datasets: ``{data layer name: dataset}``; :attr:`dataset` is the one ``fit`` takes.
        iterations: Caffe's iterations to run (``max_iter``); ``fit`` runs ``steps`` Keras steps.
        solver: the solver's settings.
        net: the model with the map between its variables and Caffe's blobs (for ``.caffemodel``).
        test_net: the TEST phase of the net, run every ``test_interval`` iterations, or None.
    """

    model: keras.Model
    datasets: dict[str, keras.utils.PyDataset]
    iterations: int
    solver: Solver
    net: TrainingNet
    test_net: TestNet | None = None

    def __iter__(self):
        return iter((self.model, self.datasets, self.iterations))

    @property
    def dataset(self) -> keras.utils.PyDataset:
        return next(iter(self.datasets.values()))

    def learning_rate(self, iteration: int) -> float:
        """The rate of Caffe iteration ``iteration``, before ``lr_mult``."""
        schedule = self.model.optimizer.schedule
        return float(schedule(iteration * self.solver.iter_size))

    @property
    def steps(self) -> int:
        """Keras steps (forward/backward passes): ``iterations * iter_size``."""
        return self.iterations * self.solver.iter_size


def from_solver(
    solver: PathLike,
    weights: PathLike | None = None,
    *,
    max_iter: int | None = None,
    data_format: str = "channels_last",
    memory_data: Mapping[str, tuple] | None = None,
) -> Training:
    """Set up Caffe's training of ``solver`` in Keras.

    Args:
        solver: a ``solver.prototxt``; its net path is read from the working directory as Caffe
            does, else from the solver's folder.
        weights: a ``.caffemodel`` (or ``.h5``) to start from, copied by layer name as Caffe's
            ``--weights`` does: layers it lacks (a renamed last layer) start from their fillers.
        max_iter: iterations to run instead of the solver's ``max_iter`` (the ``poly`` policy
            still decays over the solver's).
        data_format: the model's layout.
        memory_data: ``{MemoryData layer name: (data, labels)}``, the arrays pycaffe's
            ``set_input_arrays`` would give it: data (N, C, H, W), labels (N,), N a multiple of
            its ``batch_size``.

    Returns:
        A :class:`Training`: ``model.fit(training.dataset, steps_per_epoch=training.steps, shuffle=False)``
        runs it (``shuffle=False``: Caffe reads the batches in order), as
        :func:`caffe2keras.training.run.run` does with Caffe's reports.
    """
    check_path_type(solver, "solver")
    if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0):
        raise ArgumentError(f"max_iter must be a whole number >= 0, or None. Received: max_iter={max_iter!r}")
    layout = Layout(data_format)
    settings = read_solver_file(solver)
    iterations = settings.max_iter if max_iter is None else max_iter
    if settings.random_seed is not None:
        with tensorflow_left_unimported():  # seeding TensorFlow would import it: 20 s for nothing
            keras.utils.set_random_seed(settings.random_seed % (1 << 32))
    level = settings.train_state.get("level")
    stages = settings.train_state.get("stages")
    net = settings.net
    # Errors about a layer name the net's file, as convert's do.
    with about_file(settings.net_source):
        datasets, input_shapes = _datasets(settings, net, iterations, layout, memory_data, level, stages)
        graph = train_graph(net, input_shapes, level, stages)
        loaded = None
        if weights is not None:
            check_path_type(weights, "weights")
            loaded = read_weights(weights, {op.name for op in graph.ops})
        with about_file(weights, (WeightsError,)):
            training_net = build_training_net(graph, loaded, layout)
        model = training_net.model
        model.compile(optimizer=optimizer_of(settings, training_net.multipliers()))
        # Built after the train net, so that its fillers leave the train net's random draws alone.
        test_net = test_net_of(settings, net, layout)
    return Training(model, datasets, iterations, settings, training_net, test_net)


def _datasets(settings: Solver, net, iterations: int, layout: Layout, memory_data, level, stages):
    """The TRAIN net's one data layer as a dataset, and the shapes of its tops."""
    net_folder = os.path.dirname(settings.net_source) if os.path.exists(settings.net_source) else "."
    datasets, input_shapes = {}, {}
    state_level = net.state.level if level is None else level
    state_stages = list(net.state.stage) if stages is None else stages
    for layer in net.layer:
        if layer.type in DATA_LAYER_TYPES and layer_is_kept(layer, TRAIN, state_level, state_stages):
            steps = iterations * settings.iter_size
            if layer.type == "MemoryData":
                datasets[layer.name] = memory_batches(layer, (memory_data or {}).get(layer.name), steps, layout)
            else:
                datasets[layer.name] = data_layer_batches(layer, net_folder, steps, layout, settings.random_seed)
            input_shapes.update(datasets[layer.name].caffe_shapes())
    if len(datasets) != 1:
        raise NetError(
            f"the TRAIN net must read its data from one data layer; it has "
            f"{len(datasets)}. Received: data layers={list(datasets)}"
        )
    return datasets, input_shapes


def optimizer_of(settings: Solver, multipliers: dict[str, tuple[float, float]]) -> CaffeSolver:
    """The Keras optimizer of a solver, with its learning-rate schedule."""
    schedule = CaffeLearningRate(
        settings.base_lr,
        settings.lr_policy,
        gamma=settings.gamma,
        power=settings.power,
        stepsize=settings.stepsize,
        stepvalue=settings.stepvalue,
        max_iter=settings.max_iter,
        iter_size=settings.iter_size,
    )
    return CaffeSolver(
        schedule,
        solver_type=settings.solver_type,
        momentum=settings.momentum,
        momentum2=settings.momentum2,
        delta=settings.delta,
        rms_decay=settings.rms_decay,
        weight_decay=settings.weight_decay,
        regularization_type=settings.regularization_type,
        multipliers=multipliers,
        clip_gradients=settings.clip_gradients,
        iter_size=settings.iter_size,
    )

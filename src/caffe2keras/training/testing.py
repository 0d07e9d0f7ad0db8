"""The solver's test net, run every ``test_interval`` iterations as Caffe's ``Solver::TestAll`` does:
``test_iter`` batches of the TEST-phase net at the current weights, each output averaged."""

from __future__ import annotations

import os
from dataclasses import dataclass

import keras
import numpy as np

from caffe2keras.errors import NetError
from caffe2keras.graph import DATA_LAYER_TYPES, layer_is_kept
from caffe2keras.training.data import data_layer_batches
from caffe2keras.training.net import build_training_net, train_graph

TEST = 1  # caffe.Phase


@dataclass
class TestNet:
    model: keras.Model
    dataset: keras.utils.PyDataset
    iterations: int
    blobs: list[str]
    next_batch: int = 0

    def evaluate(self, trained: keras.Model) -> dict[str, float]:
        """Every output's mean over ``iterations`` batches, at ``trained``'s current weights."""
        if hasattr(trained, "jax_state_sync"):  # during fit, JAX holds the variables' values apart
            trained.jax_state_sync()
        values = {v.path: v for v in trained.variables}
        for variable in self.model.variables:
            if variable.path in values:
                variable.assign(values[variable.path])
        sums = dict.fromkeys(self.blobs, 0.0)
        for _ in range(self.iterations):
            outputs = self.model(self.dataset[self.next_batch][0], training=False)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            for blob, value in zip(self.blobs, outputs):
                sums[blob] += float(np.mean(keras.ops.convert_to_numpy(value)))
            self.next_batch += 1
        return {blob: total / self.iterations for blob, total in sums.items()}


def test_net_of(settings, net, layout) -> TestNet | None:
    """The TEST-phase net of the solver's ``net`` with ``test_iter`` batches, or None without tests."""
    if not settings.test_interval:
        return None
    net_folder = os.path.dirname(settings.net_source) if os.path.exists(settings.net_source) else "."
    datasets, input_shapes = [], {}
    for layer in net.layer:
        if layer.type in DATA_LAYER_TYPES and layer_is_kept(layer, TEST, net.state.level, list(net.state.stage)):
            datasets.append(data_layer_batches(layer, net_folder, settings.test_iter, layout, settings.random_seed))
            input_shapes.update(datasets[-1].caffe_shapes())
    if len(datasets) != 1:
        raise NetError(
            f"{settings.net_source}: the TEST net must read its data from one data layer; it has "
            f"{len(datasets)}. Received: test data layers={len(datasets)}"
        )
    graph = train_graph(net, input_shapes, phase=TEST)
    model = build_training_net(graph, None, layout).model
    return TestNet(model, datasets[0], settings.test_iter, [ref.name for ref in graph.outputs])

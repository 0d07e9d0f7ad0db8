"""A functional model that trains the way a Caffe net does: :class:`CaffeTrainingModel`."""

from __future__ import annotations

import keras
from keras import ops, saving

from caffe2keras.layers.common import PACKAGE

# The logs' key for the weighted sum: "loss" is often a net output's own name in Caffe.
TOTAL_LOSS = "total_loss"


def _source_layer(tensor):
    """The layer that computed ``tensor``, looking through the Identity layers that name outputs."""
    layer = tensor._keras_history.operation
    while isinstance(layer, keras.layers.Identity):
        layer = layer.input._keras_history.operation
    return layer


@saving.register_keras_serializable(package=PACKAGE)
class CaffeTrainingModel(keras.Model):
    """A Caffe TRAIN net as a Keras functional model: its outputs are the net's outputs (the
    losses' and Accuracy's scalars, and any other unconsumed blob), its inputs every data blob,
    labels included, so ``fit`` takes the inputs alone (``y=None``).

    The training loss is Caffe's: the sum of every loss output times its layer's
    ``loss_weight``. Each step's logs hold every output's value for that batch (not a running
    mean), as Caffe displays them, plus ``total_loss``, the weighted sum (not ``loss``, which is
    usually the name of a Caffe loss blob).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_weights_by_output = {}
        for name, tensor in zip(self.output_names, self.outputs):
            layer = _source_layer(tensor)
            if getattr(layer, "is_caffe_loss", False) and layer.loss_weight:
                self.loss_weights_by_output[name] = layer.loss_weight

    def _outputs_by_name(self, y_pred) -> dict:
        values = y_pred if isinstance(y_pred, (list, tuple)) else [y_pred]
        return dict(zip(self.output_names, values))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        outputs = self._outputs_by_name(y_pred)
        total = ops.convert_to_tensor(0.0)
        for name, weight in self.loss_weights_by_output.items():
            total = total + weight * ops.sum(outputs[name])
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        outputs = self._outputs_by_name(y_pred)
        logs = {name: ops.mean(value) for name, value in outputs.items()}
        logs[TOTAL_LOSS] = self.compute_loss(x, y, y_pred)
        return logs

"""Caffe's LSTM, RNN and LSTMUnit layers, at inference, in Caffe's (time, stream, ...) layout.

Caffe feeds a recurrent layer ``x`` of shape ``(T, N, ...)`` -- ``T`` time
steps of ``N`` independent streams -- and ``cont`` of shape ``(T, N)``: 0
where a stream starts a new sequence (the state is flushed), 1 where it
continues. Axis 0 is time, so these layers scan over the first axis of the
Keras tensors. Tensors of rank >= 3 follow ``data_format`` (the stream axis,
Caffe's axis 1, is last in ``channels_last``).
"""

from __future__ import annotations

import math
from typing import ClassVar

from keras import initializers, layers, ops, saving

from caffe2keras.layers.common import PACKAGE, check_data_format


class _CaffeLayout(layers.Layer):
    """Moves tensors between ``data_format`` and Caffe's own layout (only rank >= 3 differs)."""

    def __init__(self, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)

    def _to_caffe(self, x):
        return ops.moveaxis(x, -1, 1) if self._moves(x.shape) else x

    def _from_caffe(self, x):
        return ops.moveaxis(x, 1, -1) if self._moves(x.shape) else x

    def _moves(self, shape) -> bool:
        return self.data_format == "channels_last" and len(shape) >= 3

    def _keras_shape(self, caffe_shape) -> tuple:
        if self._moves(caffe_shape):
            return (caffe_shape[0], *caffe_shape[2:], caffe_shape[1])
        return tuple(caffe_shape)

    def get_config(self):
        config = super().get_config()
        config.update(data_format=self.data_format)
        return config


def lstm_unit(c_prev, gates, cont):
    """Caffe's LSTMUnit: gates ``[i, f, o, g]`` on the last axis; ``cont`` broadcasts against ``c_prev``.

    ``c = f' * c_prev + sigmoid(i) * tanh(g)`` with ``f' = 0 if cont == 0 else
    cont * sigmoid(f)``; ``h = sigmoid(o) * tanh(c)``. Returns ``(c, h)``.
    """
    i, f, o, g = ops.split(gates, 4, axis=-1)
    forget = ops.where(cont == 0, ops.zeros_like(f), cont * ops.sigmoid(f))
    c = forget * c_prev + ops.sigmoid(i) * ops.tanh(g)
    return c, ops.sigmoid(o) * ops.tanh(c)


@saving.register_keras_serializable(package=PACKAGE)
class LSTMUnit(_CaffeLayout):
    """One LSTM step as Caffe's LSTMUnit layer computes it (see :func:`lstm_unit`).

    Called on ``[c_prev, gates, cont]`` of Caffe shapes ``(1, N, H)``,
    ``(1, N, 4H)`` and ``(1, N)``; returns ``[c, h]``, each ``(1, N, H)``.
    """

    def call(self, inputs):
        c_prev, gates, cont = inputs
        c, h = lstm_unit(self._to_caffe(c_prev), self._to_caffe(gates), ops.expand_dims(cont, -1))
        return [self._from_caffe(c), self._from_caffe(h)]

    def compute_output_shape(self, input_shape):
        return [input_shape[0], input_shape[0]]


class _CaffeRecurrent(_CaffeLayout):
    """Shared wiring. Inputs: ``[x, cont]``, then ``x_static`` if ``static_input``,
    then the initial states if ``expose_hidden`` (else they are zeros). Outputs:
    the sequence, then the final states if ``expose_hidden``. Kernels are
    ``(inputs, outputs)``; ``<variable>_initializer`` keyword arguments set each
    variable's initializer."""

    gates = 1  # gate blocks in the input and recurrent kernels
    state_count = 1
    initializer_defaults: ClassVar[dict[str, str]] = {
        "input_kernel": "glorot_uniform",
        "bias": "zeros",
        "static_kernel": "glorot_uniform",
        "recurrent_kernel": "orthogonal",
    }

    def __init__(self, units, static_input=False, expose_hidden=False, data_format="channels_last", **kwargs):
        self.initializers = {
            name: initializers.get(kwargs.pop(f"{name}_initializer", default))
            for name, default in self.initializer_defaults.items()
        }
        super().__init__(data_format=data_format, **kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be positive. Received: units={units}")
        self.units = int(units)
        self.static_input = bool(static_input)
        self.expose_hidden = bool(expose_hidden)

    def _streams(self, x_shape) -> int:
        return x_shape[-1] if self._moves(x_shape) else x_shape[1]

    def _split(self, inputs):
        inputs = list(inputs)
        expected = 2 + self.static_input + self.state_count * self.expose_hidden
        if len(inputs) != expected:
            raise ValueError(
                f"{type(self).__name__} takes {expected} inputs (x, cont"
                f"{', x_static' if self.static_input else ''}"
                f"{', initial states' if self.expose_hidden else ''}). Received: inputs={len(inputs)}"
            )
        static = inputs[2] if self.static_input else None
        return inputs[0], inputs[1], static, inputs[2 + self.static_input :]

    def _variable_shapes(self, input_shape) -> list[tuple[str, tuple]]:
        """The variables in Caffe's blob order."""
        x_shape, _, static_shape, _ = self._split(input_shape)
        width = self.gates * self.units
        shapes = [("input_kernel", (math.prod(x_shape[1:]) // self._streams(x_shape), width)), ("bias", (width,))]
        if self.static_input:
            shapes.append(("static_kernel", (math.prod(static_shape[1:]), width)))
        return [*shapes, ("recurrent_kernel", (self.units, width))]

    def build(self, input_shape):
        for name, shape in self._variable_shapes(input_shape):
            setattr(self, name, self.add_weight(name=name, shape=shape, initializer=self.initializers[name]))

    def call(self, inputs):
        x, cont, static, states = self._split(inputs)
        streams = self._streams(x.shape)
        x = ops.reshape(self._to_caffe(x), (-1, streams, self.input_kernel.shape[0]))
        drive = ops.matmul(x, self.input_kernel) + self.bias
        if static is not None:
            static = ops.reshape(self._to_caffe(static), (streams, -1))
            drive = drive + ops.matmul(static, self.static_kernel)
        if states:
            initial = tuple(ops.reshape(self._to_caffe(s), (streams, self.units)) for s in states)
        else:
            initial = (ops.zeros((streams, self.units), dtype=x.dtype),) * self.state_count
        final, sequence = ops.scan(self._step, initial, (drive, ops.cast(cont, x.dtype)))
        sequence = self._from_caffe(self._output(sequence))
        if not self.expose_hidden:
            return sequence
        return [sequence, *(self._from_caffe(ops.expand_dims(s, 0)) for s in final)]

    def _output(self, hidden_sequence):
        return hidden_sequence

    def compute_output_shape(self, input_shape):
        x_shape = self._split(input_shape)[0]
        streams = self._streams(x_shape)
        sequence = self._keras_shape((x_shape[0], streams, self.units))
        if not self.expose_hidden:
            return sequence
        return [sequence, *[self._keras_shape((1, streams, self.units))] * self.state_count]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, static_input=self.static_input, expose_hidden=self.expose_hidden)
        config.update(
            {
                f"{name}_initializer": initializers.serialize(initializer)
                for name, initializer in self.initializers.items()
            }
        )
        return config


@saving.register_keras_serializable(package=PACKAGE)
class CaffeLSTM(_CaffeRecurrent):
    """Caffe's LSTM: gates in the order input, forget, output, cell candidate.

    Per step, with ``h`` and ``c`` the previous states, ``gates = x_t W_x + b
    (+ x_static W_s) + (cont_t * h) W_h`` feed :func:`lstm_unit`.

    Outputs ``h`` for every step ``(T, N, units)``; with ``expose_hidden``, also
    the final ``h`` and ``c`` ``(1, N, units)`` (and the initial ones are inputs).
    """

    gates = 4
    state_count = 2

    def _step(self, state, inputs):
        h, c = state
        drive, cont = inputs
        cont = ops.expand_dims(cont, -1)
        c, h = lstm_unit(c, drive + ops.matmul(cont * h, self.recurrent_kernel), cont)
        return (h, c), h


@saving.register_keras_serializable(package=PACKAGE)
class CaffeRNN(_CaffeRecurrent):
    """Caffe's RNN: ``h = tanh(x_t W_x + b (+ x_static W_s) + (cont_t * h) W_h)``,
    output ``o = tanh(h W_o + b_o)`` for every step ``(T, N, units)``; with
    ``expose_hidden``, also the final ``h`` ``(1, N, units)``."""

    initializer_defaults: ClassVar[dict[str, str]] = {
        **_CaffeRecurrent.initializer_defaults,
        "output_kernel": "glorot_uniform",
        "output_bias": "zeros",
    }

    def _variable_shapes(self, input_shape):
        units = self.units
        return [*super()._variable_shapes(input_shape), ("output_kernel", (units, units)), ("output_bias", (units,))]

    def _step(self, state, inputs):
        (h,) = state
        drive, cont = inputs
        h = ops.tanh(drive + ops.matmul(ops.expand_dims(cont, -1) * h, self.recurrent_kernel))
        return (h,), h

    def _output(self, hidden_sequence):
        return ops.tanh(ops.matmul(hidden_sequence, self.output_kernel) + self.output_bias)

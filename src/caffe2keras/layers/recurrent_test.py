import numpy as np
import pytest

from caffe2keras.layers import CaffeLSTM, CaffeRNN


def test_recurrent_layers_round_trip_their_config():
    for layer in (CaffeLSTM(4, static_input=True, data_format="channels_first"), CaffeRNN(3, expose_hidden=True)):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


def test_zero_state_and_continuation_flags():
    # One stream, two steps; cont = 0 at t=0 flushes the (zero) state either way.
    x = np.ones((2, 1, 1), np.float32)
    layer = CaffeRNN(1, data_format="channels_first")
    layer.build([x.shape, (2, 1)])
    for variable, value in zip(layer.weights, [[[1.0]], [0.0], [[1.0]], [[1.0]], [0.0]]):
        variable.assign(np.array(value, np.float32))
    h1 = np.tanh(1.0)
    h2 = np.tanh(1.0 + h1)
    np.testing.assert_allclose(layer([x, np.array([[0], [1]], np.float32)])[:, 0, 0], np.tanh([h1, h2]), rtol=1e-6)


def test_the_input_count_is_checked():
    with pytest.raises(ValueError, match="takes 3 inputs .* Received: inputs=2"):
        CaffeLSTM(2, static_input=True)([np.zeros((2, 1, 3), np.float32), np.zeros((2, 1), np.float32)])

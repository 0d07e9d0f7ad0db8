import numpy as np
import pytest

from caffe2keras.layers import ArgMax, Reduction


def test_argmax_breaks_ties_toward_the_larger_index_and_stacks_values():
    x = np.array([[1, 3, 3, 2, 3]], np.float32)
    np.testing.assert_array_equal(ArgMax(3)(x), [[4, 2, 1]])
    np.testing.assert_array_equal(ArgMax(2, returns="indices_and_values")(x), [[[4, 2], [3, 3]]])


def test_argmax_and_reduction_round_trip_their_config():
    for layer in (ArgMax(2, axis=1, returns="values"), Reduction("sumsq", axes=(1, 2), coeff=0.5)):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


def test_bad_arguments_say_what_they_received():
    with pytest.raises(ValueError, match="Received: top_k=0"):
        ArgMax(0)
    with pytest.raises(ValueError, match="Received: operation='max'"):
        Reduction("max")

import math

import keras
import numpy as np
import pytest

from caffe2keras.layers.initializers import CaffeFiller


def test_constant_and_config_round_trip():
    filler = CaffeFiller("constant", value=0.25)
    np.testing.assert_array_equal(filler((2, 3)), np.full((2, 3), 0.25, np.float32))
    again = keras.initializers.deserialize(keras.initializers.serialize(filler))
    assert isinstance(again, CaffeFiller) and again.get_config() == filler.get_config()


def test_bilinear_is_caffes_upsampling_kernel():
    # kernel 4 (factor 2): f = 2, c = 0.75 -> 1 - |x/2 - 0.75| = [0.25, 0.75, 0.75, 0.25] per axis
    profile = np.array([0.25, 0.75, 0.75, 0.25])
    values = CaffeFiller("bilinear")((4, 4, 3, 5))
    for i in range(3):
        for j in range(5):
            np.testing.assert_allclose(values[:, :, i, j], np.outer(profile, profile))


def test_xavier_and_msra_follow_the_declared_fan():
    xavier = CaffeFiller("xavier", fan_in=50, fan_out=10, variance_norm="average", seed=1)((200, 300))
    assert np.abs(xavier).max() <= math.sqrt(3 / 30)
    msra = CaffeFiller("msra", fan_in=8, seed=1)((400, 500))
    assert msra.std() == pytest.approx(math.sqrt(2 / 8), rel=0.01)


def test_positive_unitball_sums_to_one_per_output():
    values = CaffeFiller("positive_unitball", seed=0)((3, 3, 4, 6))
    np.testing.assert_allclose(values.sum(axis=(0, 1, 2)), np.ones(6), rtol=1e-6)
    assert values.min() >= 0


def test_rejects_unknown_types():
    with pytest.raises(ValueError, match="Received: type='unitball'"):
        CaffeFiller("unitball")

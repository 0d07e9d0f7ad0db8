import numpy as np
import pytest

from caffe2keras.layers.tensor import Affine, BroadcastOperand, Crop, Slice, Transpose, WeightedSum

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)


@pytest.mark.parametrize("use_scale, use_bias", [(True, False), (True, True), (False, True)])
@pytest.mark.parametrize("param_shape", [(1, 1, 5), (3, 1, 1), (3, 4, 1), ()])
def test_affine_broadcasts_its_parameters(param_shape, use_scale, use_bias, reloaded_outputs, assert_close):
    layer = Affine(param_shape, use_scale=use_scale, use_bias=use_bias)
    layer.build((None, 3, 4, 5))
    gamma, beta = RNG.standard_normal(param_shape), RNG.standard_normal(param_shape)
    layer.set_weights([w for w, used in ((gamma, use_scale), (beta, use_bias)) if used])
    expected = X * (gamma if use_scale else 1) + (beta if use_bias else 0)
    assert_close(reloaded_outputs(layer, X), expected)


def test_affine_defaults_are_identity(assert_close):
    assert_close(Affine((3, 1, 1), use_bias=True)(X), X)


def test_weighted_sum(reloaded_outputs, assert_close):
    xs = [RNG.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3)]
    assert_close(reloaded_outputs(WeightedSum([0.5, -1.5, 2.0]), *xs), 0.5 * xs[0] - 1.5 * xs[1] + 2 * xs[2])


@pytest.mark.parametrize("axis, points", [(1, (1,)), (2, (1, 3)), (3, (2, 3, 4)), (-1, (4,))])
def test_slice(axis, points, reloaded_outputs):
    outputs = reloaded_outputs(Slice(axis, points), X)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    expected = np.split(X, points, axis=axis)
    assert len(outputs) == len(expected)
    for actual, part in zip(outputs, expected):
        np.testing.assert_array_equal(actual, part)
    assert [tuple(s[1:]) for s in Slice(axis, points).compute_output_shape(X.shape)] == [p.shape[1:] for p in expected]


@pytest.mark.parametrize("begin, size", [((0, 0, 0), (3, 4, 5)), ((1, 2, 1), (2, 1, 3)), ((0, 1, 4), (3, 3, 1))])
def test_crop(begin, size, reloaded_outputs):
    expected = X[:, begin[0] : begin[0] + size[0], begin[1] : begin[1] + size[1], begin[2] : begin[2] + size[2]]
    np.testing.assert_array_equal(reloaded_outputs(Crop(begin, size), X), expected)
    assert Crop(begin, size).compute_output_shape((None, 3, 4, 5)) == (None, *size)


@pytest.mark.parametrize(
    "layer",
    [
        Affine((3, 1, 1), use_bias=True, name="affine"),
        Affine((), use_scale=False, use_bias=True),
        WeightedSum([1.0, -2.0]),
        Slice(2, (1, 3)),
        Crop((0, 1), (2, 2)),
        Transpose((2, 0, 1), batch_size=1),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer, config_round_trip):
    config_round_trip(layer)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Affine((3,), use_scale=False, use_bias=False), "needs use_scale or use_bias"),
        (lambda: Slice(1, ()), "strictly increasing"),
        (lambda: Slice(1, (3, 2)), "strictly increasing"),
        (lambda: Slice(1, (0, 2)), "strictly increasing"),
        (lambda: Crop((0, 1), (2,)), "one value per non-batch axis"),
        (lambda: Crop((-1,), (2,)), "begin >= 0"),
        (lambda: Crop((0,), (0,)), "size >= 1"),
        (lambda: Transpose((0, 0, 1)), "permutation"),
    ],
)
def test_rejects_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message) as raised:
        make()
    assert "Received:" in str(raised.value)


def test_weighted_sum_needs_one_input_per_coefficient():
    with pytest.raises(ValueError, match="one input per coefficient") as raised:
        WeightedSum([1.0, 2.0])([X, X, X])
    assert "Received: 3 inputs" in str(raised.value)


def test_crop_of_free_sizes_reads_them_when_it_runs(free_size_model):
    trimmed = free_size_model(Crop((1, 2, 0), (None, None, 3), end_trim=(2, 1, 0)), (None, None, 3))
    like_reference = free_size_model(Crop((1, 2, 0), (None, None, 3)), (None, None, 3), (None, None, 1))
    for height, width in [(7, 9), (10, 5)]:
        x = np.arange(height * width * 3, dtype=np.float32).reshape(1, height, width, 3)
        np.testing.assert_array_equal(trimmed.predict_on_batch(x), x[:, 1 : height - 2, 2 : width - 1])
        reference = np.zeros((1, height - 4, width - 3, 1), np.float32)
        np.testing.assert_array_equal(
            like_reference.predict_on_batch([x, reference]), x[:, 1 : height - 3, 2 : width - 1]
        )


@pytest.mark.parametrize("perm", [None, (0, 2, 3, 1)])
def test_broadcast_operand_reshapes_the_whole_tensor(perm, reloaded_outputs, assert_close):
    """A (3, 4) blob (its axis 0 is not a batch) as (1, 3, 4, 1), then in the layout's order."""
    value = RNG.standard_normal((3, 4)).astype(np.float32)
    expected = value.reshape(1, 3, 4, 1)
    if perm is not None:
        expected = expected.transpose(perm)
    assert_close(reloaded_outputs(BroadcastOperand((1, 3, 4, 1), perm), value), expected)


def test_broadcast_operand_checks_its_perm():
    with pytest.raises(ValueError, match="perm must order the 4 axes"):
        BroadcastOperand((1, 3, 4, 1), (0, 1, 2))


def test_transpose_moves_the_batch_axis(reloaded_outputs):
    x = RNG.standard_normal((1, 4, 3)).astype(np.float32)
    layer = Transpose((2, 0, 1), batch_size=1)
    assert layer.compute_output_shape((None, 4, 3)) == (3, 1, 4)
    np.testing.assert_array_equal(reloaded_outputs(layer, x), x.transpose(2, 0, 1))

import numpy as np
import pytest

from caffe2keras.layers.normalization import LRN


def lrn_reference(x, size, alpha, beta, k, region):
    """NCHW, float64: the squares summed over a zero-padded window of ``size`` channels (scaled by
    alpha / size, plus k), or averaged over a size x size spatial window (scaled by alpha, plus 1)."""
    half = size // 2
    squares = np.asarray(x, np.float64) ** 2
    if region == "across_channels":
        padded = np.pad(squares, [(0, 0), (half, half), (0, 0), (0, 0)])
        window = sum(padded[:, i : i + x.shape[1]] for i in range(size))
        return x * (k + alpha / size * window) ** -beta
    padded = np.pad(squares, [(0, 0), (0, 0), (half, half), (half, half)])
    window = sum(padded[:, :, i : i + x.shape[2], j : j + x.shape[3]] for i in range(size) for j in range(size))
    return x * (1 + alpha * window / size**2) ** -beta


CONFIGS = [
    dict(size=5, alpha=1e-4, beta=0.75, k=1.0, norm_region="across_channels"),
    dict(size=3, alpha=0.5, beta=0.75, k=2.0, norm_region="across_channels"),
    dict(size=7, alpha=2.0, beta=1.5, k=0.5, norm_region="across_channels"),  # wider than the channels
    dict(size=1, alpha=1.0, beta=0.5, k=1.0, norm_region="across_channels"),
    dict(size=3, alpha=1.0, beta=0.75, k=5.0, norm_region="within_channel"),  # k is not used
    dict(size=5, alpha=0.5, beta=0.75, k=1.0, norm_region="within_channel"),
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['norm_region']}-{c['size']}")
def test_matches_caffe(config, data_format, reloaded_outputs, assert_close):
    x = np.random.default_rng(0).standard_normal((2, 5, 4, 6)).astype(np.float32) * 2
    expected = lrn_reference(x, config["size"], config["alpha"], config["beta"], config["k"], config["norm_region"])
    layer = LRN(**config, data_format=data_format)
    if data_format == "channels_last":
        assert_close(reloaded_outputs(layer, x.transpose(0, 2, 3, 1)), expected.transpose(0, 2, 3, 1))
    else:
        assert_close(reloaded_outputs(layer, x), expected)


@pytest.mark.parametrize("config", CONFIGS[1::3], ids=lambda c: c["norm_region"])
def test_config_round_trip(config, config_round_trip):
    config_round_trip(LRN(**config, data_format="channels_first", name="norm"))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(size=4), "size must be odd"),
        (dict(norm_region="across_space"), "norm_region must be one of"),
        (dict(data_format="NHWC"), "data_format must be one of"),
    ],
)
def test_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message) as raised:
        LRN(**arguments)
    assert "Received:" in str(raised.value)


def test_caffe_batch_norm_trains_with_batch_statistics_and_updates_its_blobs_as_caffe():
    from caffe2keras.layers.normalization import CaffeBatchNorm

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 3, 2)).astype(np.float32)  # N, H, W, C
    layer = CaffeBatchNorm(axis=-1, epsilon=1e-5, moving_average_fraction=0.9)
    y = np.asarray(layer(x, training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)
    layer(x, training=True)
    m = 4 * 3 * 3
    np.testing.assert_allclose(layer.factor.numpy(), [1.9])  # 0.9 * 1 + 1
    np.testing.assert_allclose(layer.mean.numpy(), 1.9 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.variance.numpy(), 1.9 * m / (m - 1) * var, rtol=1e-5)
    # Inference divides the blobs by the factor.
    y = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(m / (m - 1) * var + 1e-5), atol=1e-5)


def test_caffe_batch_norm_config_round_trip(config_round_trip):
    from caffe2keras.layers.normalization import CaffeBatchNorm

    config_round_trip(CaffeBatchNorm(axis=1, epsilon=1e-3, moving_average_fraction=0.5, use_global_stats=True))

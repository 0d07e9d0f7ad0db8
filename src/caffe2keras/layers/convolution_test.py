import itertools

import numpy as np
import pytest

from caffe2keras.layers.convolution import GroupedConv2DTranspose


def transposed_conv_reference(x, kernel, bias, strides, dilation, groups):
    """NCHW, float64, ``padding="valid"``: input channel c of group g adds
    ``x[n, c, i, j] * kernel[kh, kw, f, c]`` to output ``g * F + f`` at ``(i*s + kh*d, j*s + kw*d)``."""
    n, channels, height, width = x.shape
    kh, kw, per_group, _ = kernel.shape
    in_group = channels // groups
    out_h = (height - 1) * strides[0] + dilation[0] * (kh - 1) + 1
    out_w = (width - 1) * strides[1] + dilation[1] * (kw - 1) + 1
    y = np.zeros((n, per_group * groups, out_h, out_w))
    for c, i, j, a, b in itertools.product(range(channels), range(height), range(width), range(kh), range(kw)):
        g = c // in_group
        row, col = i * strides[0] + a * dilation[0], j * strides[1] + b * dilation[1]
        y[:, g * per_group : (g + 1) * per_group, row, col] += np.outer(x[:, c, i, j], kernel[a, b, :, c])
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


CONFIGS = [
    dict(filters=4, kernel_size=(3, 3), strides=(2, 2), dilation_rate=(1, 1), groups=2),
    dict(filters=6, kernel_size=(2, 3), strides=(3, 1), dilation_rate=(2, 2), groups=3),  # stride and dilation
    dict(filters=2, kernel_size=(1, 1), strides=(3, 2), dilation_rate=(1, 1), groups=1),  # kernel < stride
    dict(filters=6, kernel_size=(4, 4), strides=(2, 2), dilation_rate=(1, 3), groups=6, use_bias=False),
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"g{c['groups']}-s{c['strides']}-d{c['dilation_rate']}")
def test_matches_transposed_convolution(config, data_format, reloaded_outputs, assert_close):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 3, 4)).astype(np.float32)
    layer = GroupedConv2DTranspose(**config, data_format=data_format)
    to_layout = (lambda a: a.transpose(0, 2, 3, 1)) if data_format == "channels_last" else (lambda a: a)
    layer.build(to_layout(x).shape)
    kernel = rng.standard_normal(layer.kernel.shape).astype(np.float32)
    bias = rng.standard_normal(config["filters"]).astype(np.float32) if config.get("use_bias", True) else None
    layer.set_weights([kernel] if bias is None else [kernel, bias])
    expected = transposed_conv_reference(x, kernel, bias, config["strides"], config["dilation_rate"], config["groups"])
    assert_close(reloaded_outputs(layer, to_layout(x)), to_layout(expected))


@pytest.mark.parametrize("config", CONFIGS[1:2] + CONFIGS[3:], ids=["dilated", "no-bias"])
def test_config_round_trip(config, config_round_trip):
    config_round_trip(GroupedConv2DTranspose(**config, data_format="channels_first", name="deconv"))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(padding="same"), "only supports padding='valid'"),
        (dict(filters=3, groups=2), "groups must divide filters"),
        (dict(data_format="NCHW"), "data_format must be one of"),
    ],
)
def test_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message) as raised:
        GroupedConv2DTranspose(**{"filters": 4, "kernel_size": (2, 2), "groups": 2, **arguments})
    assert "Received:" in str(raised.value)


def test_groups_must_divide_the_input_channels():
    with pytest.raises(ValueError, match="groups must divide the input channels") as raised:
        GroupedConv2DTranspose(4, (2, 2), groups=2).build((None, 5, 5, 3))
    assert "Received:" in str(raised.value)

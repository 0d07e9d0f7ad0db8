"""Fork layers (ShuffleNet, MobileNet, SENet, PSPNet/DeepLab, SegNet, YOLOv2, Fast R-CNN).

Oracles: OpenCV 4.x's Caffe importer where it implements the layer as the
fork does; elsewhere numpy loops written from the fork's own C++ (each
reference below names the function it follows). Every converted model is
saved and reloaded with ``safe_mode=True`` before it runs.
"""

from __future__ import annotations

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.errors import ShapeError, UnsupportedParameterError
from caffe2keras.synthetic import synthetic_weights
from tests.golden import assert_matches, run, save_and_reload
from tests.shared import FORMATS, SHARED, requires_shared

LOWEST = np.finfo(np.float32).min


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def net_text(inputs: dict[str, tuple], layers: str) -> str:
    declared = "".join(
        f'input: "{name}"\ninput_shape {{ {" ".join(f"dim: {d}" for d in shape)} }}\n' for name, shape in inputs.items()
    )
    return declared + layers


def convert_and_run(tmp_path, text, arrays, data_format, weights=None, outputs=None):
    """Convert, save, reload with safe_mode=True, run on ``arrays`` (in input order); Caffe-layout outputs."""
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(text)
    model = caffe2keras.convert(prototxt, weights, data_format=data_format, outputs=outputs)
    return run(save_and_reload(model, tmp_path), arrays, data_format)


def opencv_forward(prototxt, weights, inputs: dict[str, np.ndarray], outputs=None):
    cv2 = pytest.importorskip("cv2")
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights) if weights else "")
    for name, array in inputs.items():
        net.setInput(array, name)
    result = net.forward(outputs) if outputs else [net.forward()]
    return [np.asarray(r) for r in result]


def check_against_opencv(tmp_path, text, inputs, data_format, weights=None, outputs=None):
    prototxt = tmp_path / "opencv.prototxt"
    prototxt.write_text(text)
    references = opencv_forward(prototxt, weights, inputs, outputs)
    actual = convert_and_run(tmp_path, text, list(inputs.values()), data_format, weights, outputs)
    for blob, y, reference in zip(outputs or ["output"], actual, references):
        assert_matches(y, reference, f"blob {blob!r}")


# ---------------------------------------------------------------- ShuffleNet (acceptance)


@requires_shared
@pytest.mark.slow  # a whole Zoo net; ShuffleChannel and the depthwise convolution have fast tests here
@pytest.mark.parametrize("data_format", FORMATS)
def test_shufflenet_v1_g3_matches_opencv(data_format, tmp_path):
    prototxt = SHARED / "caffe" / "models" / "shufflenet_v1_g3" / "deploy.prototxt"
    weights = tmp_path / "shufflenet.caffemodel"
    write_caffemodel(weights, synthetic_weights(prototxt, seed=3))
    image = random((1, 3, 224, 224), seed=4)
    # fc1000 is the net's only output; the shuffles are probes inside it.
    outputs = ["fc1000", "shuffle2", "shuffle9"]
    references = opencv_forward(prototxt, weights, {"data": image}, outputs)
    model = caffe2keras.convert(prototxt, weights, data_format=data_format, outputs=outputs)
    actual = run(save_and_reload(model, tmp_path), [image], data_format)
    for blob, y, reference in zip(outputs, actual, references):
        assert_matches(y, reference, f"ShuffleNet blob {blob!r}")


# ---------------------------------------------------------------- depthwise family


@pytest.mark.parametrize("data_format", FORMATS)
def test_convolution_depthwise_ignores_num_output_and_group(data_format, tmp_path):
    """The fork keeps one (C, 1, kh, kw) filter per channel whatever num_output and group say."""
    conv = 'pad_h: 2 pad_w: 1 kernel_size: 3 stride: 2 dilation: 2 weight_filler { type: "msra" }'
    ours = net_text(
        {"data": (2, 6, 11, 9)},
        f"""
layer {{ name: "dw" type: "ConvolutionDepthwise" bottom: "data" top: "output"
  convolution_param {{ num_output: 4 {conv} }} }}""",
    )
    as_opencv_reads_it = ours.replace("num_output: 4", "num_output: 6")
    weights = tmp_path / "dw.caffemodel"
    write_caffemodel(weights, [("dw", "ConvolutionDepthwise", [random((6, 1, 3, 3), 1), random((6,), 2)])])
    references = opencv_forward(
        _write(tmp_path / "cv.prototxt", as_opencv_reads_it), weights, {"data": random((2, 6, 11, 9))}
    )
    (actual,) = convert_and_run(tmp_path, ours, [random((2, 6, 11, 9))], data_format, weights)
    assert_matches(actual, references[0], "ConvolutionDepthwise")


@pytest.mark.parametrize("data_format", FORMATS)
def test_depthwise_convolution_is_a_grouped_convolution(data_format, tmp_path):
    layer = """
layer { name: "dw" type: "%s" bottom: "data" top: "output"
  convolution_param { num_output: 10 group: 5 kernel_size: 3 pad: 1 stride: 1 } }"""
    ours = net_text({"data": (1, 5, 8, 7)}, layer % "DepthwiseConvolution")
    weights = tmp_path / "dw.caffemodel"
    write_caffemodel(weights, [("dw", "DepthwiseConvolution", [random((10, 1, 3, 3), 1), random((10,), 2)])])
    x = random((1, 5, 8, 7))
    references = opencv_forward(
        _write(tmp_path / "cv.prototxt", net_text({"data": (1, 5, 8, 7)}, layer % "Convolution")), weights, {"data": x}
    )
    (actual,) = convert_and_run(tmp_path, ours, [x], data_format, weights)
    assert_matches(actual, references[0], "DepthwiseConvolution")


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("group", [1, 3, 4, 12])
def test_shuffle_channel_matches_opencv(group, data_format, tmp_path):
    text = net_text(
        {"data": (2, 12, 5, 7)},
        f"""
layer {{ name: "shuffle" type: "ShuffleChannel" bottom: "data" top: "output" shuffle_channel_param {{ group: {group} }} }}""",
    )
    check_against_opencv(tmp_path, text, {"data": random((2, 12, 5, 7))}, data_format)


@pytest.mark.parametrize("data_format", FORMATS)
def test_shuffle_channel_of_a_2d_blob(data_format, tmp_path):
    """farmingyard's loop: channel i * (C / group) + j moves to j * group + i."""
    text = net_text(
        {"data": (3, 6)},
        """
layer { name: "shuffle" type: "ShuffleChannel" bottom: "data" top: "output" shuffle_channel_param { group: 2 } }""",
    )
    x = random((3, 6))
    expected = np.empty_like(x)
    for i in range(2):
        for j in range(3):
            expected[:, j * 2 + i] = x[:, i * 3 + j]
    (actual,) = convert_and_run(tmp_path, text, [x], data_format)
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("data_format", FORMATS)
def test_relu6_matches_opencv(data_format, tmp_path):
    text = net_text({"data": (2, 3, 4, 5)}, 'layer { name: "r" type: "ReLU6" bottom: "data" top: "output" }')
    check_against_opencv(tmp_path, text, {"data": 5 * random((2, 3, 4, 5))}, data_format)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("scale_shape", [(2, 6, 1, 1), (2, 6)])
def test_axpy_is_a_times_x_plus_y(scale_shape, data_format, tmp_path):
    """SENet's Axpy: top = bottom 0 (per channel) * bottom 1 + bottom 2."""
    shapes = {"a": scale_shape, "x": (2, 6, 4, 5), "y": (2, 6, 4, 5)}
    text = net_text(shapes, 'layer { name: "axpy" type: "Axpy" bottom: "a" bottom: "x" bottom: "y" top: "output" }')
    a, x, y = (random(shape, seed) for seed, shape in enumerate(shapes.values()))
    (actual,) = convert_and_run(tmp_path, text, [a, x, y], data_format)
    expected = a.reshape(2, 6, 1, 1) * x + y
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def test_axpy_rejects_a_spatial_scale(tmp_path):
    shapes = {"a": (2, 6, 4, 5), "x": (2, 6, 4, 5), "y": (2, 6, 4, 5)}
    text = net_text(shapes, 'layer { name: "axpy" type: "Axpy" bottom: "a" bottom: "x" bottom: "y" top: "output" }')
    with pytest.raises(ShapeError, match="a \\(bottom 0\\) must have shape"):
        caffe2keras.convert(_write(tmp_path / "net.prototxt", text))


# ---------------------------------------------------------------- segmentation family


def fork_source_cell(size_in, size_out, i):
    """caffe_cpu_interp2 along one axis, in float32: (cell, step to the next cell, its two weights)."""
    f32 = np.float32
    ratio = f32(size_in - 1) / f32(size_out - 1) if size_out > 1 else f32(0)
    position = ratio * f32(i)
    cell = int(position)
    upper = f32(position - f32(cell))
    return cell, 1 if cell < size_in - 1 else 0, f32(1) - upper, upper


def pspnet_interp(x, pad_beg, pad_end, size_out):
    """PSPNet's InterpLayer::Forward_cpu through caffe_cpu_interp2."""
    n, c, height, width = x.shape
    h1, w1 = height + pad_beg + pad_end, width + pad_beg + pad_end
    crop = x[:, :, -pad_beg : -pad_beg + h1, -pad_beg : -pad_beg + w1]
    if (h1, w1) == tuple(size_out):
        return crop.copy()
    out = np.empty((n, c, *size_out), np.float32)
    for i in range(size_out[0]):
        h, hp, l0, l1 = fork_source_cell(h1, size_out[0], i)
        for j in range(size_out[1]):
            w, wp, m0, m1 = fork_source_cell(w1, size_out[1], j)
            out[:, :, i, j] = l0 * (m0 * crop[:, :, h, w] + m1 * crop[:, :, h, w + wp]) + l1 * (
                m0 * crop[:, :, h + hp, w] + m1 * crop[:, :, h + hp, w + wp]
            )
    return out


def interp_net(params: str, shape=(2, 3, 9, 11)) -> str:
    return net_text(
        {"data": shape},
        f"""
layer {{ name: "interp" type: "Interp" bottom: "data" top: "output" interp_param {{ {params} }} }}""",
    )


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("params", ["height: 4 width: 20", "height: 1 width: 1", "zoom_factor: 3"])
def test_interp_matches_opencv(params, data_format, tmp_path):
    check_against_opencv(tmp_path, interp_net(params), {"data": random((2, 3, 9, 11))}, data_format)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "params, pads, size_out",
    [
        # OpenCV leaves out shrink_factor and the cropping pads: the fork's own loop is the oracle.
        ("shrink_factor: 2", (0, 0), (5, 6)),
        ("zoom_factor: 3 shrink_factor: 2", (0, 0), (13, 16)),
        ("zoom_factor: 2 pad_beg: -1 pad_end: -2", (-1, -2), (11, 15)),
        ("height: 7 width: 7 pad_end: -1", (0, -1), (7, 7)),
        ("zoom_factor: 2 height: 3 width: 3", (0, 0), (17, 21)),  # zoom_factor wins over height/width
        ("height: 9 width: 11", (0, 0), (9, 11)),  # the fork's copy shortcut
    ],
)
def test_interp_matches_the_forks_loop(params, pads, size_out, data_format, tmp_path):
    x = random((2, 3, 9, 11))
    (actual,) = convert_and_run(tmp_path, interp_net(params), [x], data_format)
    expected = pspnet_interp(x, *pads, size_out)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "params, field",
    [("", "interp_param"), ("pad_beg: 1", "interp_param.pad_beg"), ("zoom_factor: 0", "interp_param.zoom_factor")],
)
def test_interp_rejects_what_the_fork_rejects(params, field, tmp_path):
    with pytest.raises(ShapeError, match=field.replace(".", "\\.")):
        caffe2keras.convert(_write(tmp_path / "net.prototxt", interp_net(params)))


def test_interp_takes_one_bottom(tmp_path):
    text = net_text(
        {"data": (1, 2, 4, 4), "size": (1, 2, 8, 8)},
        """
layer { name: "interp" type: "Interp" bottom: "data" bottom: "size" top: "output" interp_param { zoom_factor: 2 } }""",
    )
    with pytest.raises(UnsupportedParameterError, match="one bottom"):
        caffe2keras.convert(_write(tmp_path / "net.prototxt", text))


def caffe_max_pool_with_mask(x, kernel, stride, pad, pooled):
    """BVLC PoolingLayer::Forward_cpu, MAX, with the mask top."""
    n, c, height, width = x.shape
    top = np.full((n, c, *pooled), LOWEST, np.float32)
    mask = np.full((n, c, *pooled), -1.0, np.float32)
    for ph in range(pooled[0]):
        for pw in range(pooled[1]):
            hstart, wstart = ph * stride[0] - pad[0], pw * stride[1] - pad[1]
            hend, wend = min(hstart + kernel[0], height), min(wstart + kernel[1], width)
            for h in range(max(hstart, 0), hend):
                for w in range(max(wstart, 0), wend):
                    better = x[:, :, h, w] > top[:, :, ph, pw]
                    top[:, :, ph, pw] = np.where(better, x[:, :, h, w], top[:, :, ph, pw])
                    mask[:, :, ph, pw] = np.where(better, h * width + w, mask[:, :, ph, pw])
    return top, mask


POOL_CASES = [
    # kernel, stride, pad, extra pooling_param, input, pooled size (Caffe's ceil rule)
    ((3, 3), (2, 2), (1, 1), "", (2, 3, 7, 9), (4, 5)),
    ((2, 2), (2, 2), (0, 0), "", (1, 2, 5, 6), (3, 3)),
    ((3, 2), (1, 2), (0, 1), "round_mode: FLOOR", (1, 2, 6, 7), (4, 4)),
]


def pool_layer(kernel, stride, pad, extra, tops='top: "pooled" top: "mask"'):
    return f"""
layer {{ name: "pool" type: "Pooling" bottom: "data" {tops}
  pooling_param {{ pool: MAX kernel_h: {kernel[0]} kernel_w: {kernel[1]} stride_h: {stride[0]} stride_w: {stride[1]}
                  pad_h: {pad[0]} pad_w: {pad[1]} {extra} }} }}"""


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("kernel, stride, pad, extra, shape, pooled", POOL_CASES)
def test_max_pooling_mask_top(kernel, stride, pad, extra, shape, pooled, data_format, tmp_path):
    # Small integers make ties, which Caffe gives to the first maximum in raster order.
    x = np.round(2 * random(shape)).astype(np.float32)
    text = net_text({"data": shape}, pool_layer(kernel, stride, pad, extra))
    actual = convert_and_run(tmp_path, text, [x], data_format, outputs=["pooled", "mask"])
    for y, expected in zip(actual, caffe_max_pool_with_mask(x, kernel, stride, pad, pooled)):
        np.testing.assert_array_equal(y, expected)


def test_only_max_pooling_has_a_mask_top(tmp_path):
    text = net_text({"data": (1, 2, 6, 6)}, pool_layer((2, 2), (2, 2), (0, 0), "").replace("MAX", "AVE"))
    with pytest.raises(ShapeError, match="only MAX pooling has a second"):
        caffe2keras.convert(_write(tmp_path / "net.prototxt", text))


def segnet_unpool(values, mask, size):
    """alexgkendall/caffe-segnet UpsampleLayer::Forward_cpu."""
    n, c, _height, _width = values.shape
    top = np.zeros((n, c, size[0] * size[1]), np.float32)
    for b in range(n):
        for ch in range(c):
            for _i, (value, index) in enumerate(zip(values[b, ch].ravel(), mask[b, ch].ravel())):
                top[b, ch, int(index)] = value
    return top.reshape(n, c, *size)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "kernel, stride, upsample, size",
    [
        ((2, 2), (2, 2), "scale: 2", (10, 12)),
        ((2, 2), (2, 2), "scale: 2 pad_out_h: true", (9, 12)),
        ((2, 2), (2, 2), "upsample_h: 9 upsample_w: 11", (9, 11)),
        # Overlapping windows share maxima: the later value in raster order must win.
        ((3, 3), (2, 2), "upsample_h: 9 upsample_w: 11", (9, 11)),
    ],
)
def test_segnet_unpooling(kernel, stride, upsample, size, data_format, tmp_path):
    shape = (2, 3, 9, 11)
    pooled = tuple(-(-(n - k) // s) + 1 for n, k, s in zip(shape[2:], kernel, stride))
    text = net_text(
        {"data": shape, "values": (2, 3, *pooled)},
        pool_layer(kernel, stride, (0, 0), "")
        + f"""
layer {{ name: "unpool" type: "Upsample" bottom: "values" bottom: "mask" top: "output"
  upsample_param {{ {upsample} }} }}""",
    )
    x, values = random(shape, 1), random((2, 3, *pooled), 2)
    (actual,) = convert_and_run(tmp_path, text, [x, values], data_format, outputs=["output"])
    _, mask = caffe_max_pool_with_mask(x, kernel, stride, (0, 0), pooled)
    np.testing.assert_array_equal(actual, segnet_unpool(values, mask, size))


@pytest.mark.parametrize("data_format", FORMATS)
def test_nearest_upsample(data_format, tmp_path):
    text = net_text(
        {"data": (2, 3, 4, 5)},
        """
layer { name: "up" type: "Upsample" bottom: "data" top: "output" upsample_param { scale: 3 } }""",
    )
    x = random((2, 3, 4, 5))
    (actual,) = convert_and_run(tmp_path, text, [x], data_format)
    np.testing.assert_array_equal(actual, x.repeat(3, axis=2).repeat(3, axis=3))


@pytest.mark.parametrize("params", ["", "scale: 2 upsample_h: 8 upsample_w: 10"])
def test_nearest_upsample_refuses_ambiguous_parameters(params, tmp_path):
    text = net_text(
        {"data": (2, 3, 4, 5)},
        f"""
layer {{ name: "up" type: "Upsample" bottom: "data" top: "output" upsample_param {{ {params} }} }}""",
    )
    with pytest.raises(UnsupportedParameterError, match="upsample_param"):
        caffe2keras.convert(_write(tmp_path / "net.prototxt", text))


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("shape", [(2, 4, 3, 5), (3, 4)])
def test_pspnet_bn(shape, data_format, tmp_path):
    """hszhao/PSPNet BNLayer at test time: (x - mean) * (variance + eps)^-0.5 * slope + bias."""
    text = net_text(
        {"data": shape}, 'layer { name: "bn" type: "BN" bottom: "data" top: "output" bn_param { eps: 0.001 } }'
    )
    rng = np.random.default_rng(5)
    slope, bias, mean = (rng.standard_normal((1, 4, 1, 1)).astype(np.float32) for _ in range(3))
    variance = rng.uniform(0.2, 2.0, (1, 4, 1, 1)).astype(np.float32)
    weights = tmp_path / "bn.caffemodel"
    write_caffemodel(weights, [("bn", "BN", [slope, bias, mean, variance])])
    x = random(shape)
    (actual,) = convert_and_run(tmp_path, text, [x], data_format, weights)
    broadcast = (1, 4) + (1,) * (len(shape) - 2)
    slope, bias, mean, variance = (a.reshape(broadcast) for a in (slope, bias, mean, variance))
    expected = (x - mean) * (variance + np.float32(0.001)) ** -0.5 * slope + bias
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- detection helpers


def darknet_reorg(x, stride, reverse):
    """gklz1982/caffe-yolov2's reorg_cpu(bottom, W, H, C, N, stride, forward=reverse, top)."""
    n, c, h, w = x.shape
    out_c = c // (stride * stride)
    source, target = x.reshape(n, -1), np.empty(x.size // n, np.float32)[None].repeat(n, 0)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                in_index = i + w * (j + h * k)
                c2, offset = k % out_c, k // out_c
                w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                out_index = w2 + w * stride * (h2 + h * stride * c2)
                if reverse:
                    target[:, out_index] = source[:, in_index]
                else:
                    target[:, in_index] = source[:, out_index]
    if reverse:
        return target.reshape(n, out_c, h * stride, w * stride)
    return target.reshape(n, c * stride * stride, h // stride, w // stride)


def reorg_net(shape, stride, reverse=False):
    return net_text(
        {"data": shape},
        f"""
layer {{ name: "reorg" type: "Reorg" bottom: "data" top: "output"
  reorg_param {{ stride: {stride} reverse: {str(reverse).lower()} }} }}""",
    )


@pytest.mark.parametrize("data_format", FORMATS)
def test_reorg_matches_opencv(data_format, tmp_path):
    # OpenCV reads its own "reorg_stride" field and defaults it to 2, YOLOv2's stride: test that one.
    check_against_opencv(tmp_path, reorg_net((2, 8, 4, 6), 2), {"data": random((2, 8, 4, 6))}, data_format)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "shape, stride, reverse", [((2, 8, 4, 6), 2, False), ((1, 18, 6, 3), 3, False), ((2, 8, 3, 5), 2, True)]
)
def test_reorg_matches_darknets_loop(shape, stride, reverse, data_format, tmp_path):
    x = random(shape)
    (actual,) = convert_and_run(tmp_path, reorg_net(shape, stride, reverse), [x], data_format)
    np.testing.assert_array_equal(actual, darknet_reorg(x, stride, reverse))


def test_reorg_needs_whole_blocks(tmp_path):
    with pytest.raises(ShapeError, match="stride must divide the height and width"):
        caffe2keras.convert(_write(tmp_path / "net.prototxt", reorg_net((1, 4, 5, 6), 2)))


def roi_inputs(seed=0):
    """As OpenCV's test script makes them, plus corners on Caffe's rounding edges."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((4, 3, 21, 17)).astype(np.float32)
    rois = np.zeros((100, 5), np.float32)
    rois[:, 0] = rng.integers(0, 4, 100)
    rois[:, 1:] = rng.integers(-10, 30, (100, 4))
    # x * 1/16 at .5 rounds away from zero; reversed corners make 1x1 ROIs.
    rois[:4, 1:] = [[8, 24, 40, 56], [-8, -24, 8, 8], [300, 300, 10, 10], [0, 0, 0, 0]]
    return features, rois


@pytest.mark.parametrize("data_format", FORMATS)
def test_roi_pooling_with_4d_rois(data_format, tmp_path):
    features, rois = roi_inputs(1)
    text = net_text(
        {"input": features.shape, "rois": (100, 5, 1, 1)},
        """
layer { name: "roi" type: "ROIPooling" bottom: "input" bottom: "rois" top: "output"
  roi_pooling_param { pooled_w: 3 pooled_h: 4 spatial_scale: 0.25 } }""",
    )
    check_against_opencv(tmp_path, text, {"input": features, "rois": rois.reshape(100, 5, 1, 1)}, data_format)


def _write(path, text):
    path.write_text(text)
    return path

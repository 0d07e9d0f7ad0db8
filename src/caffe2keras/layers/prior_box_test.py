"""PriorBox against the SSD fork's loops (weiliu89/caffe, branch ssd) and OpenCV's analytic PriorBox_squares case."""

from __future__ import annotations

import math

import numpy as np
import pytest

import caffe2keras  # noqa: F401  (backend default)
from caffe2keras.layers import PriorBox
from caffe2keras.layout import DATA_FORMATS, Layout

F32 = np.float32


def run_prior_box(layer, feature_shape, image_shape, data_format):
    """PriorBox on zero inputs of these Caffe shapes; the Caffe-layout output."""
    inputs = [np.zeros(Layout(data_format).to_keras(np.zeros(s)).shape, F32) for s in (feature_shape, image_shape)]
    return Layout(data_format).to_caffe(np.asarray(type(layer).from_config(layer.get_config())(inputs)))


def caffe_prior_box(
    feature_hw,
    image_hw,
    min_sizes,
    max_sizes=(),
    ratios=(),
    flip=True,
    clip=False,
    variances=(0.1,),
    step=None,
    offset=0.5,
):
    """prior_box_layer.cpp's loops, one value at a time."""
    layer_h, layer_w = feature_hw
    img_h, img_w = image_hw
    ars = [1.0]
    for r in ratios:
        if all(abs(F32(r) - a) >= 1e-6 for a in ars):
            ars.append(F32(r))
            if flip:
                ars.append(F32(1.0 / F32(r)))
    step_h, step_w = step if step else (F32(img_h) / F32(layer_h), F32(img_w) / F32(layer_w))
    out = []

    def box(cx, cy, w, h):
        out.extend(
            F32(v)
            for v in ((cx - w / 2.0) / img_w, (cy - h / 2.0) / img_h, (cx + w / 2.0) / img_w, (cy + h / 2.0) / img_h)
        )

    for h in range(layer_h):
        for w in range(layer_w):
            cx = float(F32(F32(w + F32(offset)) * F32(step_w)))
            cy = float(F32(F32(h + F32(offset)) * F32(step_h)))
            for s, min_size in enumerate(min_sizes):
                min_size = int(min_size)
                box(cx, cy, float(min_size), float(min_size))
                if max_sizes:
                    side = float(F32(math.sqrt(min_size * int(max_sizes[s]))))
                    box(cx, cy, side, side)
                for ar in ars:
                    if abs(ar - 1.0) < 1e-6:
                        continue
                    box(cx, cy, float(F32(min_size * math.sqrt(ar))), float(F32(min_size / math.sqrt(ar))))
    corners = np.asarray(out, F32)
    if clip:
        corners = np.clip(corners, 0, 1)
    variance = np.tile(np.resize(np.asarray(variances, F32), 4), len(corners) // 4)
    return np.stack([corners, variance])[None]


@pytest.mark.parametrize("data_format", DATA_FORMATS)
def test_prior_box_squares_opencv_case(data_format):
    """OpenCV's PriorBox_squares: a 1x2 map and image, min_size 2, clip; ratio 1 is ignored."""
    layer = PriorBox(
        [2], aspect_ratios=[1.0], flip=True, clip=True, variances=[0.1, 0.1, 0.2, 0.2], data_format=data_format
    )
    out = run_prior_box(layer, (1, 1, 1, 2), (1, 1, 1, 2), data_format)
    expected = [[0.0, 0.0, 0.75, 1.0, 0.25, 0.0, 1.0, 1.0], [0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.2, 0.2]]
    np.testing.assert_allclose(out, np.asarray([expected], F32), atol=1e-7)


PRIOR_CASES = {
    "ssd_head": dict(
        feature=(3, 3),
        image=(300, 300),
        min_sizes=[105.0],
        max_sizes=[150.0],
        ratios=[2.0, 3.0],
        variances=[0.1, 0.1, 0.2, 0.2],
    ),
    "two_min_sizes": dict(
        feature=(3, 4),
        image=(10, 10),
        min_sizes=[2.0, 3.0],
        max_sizes=[6.0, 7.0],
        ratios=[2.0],
        variances=[0.1, 0.1, 0.2, 0.2],
    ),
    "truncated_sizes_no_flip": dict(
        feature=(2, 5),
        image=(37, 51),
        min_sizes=[7.9],
        max_sizes=[12.6],
        ratios=[3.0, 1.0, 3.0000001, 0.5],
        flip=False,
        variances=[0.2],
    ),
    "step_offset_clip": dict(
        feature=(4, 3), image=(64, 48), min_sizes=[20.0], ratios=[2.0], clip=True, step=(15.0, 17.5), offset=0.25
    ),
}


@pytest.mark.parametrize("data_format", DATA_FORMATS)
@pytest.mark.parametrize("case", sorted(PRIOR_CASES))
def test_prior_box_matches_caffe_loops(case, data_format):
    c = dict(PRIOR_CASES[case])
    feature, image = c.pop("feature"), c.pop("image")
    layer = PriorBox(
        c["min_sizes"],
        c.get("max_sizes", ()),
        c.get("ratios", ()),
        flip=c.get("flip", True),
        clip=c.get("clip", False),
        variances=c.get("variances", [0.1]),
        step=c.get("step"),
        offset=c.get("offset", 0.5),
        data_format=data_format,
    )
    out = run_prior_box(layer, (1, 8, *feature), (1, 3, *image), data_format)
    expected = caffe_prior_box(
        feature,
        image,
        c["min_sizes"],
        c.get("max_sizes", ()),
        c.get("ratios", ()),
        c.get("flip", True),
        c.get("clip", False),
        c.get("variances", [0.1]),
        c.get("step"),
        c.get("offset", 0.5),
    )
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_prior_box_given_image_size_ignores_the_image_input():
    layer = PriorBox([4], image_size=(40, 20), data_format="channels_first")
    out = run_prior_box(layer, (1, 1, 2, 2), (1, 3, 7, 9), "channels_first")
    np.testing.assert_allclose(out, caffe_prior_box((2, 2), (40, 20), [4]), atol=1e-7)


def test_prior_box_repeats_for_every_image():
    layer = PriorBox([2], data_format="channels_first")
    out = np.asarray(layer([np.zeros((3, 1, 2, 2), F32), np.zeros((3, 1, 4, 4), F32)]))
    assert out.shape == (3, 2, 16)
    np.testing.assert_array_equal(out[0], out[2])


@pytest.mark.parametrize("data_format", DATA_FORMATS)
def test_prior_box_of_free_sizes_lays_each_grid_as_caffe(data_format, free_size_model):
    """Built on free sizes, the boxes follow the feature map and image each call brings."""
    layer = PriorBox([60.0], max_sizes=[90.0], aspect_ratios=[2.0], data_format=data_format)
    shape = (None, None, 4) if data_format == "channels_last" else (4, None, None)
    model = free_size_model(layer, shape, shape)
    for feature, image in [((3, 5), (97, 161)), ((7, 2), (211, 64))]:
        inputs = [np.zeros(Layout(data_format).to_keras(np.zeros((1, 4, *hw))).shape, F32) for hw in (feature, image)]
        out = Layout(data_format).to_caffe(np.asarray(model.predict_on_batch(inputs)))
        expected = caffe_prior_box(feature, image, [60.0], [90.0], [2.0])
        np.testing.assert_allclose(out, expected, atol=1e-7)

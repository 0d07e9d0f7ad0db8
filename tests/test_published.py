"""Published deploy prototxts, exactly as their repositories ship them (tests/data/published/),
with synthetic weights, against OpenCV 4 where it runs the net and Caffe's own rules elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.errors import ConversionWarning, WeightsError
from caffe2keras.synthetic import synthetic_weights
from tests.golden import assert_matches, run, save_and_reload
from tests.shared import FORMATS

PUBLISHED = Path(__file__).parent / "data" / "published"
COLORIZATION = PUBLISHED / "colorization_v2" / "colorization_deploy_v2.prototxt"
# The published caffemodel holds every layer but these two; OpenCV's sample injects them.
COLORIZATION_UNPUBLISHED = ("class8_ab", "conv8_313_rh")
COLORIZATION_SIZE = {"data_l": (1, 1, 32, 32)}  # a free size: the net is fully convolutional


def colorization_weights(tmp_path, prototxt=COLORIZATION) -> Path:
    layers = synthetic_weights(prototxt, input_shapes=COLORIZATION_SIZE)
    path = tmp_path / "colorization.caffemodel"
    write_caffemodel(path, [layer for layer in layers if layer[0] not in COLORIZATION_UNPUBLISHED])
    return path


@pytest.mark.parametrize("data_format", FORMATS)
def test_colorization_starts_missing_layers_from_their_constant_fillers(data_format, tmp_path):
    """As Caffe: class8_ab has no filler (constant 0), conv8_313_rh's scale is constant 2.606."""
    weights = colorization_weights(tmp_path)
    expected = r"conv8_313_rh \(Scale: blob 0 constant 2\.606\); class8_ab \(Convolution: blob 0 constant 0, blob 1 constant 0\)"
    with pytest.warns(ConversionWarning, match=expected):
        model = caffe2keras.convert(
            COLORIZATION,
            weights,
            input_shapes=COLORIZATION_SIZE,
            outputs=["conv8_313", "class8_313_rh", "class8_ab"],
            data_format=data_format,
        )
    image = np.random.default_rng(0).uniform(-50, 50, (1, 1, 32, 32)).astype(np.float32)
    logits, probabilities, ab = run(save_and_reload(model, tmp_path), [image], data_format)
    scaled = logits.astype(np.float64) * np.float32(2.606)
    softmax = np.exp(scaled - scaled.max(1, keepdims=True))
    assert_matches(probabilities, softmax / softmax.sum(1, keepdims=True), "class8_313_rh")
    assert ab.shape == (1, 2, 8, 8) and not ab.any()


def test_colorization_output_is_the_silenced_blob(tmp_path):
    model = caffe2keras.convert(COLORIZATION, input_shapes=COLORIZATION_SIZE)
    assert model.output_names == ["class8_ab"]


def test_missing_layer_with_a_random_filler_is_refused_unless_allowed(tmp_path):
    text = COLORIZATION.read_text().replace(
        "    num_output: 2\n", '    num_output: 2\n    weight_filler { type: "xavier" }\n'
    )
    prototxt = tmp_path / "random_filler.prototxt"
    prototxt.write_text(text)
    weights = colorization_weights(tmp_path, prototxt)
    with pytest.raises(
        WeightsError,
        match=r"class8_ab.*random 'xavier' filler.*allow_random=True.*"
        r"--allow-random-init.*Received: convolution_param.weight_filler='xavier'",
    ):
        caffe2keras.convert(prototxt, weights, input_shapes=COLORIZATION_SIZE)
    with pytest.warns(ConversionWarning, match=r"class8_ab \(Convolution: blob 0 xavier, blob 1 constant 0\)"):
        model = caffe2keras.convert(prototxt, weights, input_shapes=COLORIZATION_SIZE, allow_random=True)
    assert model.output_names == ["class8_ab"]


def test_a_layer_present_with_too_few_blobs_is_still_refused(tmp_path):
    """Caffe copies a layer the file holds blob by blob and refuses a count that differs."""
    layers = synthetic_weights(COLORIZATION, input_shapes=COLORIZATION_SIZE)
    weights = tmp_path / "short.caffemodel"
    write_caffemodel(weights, [(n, t, b[:1] if n == "class8_ab" else b) for n, t, b in layers])
    with pytest.raises(WeightsError, match="class8_ab.*holds 1 blob"):
        caffe2keras.convert(COLORIZATION, weights, input_shapes=COLORIZATION_SIZE)


YOLO_TINY_TAIL = """
input: "x" input_shape { dim: 1 dim: 4 dim: 26 dim: 26 }
layer { name: "pool1" type: "Pooling" bottom: "x" top: "p1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "pool2" type: "Pooling" bottom: "p1" top: "p2" pooling_param { pool: MAX kernel_size: 2 stride: 1 } }
layer { name: "up" type: "Deconvolution" bottom: "p2" top: "up"
        convolution_param { num_output: 4 group: 4 kernel_size: 2 stride: 2 bias_term: false } }
layer { name: "route" type: "Concat" bottom: "up" bottom: "x" top: "route" }
"""


def test_yolov3_tiny_ports_pooling_is_refused_with_the_sizes(tmp_path):
    """Darknet keeps 13x13 through its stride-1 max pooling; Caffe gives 12x12, so the route fails."""
    from caffe2keras.errors import ShapeError

    prototxt = tmp_path / "yolo_tiny_tail.prototxt"
    prototxt.write_text(YOLO_TINY_TAIL)
    with pytest.raises(ShapeError) as caught:
        caffe2keras.convert(prototxt)
    message = str(caught.value)
    assert "Layer 'route' (Concat)" in message
    assert "Pooling layer 'pool2' (stride 1) gives 12x12 from 13x13" in message
    assert "stock Caffe refuses this net too" in message and message.rstrip().endswith(")]")


RES10 = PUBLISHED / "opencv_face_detector_res10_ssd" / "deploy.prototxt"


@pytest.fixture(scope="module")
def res10_weights(tmp_path_factory):
    """Synthetic weights, with the face class's conf filters sharpened so that hundreds of
    priors pass the 0.01 threshold and the 200-row keep_top_k matters."""
    layers = []
    for name, layer_type, blobs in synthetic_weights(RES10):
        if name.endswith("_mbox_conf"):
            blobs = [b * np.float32(4) for b in blobs]
        if name.endswith("_mbox_loc"):
            blobs = [b * np.float32(3) for b in blobs]  # boxes that leave the image, for clip
        layers.append((name, layer_type, blobs))
    path = tmp_path_factory.mktemp("res10") / "res10.caffemodel"
    write_caffemodel(path, layers)
    return path


# The variants of the res10 prototxt, as (threshold, clip) lines for its detection_output_param:
# * "as-published": RES10 itself, opencv/opencv's samples/dnn/face_detector/deploy.prototxt of tag
#   3.4.0 (tests/data/published/.../SOURCE.md): threshold 0.01 and no `clip`;
# * "clip": the same with `clip: true` added, so that hundreds of rows, some past the image, get
#   clipped;
# * "clip-published": the later revision of that file in dkurt/opencv (commit 6f354000, 28,103
#   bytes: threshold 0.2 and `clip: 1`, the only change), the one caffe2keras used to refuse.
RES10_VARIANTS = {
    "as-published": None,
    "clip": "confidence_threshold: 0.01\n    clip: true\n",
    "clip-published": "confidence_threshold: 0.2\n    clip: 1\n",
}


@pytest.mark.slow  # the whole res10 SSD at 300x300, converted and run by OpenCV
@pytest.mark.parametrize("variant", list(RES10_VARIANTS))
@pytest.mark.parametrize("data_format", FORMATS)
def test_res10_face_detector_gives_opencvs_detection_rows(variant, data_format, res10_weights, tmp_path):
    cv2 = pytest.importorskip("cv2")
    from tests.test_ssd import assert_detections_match, opencv_detections

    prototxt = RES10
    clip = RES10_VARIANTS[variant] is not None
    if clip:
        prototxt = tmp_path / f"deploy_{variant}.prototxt"
        text = RES10.read_text().replace("confidence_threshold: 0.01\n", RES10_VARIANTS[variant])
        assert text != RES10.read_text()
        prototxt.write_text(text)
    image = np.random.default_rng(3).uniform(-120, 120, (1, 3, 300, 300)).astype(np.float32)
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(res10_weights))
    net.setInput(image, "data")
    expected = opencv_detections(np.asarray(net.forward()))
    model = save_and_reload(caffe2keras.convert(prototxt, res10_weights, data_format=data_format), tmp_path)
    (actual,) = run(model, [image], data_format)
    assert_detections_match(actual, expected, "detection_out")
    boxes = expected[:, 3:]
    assert len(expected) > (20 if variant == "clip-published" else 100)
    if clip:
        assert boxes.min() >= 0 and boxes.max() <= 1
    else:
        assert boxes.min() < 0 or boxes.max() > 1  # so the clipped case tests something

"""Caffe's input pipeline: what a net's data layers did to its images, resolved for a Keras model.

At TEST time Caffe's ``DataTransformer`` turns each C×H×W image (0–255, in BGR order as Caffe's
tools decode images) into the net's blob:

* ``crop_size``: the centre crop, at offset ``((H - crop) // 2, (W - crop) // 2)``;
* ``mean_file``: minus the mean image at the same place (a mean image has the size of the
  uncropped images, so it is centre-cropped to the input);
* ``mean_value``: minus one value per channel (one value serves every channel);
* then times ``scale``.

The blob's channels are in the order the net was trained on: BGR for nets fed by Caffe's own image
tools (the BVLC/ImageNet nets), RGB for nets whose data was written from RGB planes (CIFAR-10's
``convert_cifar_data``, MTCNN from MATLAB). A converted model with preprocessing always takes what
Keras users hold, RGB 0–255, and reverses the channels when the net was trained on BGR: the one
choice left to the user is the net's ``channel_order``, declared once, at conversion.

``mirror`` is random augmentation (a coin flip per image) and is ignored. The Keras side is
:class:`caffe2keras.layers.CaffePreprocessing`; this module imports no Keras until it runs one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from caffe2keras.caffe import read_blob_file
from caffe2keras.errors import ModelFileError, PreprocessingError
from caffe2keras.graph import Graph, layer_is_kept
from caffe2keras.layout import Layout
from caffe2keras.numeric import require_finite, require_real

# The data layers that run Caffe's DataTransformer (HDF5Data, DummyData and Input do not).
TRANSFORMING_TYPES = frozenset({"Data", "ImageData", "MemoryData", "WindowData", "AnnotatedData", "VideoData"})
CHANNEL_ORDERS = ("bgr", "rgb")
# The option of earlier versions named the order of the model's input, the opposite of what it now
# declares; it is refused with the translation rather than silently read the new way.
RENAMED_INPUT_ORDER = (
    "input_order is replaced by channel_order, the order the net was trained on ('bgr' for the "
    "BVLC/ImageNet nets, 'rgb' for CIFAR-10 and MTCNN); the model always takes RGB 0-255. The old "
    "input_order='rgb' is channel_order='bgr', the old input_order='bgr' is channel_order='rgb'."
)

MeanSpec = str | os.PathLike | Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Preprocessing:
    """Options for ``convert(..., preprocessing=...)``. Each None takes the prototxt's ``transform_param``.

    Attributes:
        mean: a ``.binaryproto`` mean image, or one value per channel in the net's channel order
            (B, G, R for a BGR net), or one value for all channels.
        scale: Caffe's ``transform_param.scale``.
        channel_order: the channel order the net was trained on: ``"bgr"`` (default for 3-channel
            inputs: Caffe's image tools, the BVLC/ImageNet nets) or ``"rgb"`` (CIFAR-10, MTCNN).
            Either way the model takes RGB images; a BGR net gets them reversed.
        input: the input blob to preprocess; default: those whose data layer declares a
            ``transform_param``, else the first input.
        input_order: refused, with its translation to ``channel_order`` (an earlier version's
            option, which named the order of the model's input instead).
    """

    mean: MeanSpec | None = None
    scale: float | None = None
    channel_order: str | None = None
    input: str | None = None
    input_order: str | None = None

    def __post_init__(self):
        if self.input_order is not None:
            raise PreprocessingError(f"{RENAMED_INPUT_ORDER} Received: input_order={self.input_order!r}")
        check_channel_order(self.channel_order)

    @classmethod
    def from_argument(cls, value) -> Preprocessing | None:
        """``convert``'s ``preprocessing=``: None/False, True, a dict of these options, or an instance."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"mean", "scale", "channel_order", "input", "input_order"})
            if unknown:
                raise PreprocessingError(
                    f"preprocessing takes the keys mean, scale, channel_order and input. Received: keys={unknown}"
                )
            return cls(**value)
        raise PreprocessingError(
            "preprocessing must be True, a dict of mean/scale/channel_order/input, or a "
            f"caffe2keras.Preprocessing. Received: preprocessing={value!r}"
        )

    @property
    def explicit(self) -> bool:
        return self.mean is not None or self.scale is not None or self.channel_order is not None


def check_channel_order(order: str | None) -> None:
    if order is not None and order not in CHANNEL_ORDERS:
        raise PreprocessingError(f"channel_order must be one of {CHANNEL_ORDERS}. Received: channel_order={order!r}")


@dataclass(frozen=True)
class DataTransform:
    """One data layer's ``transform_param``, as the prototxt writes it."""

    layer: str
    blob: str
    mean_file: str
    mean_values: tuple[float, ...]
    scale: float
    crop_size: int

    @property
    def declares_preprocessing(self) -> bool:
        return bool(self.mean_file or self.mean_values or self.scale != 1.0)

    def describe(self) -> str:
        steps = []
        if self.mean_file:
            steps.append(f"minus the mean image {self.mean_file}")
        if self.mean_values:
            steps.append(f"minus the mean values {', '.join(f'{v:g}' for v in self.mean_values)}")
        if self.scale != 1.0:
            steps.append(f"times {self.scale:g}")
        return f"Caffe's data layer {self.layer!r} fed blob {self.blob!r} its pixels (0-255, in the order the net was trained on) {', '.join(steps)}"


@dataclass(frozen=True)
class InputPreprocessing:
    """The preprocessing of one input blob, resolved: what the Keras layer is made from."""

    blob: str
    mean: np.ndarray | None  # in Caffe's layout, (C, 1, 1) or a whole (C, H, W) image, in the net's order
    scale: float
    channel_order: str | None  # the net's; None: the blob as it is (not a colour image, or labels alone)
    labels: tuple[str, ...] | None = None
    min_size: tuple[int, int] | None = None  # of a free-size input: the smallest (H, W) the net takes

    def layer(self, data_format: str, name: str | None = None):
        from caffe2keras.layers.preprocessing import CaffePreprocessing

        mean = None if self.mean is None else Layout(data_format).to_keras(self.mean[None])[0]
        return CaffePreprocessing(
            mean_shape=None if mean is None else mean.shape,
            scale=self.scale,
            channel_order=self.channel_order,
            data_format=data_format,
            labels=self.labels,
            mean=mean,
            min_size=self.min_size,
            name=name,
        )


def declared_transforms(net) -> dict[str, DataTransform]:
    """The ``transform_param`` of each TEST-phase data layer, by the blob it feeds (its first top)."""
    transforms = {}
    for layer in net.layer:
        if layer.type not in TRANSFORMING_TYPES or not layer.top or not layer.HasField("transform_param"):
            continue
        if not layer_is_kept(layer, 1, net.state.level, list(net.state.stage)):
            continue
        param = layer.transform_param
        transforms[layer.top[0]] = DataTransform(
            layer.name,
            layer.top[0],
            param.mean_file,
            tuple(float(v) for v in param.mean_value),
            float(param.scale),
            int(param.crop_size),
        )
    return transforms


def unembedded_warning(transforms: Mapping[str, DataTransform]) -> str | None:
    """The one line saying what Caffe did to the inputs that a conversion leaves to the user."""
    declared = [t for t in transforms.values() if t.declares_preprocessing]
    if not declared:
        return None
    what = "; ".join(t.describe() for t in declared)
    return (
        f"{what}. The converted model takes the blob as it is; convert with --preprocess "
        "(API: preprocessing=True) to build Caffe's preprocessing into the model."
    )


def find_mean_file(mean_file: str, prototxt: str | os.PathLike) -> Path:
    """A ``transform_param.mean_file``: as written if absolute, else next to the prototxt.

    Prototxts name it from Caffe's root (``examples/cifar10/mean.binaryproto``), so the path under
    the prototxt's folder is tried first, then the file name alone beside the prototxt.
    """
    path = Path(mean_file)
    folder = Path(prototxt).parent
    candidates = [path] if path.is_absolute() else list(dict.fromkeys([folder / path, folder / path.name]))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelFileError(
        mean_file,
        f"the mean_file of {prototxt} is not found (looked for {', '.join(map(str, candidates))}). "
        "Put it next to the prototxt, or give the mean with --mean FILE.binaryproto|V1,V2,V3 "
        f"(API: preprocessing={{'mean': ...}}). Received: transform_param.mean_file={mean_file!r}",
    )


def read_mean_image(path: str | os.PathLike) -> np.ndarray:
    """A ``mean.binaryproto`` as a (C, H, W) float32 image (Caffe writes it as (1, C, H, W))."""
    image = read_blob_file(path)
    require_finite(image, "mean", lambda message: ModelFileError(path, message))
    while image.ndim > 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3:
        raise ModelFileError(path, f"a mean image is a (1, C, H, W) blob; this one has shape {image.shape}.")
    return image


def mean_for_input(mean: MeanSpec, caffe_shape: Sequence[int], blob: str) -> np.ndarray:
    """The mean to subtract from blob ``blob`` of shape (N, C, H, W), in Caffe's layout.

    Values give (C, 1, 1); a file or (C, H', W') array is centre-cropped to (C, H, W), as Caffe's
    TEST phase crops its images.
    """
    channels, height, width = caffe_shape[1:]
    if isinstance(mean, (str, os.PathLike)):
        mean = read_mean_image(mean)
    mean = require_real(mean, "mean", PreprocessingError)
    require_finite(mean, "mean", PreprocessingError)
    mean = mean.astype(np.float32)
    if mean.ndim <= 1:
        values = mean.reshape(-1)
        if len(values) not in (1, channels):
            raise PreprocessingError(
                f"input {blob!r} has {channels} channels; give one mean value, or one per channel "
                f"in the net's channel order. Received: mean={values.tolist()}"
            )
        return np.broadcast_to(values, (channels,)).reshape(channels, 1, 1).copy()
    if height is None or width is None:
        # Caffe's DataTransformer subtracts a mean image only from images of its own size.
        raise PreprocessingError(
            f"a mean image fits one input size, but input {blob!r} has a free size ({height}x{width}); give one "
            f"mean value per channel instead (--mean B,G,R), or convert at a fixed size. Received: mean.shape={mean.shape}"
        )
    if mean.ndim != 3 or mean.shape[0] != channels or mean.shape[1] < height or mean.shape[2] < width:
        raise PreprocessingError(
            f"a mean image must have the input's {channels} channels and at least its {height}x{width} "
            f"pixels (it is centre-cropped to input {blob!r}, as Caffe's TEST phase crops). "
            f"Received: mean.shape={mean.shape}"
        )
    top, left = (mean.shape[1] - height) // 2, (mean.shape[2] - width) // 2
    return np.ascontiguousarray(mean[:, top : top + height, left : left + width])


def resolve_input(
    blob: str,
    caffe_shape: Sequence[int],
    options: Preprocessing,
    declared: DataTransform | None,
    prototxt: str | os.PathLike | None,
) -> InputPreprocessing:
    """One input's preprocessing: the options, each defaulting to the data layer's ``transform_param``."""
    if len(caffe_shape) != 4:
        raise PreprocessingError(
            f"preprocessing applies to image inputs (N, C, H, W); input {blob!r} has shape "
            f"{tuple(caffe_shape)}. Received: input={blob!r}"
        )
    channels = caffe_shape[1]
    mean = options.mean
    if mean is None and declared is not None:
        if declared.mean_file:
            mean = find_mean_file(declared.mean_file, prototxt) if prototxt is not None else declared.mean_file
        elif declared.mean_values:
            mean = declared.mean_values
    scale = options.scale if options.scale is not None else declared.scale if declared is not None else 1.0
    require_finite(require_real(scale, "scale", PreprocessingError), "scale", PreprocessingError)
    order = options.channel_order
    if order == "bgr" and channels != 3:
        raise PreprocessingError(
            f"channel_order 'bgr' has the model reverse RGB images into BGR; input {blob!r} has "
            f"{channels} channels, not 3. Received: channel_order={order!r}"
        )
    if channels != 3:
        order = None  # not a colour image (gray digits, MTCNN's stacked patches): nothing to reorder
    elif order is None:
        order = "bgr"
    return InputPreprocessing(
        blob, None if mean is None else mean_for_input(mean, caffe_shape, blob), float(scale), order
    )


def plan_inputs(
    net,
    prototxt: str | os.PathLike,
    graph: Graph,
    options: Preprocessing | None,
    labels: Sequence[str] | None,
    min_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> list[InputPreprocessing]:
    """The preprocessing steps a conversion puts in front of its inputs.

    Labels ride on the first step, and each free-size input's minimum size on its own; without
    preprocessing they get a step that passes the blob on unchanged (channel_order None: the model
    takes the net's blob, not RGB images).
    """
    inputs = {ref.name: graph.shapes[ref] for ref in graph.inputs}
    transforms = declared_transforms(net)
    if options is None:
        targets = []
    elif options.input is not None:
        if options.input not in inputs:
            raise PreprocessingError(
                f"the net has no input {options.input!r}; its inputs are {', '.join(inputs)}. "
                f"Received: input={options.input!r}"
            )
        targets = [options.input]
    else:
        targets = [blob for blob in inputs if blob in transforms and transforms[blob].declares_preprocessing]
        if not targets:
            if not options.explicit:
                raise PreprocessingError(
                    "the net declares no preprocessing (no data layer with a transform_param); give the "
                    "mean and/or scale (--mean, --scale; API: preprocessing={'mean': ..., 'scale': ...}). "
                    "Received: preprocessing=True"
                )
            targets = [next(iter(inputs))]
    steps = [resolve_input(b, inputs[b], options, transforms.get(b), prototxt) for b in targets]
    if labels is not None and not steps:
        steps = [_unchanged(next(iter(inputs)))]
    steps += [_unchanged(blob) for blob in min_sizes or {} if blob not in {s.blob for s in steps}]
    return [
        replace(
            step,
            labels=tuple(labels) if labels is not None and index == 0 else None,
            min_size=(min_sizes or {}).get(step.blob),
        )
        for index, step in enumerate(steps)
    ]


def _unchanged(blob: str) -> InputPreprocessing:
    """A step that passes the blob on as it is: a place for the labels or the minimum size."""
    return InputPreprocessing(blob, None, 1.0, None)


def preprocess_input(
    x,
    *,
    mean: MeanSpec | None = None,
    scale: float | None = None,
    channel_order: str | None = None,
    data_format: str = "channels_last",
    prototxt: str | os.PathLike | None = None,
    input_order: str | None = None,
) -> np.ndarray:
    """Caffe's preprocessing applied to images outside the model (as ``keras.applications`` does).

    Args:
        x: images, RGB 0–255 (as Keras and PIL hold them), one ``(H, W, C)`` or a batch
            ``(N, H, W, C)`` (``channels_first``: ``(C, H, W)`` / ``(N, C, H, W)``).
        mean, scale, channel_order: as :class:`Preprocessing`; ``channel_order`` is the net's.
        input_order: refused, as by :class:`Preprocessing`.
        data_format: the layout of ``x`` and of the result.
        prototxt: a net whose data layer's ``transform_param`` gives what is not given
            (a relative ``mean_file`` is looked for next to it).

    Returns:
        The float32 blob Caffe's data layer made, in ``data_format`` and x's rank.
    """
    array = require_real(x, "x", PreprocessingError)
    single = array.ndim == 3
    batch = array[None] if single else array
    if batch.ndim != 4:
        raise PreprocessingError(f"preprocess_input takes images of rank 3 or 4. Received: x.shape={array.shape}")
    layout = Layout(data_format)
    caffe_shape = layout.caffe_shape(batch.shape)
    declared = None
    if prototxt is not None:
        from caffe2keras.caffe import read_net

        transforms = [t for t in declared_transforms(read_net(prototxt)).values() if t.declares_preprocessing]
        declared = transforms[0] if transforms else None
    step = resolve_input(
        "x", caffe_shape, Preprocessing(mean, scale, channel_order, input_order=input_order), declared, prototxt
    )

    from keras import ops

    result = ops.convert_to_numpy(step.layer(data_format)(batch))
    return result[0] if single else result

"""Image files as a converted model's input: what the model takes, and the files read to fit it.

A model with Caffe's preprocessing built in (``convert(..., preprocessing=...)``) takes RGB images
of 0–255, whatever order the net was trained on (its ``CaffePreprocessing`` layer reorders them).
A model without it takes Caffe's blob as is; it is fed the pixels as Caffe's own tools decoded
them (BGR, 0–255), which is right only for BGR nets trained without a mean or a scale.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from caffe2keras.errors import ConversionWarning, ModelFileError, PreprocessingError
from caffe2keras.image_files import decode_image
from caffe2keras.keras_files import check_keras_file
from caffe2keras.minimum_size import check_input_sizes


@dataclass(frozen=True)
class ImageInput:
    """The one image input of a model: its size, layout and channel order."""

    height: int | None  # None: the model takes any height (a free size), and each image keeps its own
    width: int | None
    channels: int
    data_format: str
    order: str  # "rgb", "bgr" or "gray"
    preprocessed: bool


# Caffe's own files, by the endings its tools give them: handed to predict, they need converting first.
CAFFE_FILE_KINDS = {
    ".prototxt": "a Caffe net definition",
    ".caffemodel": "a Caffe weights file",
    ".caffemodel.h5": "a Caffe weights file",
    ".binaryproto": "a Caffe mean file",
}


def load_model_file(path: str | os.PathLike):
    """A ``.keras`` file, loaded with ``safe_mode=True`` and caffe2keras' layers registered."""
    check_keras_file(path)
    kind = next((kind for ending, kind in CAFFE_FILE_KINDS.items() if os.fspath(path).endswith(ending)), None)
    if kind is not None:
        raise ModelFileError(path, f"this is {kind}, not a .keras model; convert it first with caffe2keras convert.")
    if not zipfile.is_zipfile(path) and not os.fspath(path).endswith(".h5"):
        # Keras would answer with its advice about TensorFlow SavedModels, which this is not either.
        raise ModelFileError(
            path, "not a .keras model (a .keras file is a zip archive); make one with caffe2keras convert."
        )
    import keras

    import caffe2keras.layers  # noqa: F401  (registers the custom layers for loading)

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise ModelFileError(path, f"not a loadable .keras model: {exc}") from None


def image_input(model) -> ImageInput:
    """How ``model`` takes images (one 4-D input with 1 or 3 channels, of a fixed or free size)."""
    from caffe2keras.layers.preprocessing import CaffePreprocessing

    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        shapes = [tuple(t.shape) for t in model.inputs]
        raise PreprocessingError(f"images feed a model with one 4-D input. Received: inputs={shapes}")
    shape = tuple(model.inputs[0].shape[1:])
    step = next((layer for layer in model.layers if isinstance(layer, CaffePreprocessing)), None)
    if step is not None:
        data_format = step.data_format
    else:  # no record of the layout: the channel axis is the one of 1 or 3
        data_format = "channels_last" if shape[-1] in (1, 3) else "channels_first"
    height, width, channels = shape if data_format == "channels_last" else (*shape[1:], shape[0])
    if channels not in (1, 3):
        raise PreprocessingError(f"images feed an input with 1 or 3 channels. Received: input shape={shape}")
    if channels == 1:
        order = "gray"
    else:
        order = "rgb" if step is not None and step.channel_order is not None else "bgr"
    preprocessed = step is not None and (step.mean_shape is not None or step.scale != 1.0)
    return ImageInput(height, width, channels, data_format, order, preprocessed)


def read_images(paths: Sequence[str | os.PathLike], spec: ImageInput) -> list[np.ndarray]:
    """The files decoded (OpenCV), in the input's order and layout, 0–255, as float32.

    Each is resized bilinearly to the input's fixed sizes; along a free size it keeps its own.
    """
    try:
        import cv2
    except ImportError:
        raise ModelFileError(paths[0], "reading images needs OpenCV: pip install 'caffe2keras[images]'.") from None
    images = []
    for path in paths:
        image = decode_image(path, cv2.IMREAD_GRAYSCALE if spec.order == "gray" else cv2.IMREAD_COLOR)
        size = (spec.width or image.shape[1], spec.height or image.shape[0])
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        image = image[:, :, None] if image.ndim == 2 else image
        if spec.order == "rgb":
            image = image[:, :, ::-1]
        image = image.transpose(2, 0, 1) if spec.data_format == "channels_first" else image
        images.append(image.astype(np.float32))
    return images


def predict_images(model, images: Sequence[np.ndarray]) -> np.ndarray:
    """The model's output for each image, in order; images of one size run as one batch.

    A model with free sizes takes images of different sizes, but not in one batch.
    """
    batches: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        batches.setdefault(image.shape, []).append(index)
    outputs: list[np.ndarray | None] = [None] * len(images)
    for indices in batches.values():
        check_input_sizes(model, [(len(indices), *images[indices[0]].shape)])
        predicted = model.predict(np.stack([images[i] for i in indices]), verbose=0)
        for index, output in zip(indices, predicted):
            outputs[index] = output
    shapes = sorted({output.shape for output in outputs})
    if len(shapes) > 1:
        raise PreprocessingError(
            "the images give outputs of different shapes (the output depends on the image size), so they "
            f"are not one score per class; give images of one size. Received: output shapes={shapes}"
        )
    return np.stack(outputs)


PREDICT_BATCH = 32


def predict_files(model, paths: Sequence[str | os.PathLike], spec: ImageInput, batch_size: int = PREDICT_BATCH):
    """The model's output for the files, ``batch_size`` at a time: decoded, run and dropped per batch.

    Yields one array of outputs per batch, in the files' order. Every output has one shape (one
    score per class), checked across batches as :func:`predict_images` checks within one.
    """
    shape = None
    for start in range(0, len(paths), batch_size):
        scores = predict_images(model, read_images(paths[start : start + batch_size], spec))
        if shape is not None and scores.shape[1:] != shape:
            raise PreprocessingError(
                "the images give outputs of different shapes (the output depends on the image size), so they "
                f"are not one score per class; give images of one size. Received: output shapes={[shape, scores.shape[1:]]}"
            )
        shape = scores.shape[1:]
        yield scores


def warn_if_raw(spec: ImageInput, model_path) -> None:
    if not spec.preprocessed:
        warnings.warn(
            f"{model_path} has no preprocessing built in: it is fed raw {spec.order.upper()} pixels (0-255); for a net "
            "trained with a mean or a scale, convert it with --preprocess (the prototxt's transform_param) or "
            "--mean/--scale.",
            ConversionWarning,
            stacklevel=2,
        )

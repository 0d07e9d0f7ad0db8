"""Caffe's ImageData layer as a ``keras.utils.PyDataset``: a list of image paths and labels, read
and transformed as ``image_data_layer.cpp`` and ``DataTransformer`` do in TRAIN.

Images are decoded and resized with OpenCV, as Caffe does (BGR, bilinear). The random choices
(the list's shuffle, TRAIN's random crop offset and mirror) use NumPy's generator seeded by the
solver's ``random_seed`` and the batch's index, not Caffe's generator.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from caffe2keras.caffe.prototxt import read_text
from caffe2keras.errors import LayerError, ModelFileError, UnsupportedParameterError
from caffe2keras.layout import Layout
from caffe2keras.preprocessing import read_mean_image
from caffe2keras.training.data import resolve_path

# transform_param fields of SSD's fork, which Caffe's ImageData does not take.
FORK_TRANSFORMS = (
    "resize_param",
    "noise_param",
    "emit_constraint",
    "distort_param",
    "expand_param",
    "crop_h",
    "crop_w",
)


def image_list(layer, net_folder: str) -> list[tuple[str, int]]:
    """The (path, label) lines of the list file; as Caffe, the label follows the last space."""
    p = layer.image_data_param
    list_path = resolve_path(p.source, net_folder)
    entries = []
    for number, line in enumerate(
        read_text(list_path, "an ImageData source lists 'path label' lines.").splitlines(), 1
    ):
        if not line.strip():
            continue
        path, _, label = line.rstrip().rpartition(" ")
        if not path or not label.lstrip("-").isdigit():
            raise ModelFileError(list_path, f"line {number} is not 'path label': {line[:100]!r}.")
        entries.append((resolve_path(p.root_folder + path, os.path.dirname(list_path), net_folder), int(label)))
    if not entries:
        raise ModelFileError(list_path, "lists no image.")
    return entries


class ImageBatches(keras.utils.PyDataset):
    """Batches of images and labels; forward pass ``f`` takes list entries ``f*B ... f*B+B-1``,
    wrapping (and, with ``shuffle``, reshuffling) at the end of the list as Caffe does."""

    def __init__(self, layer, net_folder: str, steps: int, layout: Layout | None, seed: int | None, **kwargs):
        super().__init__(**kwargs)
        p, t = layer.image_data_param, layer.transform_param
        self.layer = layer
        _check_supported(layer)
        self.entries = image_list(layer, net_folder)
        self.batch_size, self.steps, self.first_step = int(p.batch_size), int(steps), 0
        self.layout = layout or Layout()
        self.seed = 0 if seed is None else int(seed)
        self.shuffle, self.color = p.shuffle, p.is_color
        self.size = (p.new_width, p.new_height) if p.new_height > 0 and p.new_width > 0 else None
        self.crop, self.mirror, self.scale = int(t.crop_size), t.mirror, float(t.scale)
        first = self._read(self.entries[0][0])
        self.image_shape = first.shape  # (C, H, W)
        self.mean = self._mean(t, net_folder, first.shape)

    def caffe_shapes(self) -> dict[str, tuple[int, ...]]:
        c, h, w = self.image_shape
        h, w = (self.crop, self.crop) if self.crop else (h, w)
        data, label = self.layer.top
        return {data: (self.batch_size, c, h, w), label: (self.batch_size,)}

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        forward = self.first_step + index
        rng = np.random.default_rng((self.seed, forward))
        images, labels = [], []
        for item in range(forward * self.batch_size, (forward + 1) * self.batch_size):
            path, label = self.entries[self._entry(item)]
            images.append(self._transform(self._read(path), rng))
            labels.append(label)
        data, label = self.layer.top
        batch = np.stack(images)
        return ({data: self.layout.to_keras(batch), label: np.asarray(labels, np.float32)},)

    def _entry(self, item: int) -> int:
        epoch, position = divmod(item, len(self.entries))
        if not self.shuffle:
            return position
        return int(np.random.default_rng((self.seed, epoch, 1)).permutation(len(self.entries))[position])

    def _read(self, path: str) -> np.ndarray:
        import cv2

        image = cv2.imread(path, cv2.IMREAD_COLOR if self.color else cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ModelFileError(path, "OpenCV cannot read it as an image (ImageData lists it).")
        if self.size is not None:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_LINEAR)
        image = image[:, :, None] if image.ndim == 2 else image
        image = image.transpose(2, 0, 1).astype(np.float32)
        if hasattr(self, "image_shape") and image.shape != self.image_shape:
            raise ModelFileError(
                path, f"has shape {image.shape} (C, H, W) after resizing, the list's first image {self.image_shape}."
            )
        return image

    def _mean(self, t, net_folder: str, shape) -> np.ndarray | float:
        if t.mean_file and t.mean_value:
            raise LayerError(
                self.layer.name,
                self.layer.type,
                "give mean_file or mean_value, not both.",
                "transform_param.mean_file",
                t.mean_file,
            )
        if t.mean_file:
            mean = read_mean_image(resolve_path(t.mean_file, net_folder))
            if mean.shape != shape:
                raise LayerError(
                    self.layer.name,
                    self.layer.type,
                    f"the mean image has shape {mean.shape}, the images {shape}.",
                    "transform_param.mean_file",
                    t.mean_file,
                )
            return mean
        if t.mean_value:
            values = list(t.mean_value)
            if len(values) not in (1, shape[0]):
                raise LayerError(
                    self.layer.name,
                    self.layer.type,
                    f"mean_value needs 1 or {shape[0]} values.",
                    "transform_param.mean_value",
                    values,
                )
            return np.asarray(values * (shape[0] if len(values) == 1 else 1), np.float32)[:, None, None]
        return 0.0

    def _transform(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """DataTransformer::Transform in TRAIN: (pixel - mean) * scale, a random crop, a random mirror."""
        image = (image - self.mean) * self.scale
        if self.crop:
            _, h, w = image.shape
            if self.crop > h or self.crop > w:
                raise LayerError(
                    self.layer.name,
                    self.layer.type,
                    f"crop_size exceeds the {h}x{w} images.",
                    "transform_param.crop_size",
                    self.crop,
                )
            top, left = rng.integers(h - self.crop + 1), rng.integers(w - self.crop + 1)
            image = image[:, top : top + self.crop, left : left + self.crop]
        if self.mirror and rng.integers(2):
            image = image[:, :, ::-1]
        return image


def _check_supported(layer) -> None:
    p, t = layer.image_data_param, layer.transform_param
    if len(layer.top) != 2:
        raise LayerError(layer.name, layer.type, "ImageData makes two tops, data and label.", "top", list(layer.top))
    if p.rand_skip:
        raise UnsupportedParameterError(
            layer.name,
            layer.type,
            "rand_skip draws from Caffe's generator; not supported",
            "image_data_param.rand_skip",
            p.rand_skip,
        )
    if p.crop_size or p.mean_file or p.mirror or p.scale != 1:
        raise UnsupportedParameterError(
            layer.name,
            layer.type,
            "give crop_size, mean_file, mirror and scale in transform_param (Caffe ignores these)",
            "image_data_param",
            str(p).strip(),
        )
    for name in ("force_color", "force_gray", *FORK_TRANSFORMS):
        if t.HasField(name) if not t.DESCRIPTOR.fields_by_name[name].is_repeated else len(getattr(t, name)):
            raise UnsupportedParameterError(
                layer.name,
                layer.type,
                f"transform_param.{name} is not supported in training",
                f"transform_param.{name}",
                getattr(t, name),
            )
    if p.batch_size < 1:
        raise LayerError(
            layer.name, layer.type, "batch_size must be at least 1.", "image_data_param.batch_size", p.batch_size
        )

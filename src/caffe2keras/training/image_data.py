"""Caffe's image data layers as ``keras.utils.PyDataset``s, transformed as ``DataTransformer`` does
in TRAIN: ImageData (a list of image paths and labels, ``image_data_layer.cpp``) and Data from an
LMDB of Datum records (``data_layer.cpp``, with the ``lmdb`` package).

Images are decoded and resized with OpenCV, as Caffe does (BGR, bilinear). The random choices
(the list's shuffle, TRAIN's random crop offset and mirror) use NumPy's generator seeded by the
solver's ``random_seed`` and the batch's index, not Caffe's generator.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from caffe2keras.caffe.prototxt import read_text
from caffe2keras.caffe.schema import enum_name
from caffe2keras.errors import LayerError, ModelFileError, UnsupportedParameterError
from caffe2keras.layout import Layout
from caffe2keras.preprocessing import read_mean_image
from caffe2keras.training.paths import resolve_path

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


class TransformedBatches(keras.utils.PyDataset):
    """Batches of transformed images and labels: forward pass ``f`` takes records ``f*B ... f*B+B-1``,
    wrapping at the end as Caffe does. Subclasses read record ``i`` (``_record``) and say how many."""

    def __init__(self, layer, transform, batch_size: int, steps: int, layout, seed, net_folder: str, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer
        self.batch_size, self.steps, self.first_step = int(batch_size), int(steps), 0
        self.layout = layout or Layout()
        self.seed = 0 if seed is None else int(seed)
        self.crop, self.mirror, self.scale = int(transform.crop_size), transform.mirror, float(transform.scale)
        first, _ = self._record(0)
        self.image_shape = first.shape  # (C, H, W)
        self.mean = self._mean(transform, net_folder, first.shape)

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
            image, label = self._record(item)
            if image.shape != self.image_shape:
                raise ModelFileError(
                    self.layer.name, f"record {item} has shape {image.shape} (C, H, W), the first {self.image_shape}."
                )
            images.append(self._transform(image, rng))
            labels.append(label)
        data, label = self.layer.top
        return ({data: self.layout.to_keras(np.stack(images)), label: np.asarray(labels, np.float32)},)

    def _record(self, item: int) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def _mean(self, t, net_folder: str, shape) -> np.ndarray | float:
        name, kind = self.layer.name, self.layer.type
        if t.mean_file and t.mean_value:
            raise LayerError(
                name, kind, "give mean_file or mean_value, not both.", "transform_param.mean_file", t.mean_file
            )
        if t.mean_file:
            mean = read_mean_image(resolve_path(t.mean_file, net_folder))
            if mean.shape != shape:
                message = f"the mean image has shape {mean.shape}, the images {shape}."
                raise LayerError(name, kind, message, "transform_param.mean_file", t.mean_file)
            return mean
        if t.mean_value:
            values = list(t.mean_value)
            if len(values) not in (1, shape[0]):
                raise LayerError(
                    name, kind, f"mean_value needs 1 or {shape[0]} values.", "transform_param.mean_value", values
                )
            return np.asarray(values * (shape[0] if len(values) == 1 else 1), np.float32)[:, None, None]
        return 0.0

    def _transform(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """DataTransformer::Transform in TRAIN: (pixel - mean) * scale, a random crop, a random mirror."""
        image = (image - self.mean) * self.scale
        if self.crop:
            _, h, w = image.shape
            if self.crop > h or self.crop > w:
                message = f"crop_size exceeds the {h}x{w} images."
                raise LayerError(self.layer.name, self.layer.type, message, "transform_param.crop_size", self.crop)
            top, left = rng.integers(h - self.crop + 1), rng.integers(w - self.crop + 1)
            image = image[:, top : top + self.crop, left : left + self.crop]
        if self.mirror and rng.integers(2):
            image = image[:, :, ::-1]
        return image


class ImageBatches(TransformedBatches):
    """ImageData: the list's images in order (reshuffled at each pass with ``shuffle``)."""

    def __init__(self, layer, net_folder: str, steps: int, layout: Layout | None, seed: int | None, **kwargs):
        p = layer.image_data_param
        _check_supported(layer)
        self.entries = image_list(layer, net_folder)
        self.shuffle, self.color = p.shuffle, p.is_color
        self.size = (p.new_width, p.new_height) if p.new_height > 0 and p.new_width > 0 else None
        self.list_seed = 0 if seed is None else int(seed)
        super().__init__(layer, layer.transform_param, p.batch_size, steps, layout, seed, net_folder, **kwargs)

    def _record(self, item: int) -> tuple[np.ndarray, int]:
        epoch, position = divmod(item, len(self.entries))
        if self.shuffle:
            position = int(np.random.default_rng((self.list_seed, epoch, 1)).permutation(len(self.entries))[position])
        path, label = self.entries[position]
        return _decoded(path, self.color, self.size), label


class DatumBatches(TransformedBatches):
    """Data from an LMDB: its Datum records in key order, as Caffe's cursor reads them."""

    def __init__(self, layer, net_folder: str, steps: int, layout: Layout | None, seed: int | None, **kwargs):
        p = layer.data_param
        _check_data_supported(layer)
        try:
            import lmdb
        except ImportError:
            raise UnsupportedParameterError(
                layer.name,
                layer.type,
                "reading an LMDB needs the lmdb package: pip install lmdb",
                "data_param.backend",
                "LMDB",
            ) from None
        path = resolve_path(p.source, net_folder)
        try:
            self.env = lmdb.open(path, readonly=True, lock=False, readahead=False, max_readers=64)
        except lmdb.Error as exc:
            raise ModelFileError(path, f"cannot open it as an LMDB: {exc}.") from None
        with self.env.begin() as txn:
            self.keys = list(txn.cursor().iternext(keys=True, values=False))
        if not self.keys:
            raise ModelFileError(path, "the LMDB holds no record.")
        self.force_color = layer.transform_param.force_color or p.force_encoded_color
        self.force_gray = layer.transform_param.force_gray
        super().__init__(layer, layer.transform_param, p.batch_size, steps, layout, seed, net_folder, **kwargs)

    def _record(self, item: int) -> tuple[np.ndarray, int]:
        from caffe2keras.caffe.schema import schema

        with self.env.begin() as txn:
            datum = schema().Datum.FromString(txn.get(self.keys[item % len(self.keys)]))
        if datum.encoded:
            import cv2

            flag = (
                cv2.IMREAD_COLOR
                if self.force_color
                else cv2.IMREAD_GRAYSCALE
                if self.force_gray
                else cv2.IMREAD_UNCHANGED
            )
            image = cv2.imdecode(np.frombuffer(datum.data, np.uint8), flag)
            if image is None:
                raise ModelFileError(self.layer.name, f"record {item}: OpenCV cannot decode its encoded image.")
            image = image[:, :, None] if image.ndim == 2 else image
            return image.transpose(2, 0, 1).astype(np.float32), datum.label
        shape = (datum.channels, datum.height, datum.width)
        values = np.frombuffer(datum.data, np.uint8) if datum.data else np.asarray(datum.float_data, np.float32)
        if values.size != np.prod(shape):
            raise ModelFileError(self.layer.name, f"record {item} holds {values.size} values for shape {shape}.")
        return values.reshape(shape).astype(np.float32), datum.label


def _decoded(path: str, color: bool, size) -> np.ndarray:
    """An image file as Caffe's ReadImageToCVMat reads it, as a (C, H, W) float32 array."""
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ModelFileError(path, "OpenCV cannot read it as an image (ImageData lists it).")
    if size is not None:
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    image = image[:, :, None] if image.ndim == 2 else image
    return image.transpose(2, 0, 1).astype(np.float32)


def _refuse_loader_fields(layer, p, field: str, legacy_note: str = "") -> None:
    """The fields ImageData and Data share that training does not compute: rand_skip, and the old
    transforms inside the layer's own parameter (``transform_param`` holds them now)."""
    if p.rand_skip:
        raise UnsupportedParameterError(
            layer.name,
            layer.type,
            "rand_skip draws from Caffe's generator; not supported",
            f"{field}.rand_skip",
            p.rand_skip,
        )
    if p.crop_size or p.mean_file or p.mirror or p.scale != 1:
        raise UnsupportedParameterError(
            layer.name,
            layer.type,
            f"give crop_size, mean_file, mirror and scale in transform_param{legacy_note}",
            field,
            str(p).strip(),
        )


def _check_supported(layer) -> None:
    p, t = layer.image_data_param, layer.transform_param
    if len(layer.top) != 2:
        raise LayerError(layer.name, layer.type, "ImageData makes two tops, data and label.", "top", list(layer.top))
    _refuse_loader_fields(layer, p, "image_data_param", " (Caffe ignores these)")
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


def _check_data_supported(layer) -> None:
    p, t = layer.data_param, layer.transform_param
    if len(layer.top) != 2:
        raise LayerError(
            layer.name,
            layer.type,
            "caffe2keras trains from Data layers with data and label tops.",
            "top",
            list(layer.top),
        )
    if enum_name(p, "backend") != "LMDB":
        raise UnsupportedParameterError(
            layer.name,
            layer.type,
            "only LMDB databases are read; convert LevelDB to LMDB",
            "data_param.backend",
            enum_name(p, "backend"),
        )
    _refuse_loader_fields(layer, p, "data_param")
    for name in FORK_TRANSFORMS:
        if t.HasField(name):
            raise UnsupportedParameterError(
                layer.name,
                layer.type,
                f"transform_param.{name} is not supported in training",
                f"transform_param.{name}",
                getattr(t, name),
            )
    if p.batch_size < 1:
        raise LayerError(
            layer.name, layer.type, "batch_size must be at least 1.", "data_param.batch_size", p.batch_size
        )

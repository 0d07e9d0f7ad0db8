"""Caffe's data layers as Keras input pipelines (``keras.utils.PyDataset``).

Each dataset's item ``f`` is forward pass ``f``'s batch: a dict of every data top, in the
model's layout, so ``model.fit(dataset)`` needs no targets (labels are net inputs).
"""

from __future__ import annotations

import os

import keras
import numpy as np

from caffe2keras.caffe.limits import MAX_HDF5_BYTES, checked_input_file
from caffe2keras.caffe.prototxt import read_text
from caffe2keras.errors import LayerError, ModelFileError, UnsupportedParameterError
from caffe2keras.layout import Layout
from caffe2keras.training.paths import resolve_path

_H5_ERRORS = (OSError, RuntimeError, KeyError, TypeError, ValueError)


class CaffeBatches(keras.utils.PyDataset):
    """Batches of rows read in order, as Caffe's data layers read them with ``shuffle: false``:
    forward pass ``f`` takes rows ``f*B ... f*B+B-1`` modulo the row count, so a batch may wrap.

    Args:
        columns: ``{top: array}`` in Caffe's layout, equal row counts.
        batch_size: B.
        steps: the number of forward passes (the dataset's length).
        layout: the model's layout (default channels_last).
        order: the row order (a permutation), or None for the rows as stored.

    ``first_step`` (0) is the forward pass item 0 stands for, to resume a run where it stopped.
    """

    def __init__(self, columns: dict, batch_size: int, steps: int, layout: Layout | None = None, order=None, **kwargs):
        super().__init__(**kwargs)
        layout = layout or Layout()
        self.row_shapes = {name: tuple(np.shape(values)[1:]) for name, values in columns.items()}
        self.columns = {name: layout.to_keras(np.asarray(values, np.float32)) for name, values in columns.items()}
        self.rows = len(next(iter(self.columns.values())))
        self.batch_size = int(batch_size)
        self.steps = int(steps)
        self.order = None if order is None else np.asarray(order)
        self.first_step = 0

    def caffe_shapes(self) -> dict[str, tuple[int, ...]]:
        """The Caffe shapes of the tops: the batch size, then each row's shape."""
        return {top: (self.batch_size, *self.row_shapes[top]) for top in self.columns}

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        rows = ((self.first_step + index) * self.batch_size + np.arange(self.batch_size)) % self.rows
        if self.order is not None:
            rows = self.order[rows]
        return ({name: values[rows] for name, values in self.columns.items()},)


def hdf5_columns(layer, net_folder: str) -> dict[str, np.ndarray]:
    """The rows of an HDF5Data layer: its list file's files, in order, each dataset named after a top."""
    import h5py

    p = layer.hdf5_data_param
    if not p.source:
        raise LayerError(
            layer.name,
            layer.type,
            "an HDF5Data layer needs the list file of its HDF5 files.",
            "hdf5_data_param.source",
            "",
        )
    if p.batch_size < 1:
        raise LayerError(
            layer.name, layer.type, "batch_size must be at least 1.", "hdf5_data_param.batch_size", p.batch_size
        )
    list_path = resolve_path(p.source, net_folder)
    list_folder = os.path.dirname(list_path)
    names = [
        line.strip() for line in read_text(list_path, "an HDF5Data source lists HDF5 files, one a line.").splitlines()
    ]
    files = [resolve_path(name, list_folder, net_folder) for name in names if name]
    if not files:
        raise ModelFileError(list_path, "lists no HDF5 file.")
    parts: dict[str, list[np.ndarray]] = {top: [] for top in layer.top}
    for path in files:
        checked_input_file(path, "HDF5 data file", MAX_HDF5_BYTES)
        try:
            with h5py.File(path, "r") as f:
                counts = set()
                for top in layer.top:
                    if top not in f:
                        raise ModelFileError(path, f"holds no dataset {top!r} for top {top!r} of layer {layer.name!r}.")
                    values = np.asarray(f[top][()], np.float32)
                    counts.add(values.shape[0] if values.ndim else -1)
                    parts[top].append(values)
        except _H5_ERRORS as exc:
            raise ModelFileError(path, f"cannot read it as HDF5 data: {exc}.") from None
        if len(counts) != 1 or -1 in counts:
            raise ModelFileError(path, f"its datasets {list(layer.top)} must have the same number of rows.")
    return {top: np.concatenate(values) for top, values in parts.items()}


def data_layer_batches(layer, net_folder: str, steps: int, layout: Layout | None, seed: int | None):
    """The input pipeline of one data layer of the TRAIN net (``caffe_shapes()`` gives its tops' shapes)."""
    if layer.type in ("ImageData", "Data"):
        from caffe2keras.training.image_data import DatumBatches, ImageBatches

        return (ImageBatches if layer.type == "ImageData" else DatumBatches)(layer, net_folder, steps, layout, seed)
    if layer.type != "HDF5Data":
        raise UnsupportedParameterError(
            layer.name,
            layer.type,
            "caffe2keras trains from HDF5Data, ImageData and Data (LMDB) layers; convert the data to HDF5",
            "type",
            layer.type,
        )
    columns = hdf5_columns(layer, net_folder)
    rows = len(next(iter(columns.values())))
    # Caffe shuffles with its own generator: the order differs, the distribution does not.
    order = np.random.default_rng(seed).permutation(rows) if layer.hdf5_data_param.shuffle else None
    return CaffeBatches(columns, layer.hdf5_data_param.batch_size, steps, layout, order)


def memory_batches(layer, arrays, steps: int, layout: Layout | None) -> CaffeBatches:
    """A MemoryData layer's batches from the arrays given for it (pycaffe's ``set_input_arrays``)."""
    p = layer.memory_data_param
    if arrays is None:
        raise LayerError(
            layer.name,
            layer.type,
            "a MemoryData layer trains from arrays: from_solver(..., memory_data={name: (data, labels)})",
            "memory_data",
            None,
        )
    if layer.HasField("transform_param"):
        raise UnsupportedParameterError(
            layer.name,
            layer.type,
            "transform_param on MemoryData is not supported in training",
            "transform_param",
            str(layer.transform_param).strip(),
        )
    data, labels = (np.asarray(a, np.float32) for a in arrays)
    expected = (p.channels, p.height, p.width)
    if data.ndim != 4 or data.shape[1:] != expected or labels.shape != (len(data),):
        raise LayerError(
            layer.name,
            layer.type,
            f"memory data must be (N, {', '.join(map(str, expected))}) images and (N,) labels",
            "memory_data",
            (data.shape, labels.shape),
        )
    if p.batch_size < 1 or len(data) % p.batch_size:
        raise LayerError(
            layer.name,
            layer.type,
            f"the row count ({len(data)}) must be a multiple of batch_size, as Caffe checks",
            "memory_data_param.batch_size",
            p.batch_size,
        )
    if len(layer.top) != 2:
        raise LayerError(layer.name, layer.type, "MemoryData makes two tops, data and label.", "top", list(layer.top))
    data_top, label_top = layer.top
    return CaffeBatches({data_top: data, label_top: labels}, p.batch_size, steps, layout)

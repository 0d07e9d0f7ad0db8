"""Read trained weights: binary ``.caffemodel`` and Caffe's HDF5 snapshots.

Weights are returned per layer name, in file order, each blob as a float32
array in Caffe's own layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError

from caffe2keras.caffe.schema import schema
from caffe2keras.caffe.upgrade import V1_TYPE_NAMES
from caffe2keras.errors import ModelFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Blob:
    """One parameter blob. ``legacy`` marks a shape read from num/channels/height/width,
    which Caffe matches against a layer's blob shape padded to 4-D with leading 1s."""

    data: np.ndarray
    legacy: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


@dataclass(frozen=True)
class LayerWeights:
    name: str
    type: str  # "" when the file does not say (HDF5 snapshots)
    blobs: tuple[Blob, ...]


Weights = dict[str, LayerWeights]


def read_weights(path: str | os.PathLike) -> Weights:
    """Read a ``.caffemodel`` (binary NetParameter) or ``.caffemodel.h5`` file."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except FileNotFoundError:
        raise ModelFileError(path, "no such file.") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot read the file: {exc.strerror}.") from None
    if head == HDF5_SIGNATURE:
        return read_hdf5_weights(path)
    return read_binary_weights(path)


def blob_from_proto(blob, source, layer_name: str, index: int) -> Blob:
    # Caffe's Blob::FromProto: any legacy dimension present means num/channels/height/width;
    # otherwise the shape message, whose absence means a scalar (as Caffe writes 0-d blobs).
    legacy = any(blob.HasField(name) for name in ("num", "channels", "height", "width"))
    if legacy:
        shape = (blob.num, blob.channels, blob.height, blob.width)
    else:
        shape = tuple(blob.shape.dim)
    values = blob.data if len(blob.data) else blob.double_data
    count = int(np.prod(shape, dtype=np.int64))
    if len(values) != count:
        raise ModelFileError(
            source,
            f"blob {index} of layer {layer_name!r} holds {len(values)} values but its "
            f"shape {shape} needs {count}; the file is corrupt.",
        )
    data = np.asarray(values, dtype=np.float32).reshape(shape)
    return Blob(data, legacy)


def read_binary_weights(path: str | os.PathLike) -> Weights:
    """The plain path: protobuf decodes the whole NetParameter."""
    with open(path, "rb") as f:
        payload = f.read()
    net = schema().NetParameter()
    try:
        net.ParseFromString(payload)
    except DecodeError as exc:
        raise ModelFileError(
            path, f"not a readable binary caffemodel (truncated or corrupt): {exc}."
        ) from None
    weights: Weights = {}
    for layer in net.layer:
        weights[layer.name] = LayerWeights(
            layer.name,
            layer.type,
            tuple(blob_from_proto(b, path, layer.name, i) for i, b in enumerate(layer.blobs)),
        )
    if net.layers:
        type_enum = schema().V1LayerParameter.DESCRIPTOR.fields_by_name["type"].enum_type
        for layer in net.layers:
            weights[layer.name] = LayerWeights(
                layer.name,
                V1_TYPE_NAMES.get(type_enum.values_by_number[layer.type].name, ""),
                tuple(blob_from_proto(b, path, layer.name, i) for i, b in enumerate(layer.blobs)),
            )
    if not weights:
        raise ModelFileError(path, "the file holds no layers; it is not a caffemodel.")
    return weights


def read_hdf5_weights(path: str | os.PathLike) -> Weights:
    """Caffe's ``Net::ToHDF5`` layout: ``/data/<layer name>/<blob index>``."""
    import h5py

    weights: Weights = {}
    try:
        with h5py.File(path, "r") as f:
            if "data" not in f:
                raise ModelFileError(path, "an HDF5 file without a /data group is not Caffe weights.")
            layers: dict[str, dict[int, np.ndarray]] = {}

            def collect(name, obj):
                # Layer names may contain '/', which HDF5 turns into nested groups.
                layer_name, _, index = name.rpartition("/")
                if isinstance(obj, h5py.Dataset) and index.isdigit():
                    layers.setdefault(layer_name, {})[int(index)] = np.asarray(obj, dtype=np.float32)

            f["data"].visititems(collect)
    except OSError as exc:
        raise ModelFileError(path, f"not a readable HDF5 file (truncated or corrupt): {exc}.") from None
    for name, blobs in layers.items():
        if sorted(blobs) != list(range(len(blobs))):
            raise ModelFileError(path, f"layer {name!r} has blobs {sorted(blobs)}; expected 0..n-1.")
        weights[name] = LayerWeights(name, "", tuple(Blob(blobs[i]) for i in range(len(blobs))))
    return weights

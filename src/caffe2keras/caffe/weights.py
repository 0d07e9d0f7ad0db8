"""Read trained weights: binary ``.caffemodel`` and Caffe's HDF5 snapshots.

Weights are returned per layer name, in file order, each blob as a float32
array in Caffe's own layout.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError

from caffe2keras.caffe import wire
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


def make_blob(shape: tuple[int, ...], legacy: bool, values: np.ndarray, source, layer_name: str, index: int) -> Blob:
    """A blob from its decoded shape and values (float32), checked as Caffe checks them."""
    count = int(np.prod(shape, dtype=np.int64))
    if len(values) != count or any(d < 0 for d in shape):
        raise ModelFileError(
            source,
            f"blob {index} of layer {layer_name!r} holds {len(values)} values but its "
            f"shape {shape} needs {count}; the file is corrupt.",
        )
    return Blob(values.reshape(shape), legacy)


def blob_from_proto(blob, source, layer_name: str, index: int) -> Blob:
    # Caffe's Blob::FromProto: any legacy dimension present means num/channels/height/width;
    # otherwise the shape message, whose absence means a scalar (as Caffe writes 0-d blobs).
    legacy = any(blob.HasField(name) for name in ("num", "channels", "height", "width"))
    shape = (blob.num, blob.channels, blob.height, blob.width) if legacy else tuple(blob.shape.dim)
    values = blob.data if len(blob.data) else blob.double_data
    return make_blob(shape, legacy, np.asarray(values, dtype=np.float32), source, layer_name, index)


def read_binary_weights(path: str | os.PathLike, *, fast: bool = True) -> Weights:
    """Read a binary ``.caffemodel``.

    ``fast=True`` scans the wire format (:mod:`caffe2keras.caffe.wire`) of the
    memory-mapped file: blob data are read-only numpy views of the file's pages,
    read when used, and the mapping lives as long as any of them (as with any
    memory map, the file must not be truncated meanwhile; replacing it is fine).
    Encodings the scanner leaves to protobuf, and ``fast=False``, take the plain
    path, where protobuf decodes the whole NetParameter into memory.
    """
    if fast:
        try:
            return _read_mapped_weights(path)
        except wire.Unhandled:
            pass
    return _read_parsed_weights(path)


def _read_mapped_weights(path) -> Weights:
    with open(path, "rb") as f:
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty files and pipes cannot be mapped; protobuf reads them
            raise wire.Unhandled("a file that cannot be memory-mapped") from None
    try:
        layers = wire.scan_net(mapped)
    except wire.WireError as exc:
        raise ModelFileError(path, f"not a readable binary caffemodel (truncated or corrupt): {exc}.") from None
    array = np.frombuffer(mapped, np.uint8)
    weights: Weights = {}
    for layer in layers:
        layer_type = _v1_type_name(layer.type) if layer.v1 else layer.type
        blobs = []
        for index, blob in enumerate(layer.blobs):
            legacy = blob.legacy_present
            shape = tuple(blob.legacy_dims) if legacy else tuple(blob.dims)
            blobs.append(make_blob(shape, legacy, wire.blob_values(array, blob), path, layer.name, index))
        weights[layer.name] = LayerWeights(layer.name, layer_type, tuple(blobs))
    if not weights:
        raise ModelFileError(path, "the file holds no layers; it is not a caffemodel.")
    return weights


def _v1_type_name(number: int) -> str:
    type_enum = schema().V1LayerParameter.DESCRIPTOR.fields_by_name["type"].enum_type
    return V1_TYPE_NAMES.get(type_enum.values_by_number[number].name, "")


def _read_parsed_weights(path) -> Weights:
    with open(path, "rb") as f:
        payload = f.read()
    net = schema().NetParameter()
    try:
        net.ParseFromString(payload)
    except DecodeError as exc:
        raise ModelFileError(path, f"not a readable binary caffemodel (truncated or corrupt): {exc}.") from None
    weights: Weights = {}
    for v1, layers in ((False, net.layer), (True, net.layers)):
        for layer in layers:
            weights[layer.name] = LayerWeights(
                layer.name,
                _v1_type_name(layer.type) if v1 else layer.type,
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


def read_blob_file(path: str | os.PathLike) -> np.ndarray:
    """One serialized ``BlobProto``, such as a ``mean.binaryproto``, as a float32 array.

    The shape is the blob's own: Caffe's ``compute_image_mean`` writes ``(1, C, H, W)``.
    """
    try:
        with open(path, "rb") as f:
            payload = f.read()
    except FileNotFoundError:
        raise ModelFileError(path, "no such file.") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot read the file: {exc.strerror}.") from None
    blob = schema().BlobProto()
    try:
        blob.ParseFromString(payload)
    except DecodeError as exc:
        raise ModelFileError(path, f"not a readable binary BlobProto (truncated or corrupt): {exc}.") from None
    if not payload or not (len(blob.data) or len(blob.double_data)):
        raise ModelFileError(path, "the file holds no blob values; it is not a BlobProto such as mean.binaryproto.")
    return blob_from_proto(blob, path, "(blob file)", 0).data

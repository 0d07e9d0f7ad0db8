"""Read trained weights: binary ``.caffemodel`` and Caffe's HDF5 snapshots.

Weights are returned per layer name, in file order, each blob as a float32
array in Caffe's own layout.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Collection

import numpy as np
from google.protobuf.message import DecodeError

from caffe2keras.caffe import wire
from caffe2keras.caffe.blobs import Blob, LayerWeights, Weights
from caffe2keras.caffe.limits import (
    MAX_BLOB_FILE_BYTES,
    MAX_CAFFEMODEL_BYTES,
    MAX_HDF5_BYTES,
    check_path_type,
    checked_blob_shape,
    checked_input_file,
)
from caffe2keras.caffe.schema import schema
from caffe2keras.caffe.upgrade import V1_TYPE_NAMES
from caffe2keras.errors import ModelFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_PARSED_BYTES = 64 << 20  # files the wire scanner leaves to protobuf (groups, names not in UTF-8)


def read_weights(path: str | os.PathLike, layers: Collection[str] | None = None) -> Weights:
    """Read a ``.caffemodel`` (binary NetParameter) or ``.caffemodel.h5`` file.

    ``layers``: the names of the layers to read (those of the net, as Caffe copies only
    those); None reads every layer.
    """
    check_path_type(path, "weights")
    checked_input_file(path, "weights file", max(MAX_CAFFEMODEL_BYTES, MAX_HDF5_BYTES))
    try:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as exc:
        raise ModelFileError(path, f"cannot read the file: {exc.strerror}.") from None
    if head == HDF5_SIGNATURE:
        from caffe2keras.caffe.hdf5 import read_hdf5_weights

        return read_hdf5_weights(path, layers)
    return read_binary_weights(path, layers=layers)


def make_blob(shape: tuple[int, ...], legacy: bool, values: np.ndarray, source, layer_name: str, index: int) -> Blob:
    """A blob from its decoded shape and values (float32), checked as Caffe checks them."""
    checked_blob_shape(shape, len(values), source, f"blob {index} of layer {layer_name!r}")
    return Blob(values.reshape(shape), legacy)


def blob_from_proto(blob, source, layer_name: str, index: int) -> Blob:
    # Caffe's Blob::FromProto: any legacy dimension present means num/channels/height/width;
    # otherwise the shape message, whose absence means a scalar (as Caffe writes 0-d blobs).
    legacy = any(blob.HasField(name) for name in ("num", "channels", "height", "width"))
    shape = (blob.num, blob.channels, blob.height, blob.width) if legacy else tuple(blob.shape.dim)
    values = blob.data if len(blob.data) else blob.double_data
    return make_blob(shape, legacy, np.asarray(values, dtype=np.float32), source, layer_name, index)


def read_binary_weights(
    path: str | os.PathLike, *, fast: bool = True, layers: Collection[str] | None = None
) -> Weights:
    """Read a binary ``.caffemodel``.

    ``fast=True`` scans the wire format (:mod:`caffe2keras.caffe.wire`) of the
    memory-mapped file: blob data are read-only numpy views of the file's pages,
    read when used, and the mapping lives as long as any of them (as with any
    memory map, the file must not be truncated meanwhile; replacing it is fine).
    Encodings the scanner leaves to protobuf, and ``fast=False``, take the plain
    path, where protobuf decodes the whole NetParameter into memory. ``layers`` as
    :func:`read_weights`.
    """
    check_path_type(path, "weights")
    size = checked_input_file(path, "binary caffemodel", MAX_CAFFEMODEL_BYTES)
    if fast:
        try:
            return _read_mapped_weights(path, layers)
        except wire.Unhandled as exc:
            # protobuf holds every entry of the file as an object: bound what a hostile file costs it.
            if size > MAX_PARSED_BYTES:
                raise ModelFileError(
                    path,
                    f"holds {exc}, which only protobuf decodes, and caffe2keras hands it files of at most "
                    f"{MAX_PARSED_BYTES:,} bytes.",
                ) from None
    return _read_parsed_weights(path, layers)


def _read_mapped_weights(path, wanted) -> Weights:
    with open(path, "rb") as f:
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty files and pipes cannot be mapped; protobuf reads them
            raise wire.Unhandled("a file that cannot be memory-mapped") from None
    try:
        layers, count = wire.scan_net(mapped, wanted)
    except wire.WireError as exc:
        raise ModelFileError(path, f"not a readable binary caffemodel (truncated or corrupt): {exc}.") from None
    _check_has_layers(path, count)
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
    return weights


def _check_has_layers(path, count: int) -> None:
    if not count:
        raise ModelFileError(path, "the file holds no layers; it is not a caffemodel.")


def _v1_type_name(number: int) -> str:
    type_enum = schema().V1LayerParameter.DESCRIPTOR.fields_by_name["type"].enum_type
    return V1_TYPE_NAMES.get(type_enum.values_by_number[number].name, "")


def _read_parsed_weights(path, wanted) -> Weights:
    with open(path, "rb") as f:
        payload = f.read()
    net = schema().NetParameter()
    try:
        net.ParseFromString(payload)
    except DecodeError as exc:
        raise ModelFileError(path, f"not a readable binary caffemodel (truncated or corrupt): {exc}.") from None
    _check_has_layers(path, len(net.layer) + len(net.layers))
    weights: Weights = {}
    for v1, layers in ((False, net.layer), (True, net.layers)):
        for layer in layers:
            if wanted is not None and layer.name not in wanted:
                continue
            weights[layer.name] = LayerWeights(
                layer.name,
                _v1_type_name(layer.type) if v1 else layer.type,
                tuple(blob_from_proto(b, path, layer.name, i) for i, b in enumerate(layer.blobs)),
            )
    return weights


def read_blob_file(path: str | os.PathLike) -> np.ndarray:
    """One serialized ``BlobProto``, such as a ``mean.binaryproto``, as a float32 array.

    The shape is the blob's own: Caffe's ``compute_image_mean`` writes ``(1, C, H, W)``.
    """
    size = checked_input_file(path, "blob file", MAX_BLOB_FILE_BYTES)
    try:
        with open(path, "rb") as f:
            payload = f.read(size + 1)
        if len(payload) != size:
            raise ModelFileError(path, "changed size while it was read.")
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

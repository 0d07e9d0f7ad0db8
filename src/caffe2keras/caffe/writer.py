"""Write Caffe weights files: for examples, tests and benchmarks.

The blobs are written straight into the protobuf wire format (packed floats
from the array's bytes), so writing a VGG-sized model costs one pass over
its bytes instead of building a protobuf message of 138M floats.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np


def varint(value: int) -> bytes:
    """``value`` as a protobuf base-128 varint (the caffemodel writer's and the ONNX stream's)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def blob_bytes(array: np.ndarray, legacy: bool = False) -> bytes:
    """A BlobProto: its shape (or legacy 4-D dims) and packed float32 data.

    A 0-d array gets no shape message at all, as Caffe writes scalar blobs.
    """
    shape = np.shape(array)
    array = np.ascontiguousarray(array, dtype="<f4")  # at least 1-D: keep the shape apart
    if legacy:
        dims = (1,) * (4 - len(shape)) + shape
        header = b"".join(varint(f << 3) + varint(int(d)) for f, d in zip((1, 2, 3, 4), dims))
    elif shape:
        header = _length_delimited(7, _length_delimited(1, b"".join(varint(int(d)) for d in shape)))
    else:
        header = b""
    return header + _length_delimited(5, array.tobytes())


def layer_bytes(name: str, layer_type: str, arrays: Sequence[np.ndarray], legacy: bool = False) -> bytes:
    """A LayerParameter holding name, type and blobs (as Caffe's snapshots do, plus the params)."""
    body = _length_delimited(1, name.encode()) + _length_delimited(2, layer_type.encode())
    body += b"".join(_length_delimited(7, blob_bytes(a, legacy)) for a in arrays)
    return _length_delimited(100, body)


def write_caffemodel(
    path: str | os.PathLike,
    layers: Iterable[tuple[str, str, Sequence[np.ndarray]]],
    *,
    legacy_shapes: bool = False,
) -> None:
    """Write ``(layer name, type, [blobs])`` triples as a binary ``.caffemodel``."""
    with open(path, "wb") as f:
        for name, layer_type, arrays in layers:
            f.write(layer_bytes(name, layer_type, arrays, legacy_shapes))


def write_hdf5_weights(path: str | os.PathLike, layers: Iterable[tuple[str, str, Sequence[np.ndarray]]]) -> None:
    """Write weights in the layout of Caffe's ``Net::ToHDF5`` (``/data/<layer>/<i>``)."""
    import h5py

    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for name, _, arrays in layers:
            group = data.create_group(name)
            for index, array in enumerate(arrays):
                group.create_dataset(str(index), data=np.asarray(array, dtype=np.float32))

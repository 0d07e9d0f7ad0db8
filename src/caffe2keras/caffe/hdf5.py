"""Read Caffe's HDF5 weight snapshots (``Net::ToHDF5``: ``/data/<layer name>/<blob index>``) in bounded work.

Only the net's layers are looked up, through hard links only. Each dataset's
declared shape, type and storage are checked against the file before a byte of
its values is read, and its values are read only when a converter asks for
them, after it has compared the shape with the layer's. Caffe writes plain
contiguous datasets; chunked ones compressed with gzip (and shuffled, or
checksummed) are decompressed here chunk by chunk, each capped at its declared
size, because HDF5's own gzip filter grows its buffer as long as the stream
inflates. Datasets stored in other files, virtual ones and other filters are
refused.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Collection

import numpy as np

from caffe2keras.caffe.blobs import Blob, LayerWeights, Weights
from caffe2keras.caffe.limits import MAX_HDF5_BYTES, blob_count, checked_input_file
from caffe2keras.errors import ModelFileError

# HDF5's filter identifiers (H5Zpublic.h).
DEFLATE, SHUFFLE, FLETCHER32 = 1, 2, 3
# What a hostile or broken HDF5 file makes h5py raise.
_H5_ERRORS = (OSError, RuntimeError, KeyError, TypeError, ValueError, IndexError, zlib.error)


def read_hdf5_weights(path: str | os.PathLike, layers: Collection[str] | None = None) -> Weights:
    """The weights of ``layers`` (default: every layer the file holds), each blob read on first use."""
    import h5py

    file_size = checked_input_file(path, "HDF5 weights file", MAX_HDF5_BYTES)
    try:
        with h5py.File(path, "r") as f:
            data = _hard_child(path, f, "data")
            if not isinstance(data, h5py.Group):
                raise ModelFileError(path, "an HDF5 file without a /data group is not Caffe weights.")
            found = _layer_groups(path, data, layers)
            weights: Weights = {}
            for name, group in found.items():
                blobs = _blob_datasets(path, name, group)
                weights[name] = LayerWeights(
                    name, "", tuple(_lazy_blob(path, file_size, name, i, d) for i, d in enumerate(blobs))
                )
            return weights
    except ModelFileError:
        raise
    except _H5_ERRORS as exc:
        raise ModelFileError(path, f"not a readable HDF5 file (truncated or corrupt): {exc}.") from None


def _hard_child(path, group, name: str):
    """``group[name]`` when it is a hard link, None when absent; a soft or external link, which may
    point anywhere (another file, ``/etc/passwd``), is refused rather than read as absent: an absent
    layer would start from its fillers."""
    import h5py

    if name not in group:
        return None
    link = group.get(name, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise ModelFileError(
            path,
            f"{group.name.rstrip('/')}/{name} is a {type(link).__name__}; Caffe's weights files hold "
            f"groups and datasets only. Received: link={type(link).__name__}",
        )
    return group[name]


def _layer_groups(path, data, layers: Collection[str] | None) -> dict:
    """The group of each layer: ``layers`` looked up (a '/' in a name nests groups), or every group
    that holds a numbered dataset."""
    import h5py

    found = {}
    if layers is not None:
        for name in layers:
            group = data
            for part in name.split("/"):
                group = _hard_child(path, group, part) if part and isinstance(group, h5py.Group) else None
            if isinstance(group, h5py.Group):
                found[name] = group
        return found
    pending = [("", data)]
    while pending:
        prefix, group = pending.pop()
        children = [(key, _hard_child(path, group, key)) for key in group]
        if any(key.isdigit() and isinstance(child, h5py.Dataset) for key, child in children):
            found[prefix] = group
        pending.extend((f"{prefix}/{key}" if prefix else key, c) for key, c in children if isinstance(c, h5py.Group))
    return found


def _blob_datasets(path, name: str, group) -> list:
    import h5py

    blobs = {}
    for key in group:
        if key.isdigit():
            dataset = _hard_child(path, group, key)
            if not isinstance(dataset, h5py.Dataset) or str(int(key)) != key:
                raise ModelFileError(path, f"layer {name!r}: /data/{name}/{key} is not a blob dataset.")
            blobs[int(key)] = dataset
    if sorted(blobs) != list(range(len(blobs))):
        raise ModelFileError(path, f"layer {name!r} has blobs {sorted(blobs)}; expected 0..n-1.")
    return [blobs[i] for i in range(len(blobs))]


def _lazy_blob(path, file_size: int, layer: str, index: int, dataset) -> Blob:
    """A blob whose declared shape, type and storage are checked now and whose values are read on first use."""
    from h5py import h5d

    what = f"blob {index} of layer {layer!r}"
    dtype, shape = dataset.dtype, dataset.shape
    if dtype.kind not in "fiu" or dtype.itemsize > 8:
        raise ModelFileError(path, f"{what} holds values of type {dtype}, not numbers.")
    if shape is None:
        raise ModelFileError(path, f"{what} has no shape (an empty HDF5 dataspace).")
    nbytes = blob_count(shape, path, what) * dtype.itemsize
    plist = dataset.id.get_create_plist()
    if plist.get_external_count():
        raise ModelFileError(path, f"{what} keeps its values in another file; caffe2keras reads only this one.")
    layout = plist.get_layout()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if layout == h5d.CONTIGUOUS and nbytes:
        offset = dataset.id.get_offset()
        if offset is None or dataset.id.get_storage_size() < nbytes or offset + nbytes > file_size:
            raise ModelFileError(
                path, f"{what} declares {nbytes:,} bytes that the file does not hold; it is truncated."
            )
    elif layout == h5d.CHUNKED:
        unknown = sorted(set(filters) - {DEFLATE, SHUFFLE, FLETCHER32})
        if unknown:
            raise ModelFileError(
                path,
                f"{what} is compressed with HDF5 filter(s) {unknown}; caffe2keras reads gzip, shuffle, fletcher32.",
            )
    elif layout != h5d.COMPACT:
        raise ModelFileError(path, f"{what} is a virtual dataset; caffe2keras reads plain ones.")
    name = dataset.name

    def load() -> np.ndarray:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                stored = f[name]
                if filters and layout == h5d.CHUNKED:
                    values = _read_chunks(stored, filters)
                else:
                    values = np.empty(shape, dtype)
                    if values.size:
                        stored.read_direct(values)
        except _H5_ERRORS as exc:
            raise ModelFileError(path, f"{what} cannot be read (truncated or corrupt): {exc}.") from None
        return values.astype(np.float32, copy=False)

    return Blob(shape=shape, load=load)


def _read_chunks(dataset, filters: list[int]) -> np.ndarray:
    """A filtered chunked dataset, decoded chunk by chunk, none past its declared size."""
    dtype, shape, chunk_shape = dataset.dtype, dataset.shape, dataset.chunks
    chunk_bytes = int(np.prod(chunk_shape)) * dtype.itemsize
    values = np.zeros(shape, dtype)
    for i in range(dataset.id.get_num_chunks()):
        start = dataset.id.get_chunk_info(i).chunk_offset
        mask, payload = dataset.id.read_direct_chunk(start)
        for position in reversed(range(len(filters))):
            if not mask & (1 << position):
                payload = _unfilter(filters[position], payload, chunk_bytes, dtype.itemsize)
        if len(payload) != chunk_bytes:
            raise ValueError(f"the chunk at {start} decodes to {len(payload)} bytes, not {chunk_bytes}")
        region = tuple(slice(o, min(o + c, s)) for o, c, s in zip(start, chunk_shape, shape))
        if any(r.start >= r.stop for r in region):
            raise ValueError(f"a chunk starts at {start}, outside the shape {shape}")
        chunk = np.frombuffer(payload, dtype).reshape(chunk_shape)
        values[region] = chunk[tuple(slice(0, r.stop - r.start) for r in region)]
    return values


def _unfilter(code: int, payload: bytes, chunk_bytes: int, itemsize: int) -> bytes:
    if code == FLETCHER32:
        return payload[:-4]
    if code == SHUFFLE:
        if len(payload) % itemsize:
            return payload  # only whole chunks are shuffled; the size check refuses the rest
        return np.frombuffer(payload, np.uint8).reshape(itemsize, -1).T.tobytes()
    inflater = zlib.decompressobj()
    payload = inflater.decompress(payload, chunk_bytes)
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError(f"a gzip-compressed chunk inflates past its declared {chunk_bytes} bytes, or is cut off")
    return payload

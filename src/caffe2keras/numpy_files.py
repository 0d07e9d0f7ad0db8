""".npy and .npz files read with the reader's rules: declared sizes checked before a byte of data is read.

A file must be a regular file of at most :data:`MAX_ARRAY_FILE_BYTES`; an ``.npz`` member must be a
stored or deflated ``.npy``, and all its members together may decompress to at most
:data:`MAX_ARRAY_FILE_BYTES`. Every array's header must declare plain numbers (booleans,
integers, floats: never Python objects, which numpy would unpickle, nor strings, complex
numbers, dates or records), and exactly as many bytes as the file or member holds.
"""

from __future__ import annotations

import math
import tokenize
import zipfile

import numpy as np

from caffe2keras.caffe.limits import MIB, checked_input_file
from caffe2keras.errors import ModelFileError

MAX_ARRAY_FILE_BYTES = 1024 * MIB
NUMBER_KINDS = "biuf"
_MEMBER_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def read_npy(path) -> np.ndarray:
    """The array of a ``.npy`` file."""
    size = checked_input_file(path, ".npy file", MAX_ARRAY_FILE_BYTES)
    try:
        with open(path, "rb") as file:
            return _read_array(file, size, path, "the array")
    except OSError as exc:
        raise ModelFileError(path, f"cannot read the file: {exc.strerror or exc}.") from None


def read_npz(path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file, by name (the member's name less ``.npy``)."""
    checked_input_file(path, ".npz file", MAX_ARRAY_FILE_BYTES)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            total = sum(member.file_size for member in members)
            if total > MAX_ARRAY_FILE_BYTES:
                raise ModelFileError(
                    path,
                    f"its arrays would take {total:,} bytes once decompressed; an .npz may hold at most "
                    f"{MAX_ARRAY_FILE_BYTES:,}.",
                )
            arrays = {}
            for member in members:
                name = member.filename.removesuffix(".npy")
                if member.filename == name or member.compress_type not in _MEMBER_COMPRESSION:
                    raise ModelFileError(
                        path,
                        f"member {member.filename!r} is not a stored or deflated .npy array, as numpy.savez "
                        "and savez_compressed write them.",
                    )
                with archive.open(member) as stream:
                    arrays[name] = _read_array(stream, member.file_size, path, f"array {name!r}")
            return arrays
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as exc:
        raise ModelFileError(path, f"not a readable .npz archive: {exc}.") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot read the file: {exc.strerror or exc}.") from None


def _read_array(stream, size: int, path, what: str) -> np.ndarray:
    """The array ``stream`` holds in ``size`` bytes, its header checked before its data is read."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except (ValueError, EOFError, SyntaxError, tokenize.TokenError) as exc:  # TokenError: an unclosed bracket
        raise ModelFileError(path, f"{what} is not a .npy array: {exc}.") from None
    if dtype.hasobject or dtype.kind not in NUMBER_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ModelFileError(
            path, f"{what} holds {dtype} values; arrays must hold plain numbers (bool, int, uint or float)."
        )
    data_bytes = math.prod(shape) * dtype.itemsize
    header_bytes = stream.tell() if hasattr(stream, "tell") else None
    if header_bytes is not None and header_bytes + data_bytes != size:
        raise ModelFileError(
            path,
            f"{what} declares shape {shape} of {dtype}, {data_bytes:,} bytes, but the file holds "
            f"{size - header_bytes:,}; it is truncated or corrupt.",
        )
    array = np.empty(shape[::-1] if fortran_order else shape, dtype=dtype)
    buffer, filled = memoryview(array.reshape(-1)).cast("B"), 0
    while filled < data_bytes:
        count = stream.readinto(buffer[filled:])
        if not count:
            raise ModelFileError(path, f"{what} is truncated: {filled:,} of {data_bytes:,} bytes.")
        filled += count
    return array.transpose() if fortran_order else array

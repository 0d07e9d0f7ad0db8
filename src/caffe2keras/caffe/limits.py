"""The bounds every input file is held to, checked before a byte of it is read.

A model file must be a regular file (``/dev/zero`` never ends, a FIFO blocks) no
larger than its kind's limit, and every blob it declares must fit Caffe's own
bounds: at most :data:`MAX_BLOB_AXES` axes (``kMaxBlobAxes``), no negative
dimension, at most :data:`MAX_BLOB_COUNT` values (Caffe counts them in an
``int``), and no more values than the bytes present hold.
"""

from __future__ import annotations

import math
import os
import stat

from caffe2keras.errors import ArgumentError, ModelFileError

MIB = 1 << 20
MAX_PROTOTXT_BYTES = 64 * MIB
# Caffe's own bound on a binary proto (kProtoReadBytesLimit in io.cpp is INT_MAX).
MAX_CAFFEMODEL_BYTES = (1 << 31) - 1
MAX_HDF5_BYTES = 8 << 30
# One BlobProto such as a mean.binaryproto: a 2048×2048 colour mean in doubles takes 100 MB.
MAX_BLOB_FILE_BYTES = 256 * MIB
MAX_BLOB_AXES = 32  # Caffe's kMaxBlobAxes
MAX_BLOB_COUNT = (1 << 31) - 1  # Caffe's Blob::count_ is an int


def check_path_type(path, argument: str) -> None:
    """Refuse anything but a path (``str`` or ``os.PathLike``) with the package's own error."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(f"{argument} must be a path (str or os.PathLike). Received: {argument}={path!r}")


def checked_input_file(path, kind: str, limit: int) -> int:
    """The size of ``path``, after checking it is a regular file of at most ``limit`` bytes."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(path, "no such file.") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(path, f"cannot read the file: {getattr(exc, 'strerror', None) or exc}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise ModelFileError(path, f"is a directory, not a {kind}.")
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError(path, f"is not a regular file (a device, a pipe or a socket); a {kind} must be one.")
    if info.st_size > limit:
        raise ModelFileError(
            path,
            f"is {info.st_size:,} bytes; a {kind} may have at most {limit:,} (see the README's 'Errors' section).",
        )
    return info.st_size


def checked_blob_shape(shape, available_values: int, source, what: str) -> int:
    """The value count of a declared blob shape, checked as Caffe's ``Blob::Reshape`` checks it
    and against the ``available_values`` the file actually holds for it."""
    count = blob_count(shape, source, what)
    if count != available_values:
        raise ModelFileError(
            source,
            f"{what} holds {available_values:,} values but its shape {tuple(shape)} needs {count:,}; "
            "the file is truncated or corrupt.",
        )
    return count


def blob_count(shape, source, what: str) -> int:
    """The value count of a declared blob shape, checked as Caffe's ``Blob::Reshape`` checks it."""
    if len(shape) > MAX_BLOB_AXES:
        raise ModelFileError(
            source, f"{what} declares {len(shape)} axes; Caffe allows at most {MAX_BLOB_AXES}. The file is corrupt."
        )
    if any(d < 0 for d in shape):
        raise ModelFileError(source, f"{what} declares a negative dimension in {tuple(shape)}. The file is corrupt.")
    count = math.prod(int(d) for d in shape)  # Python integers: no wrap-around
    if count > MAX_BLOB_COUNT:
        raise ModelFileError(
            source,
            f"{what} declares shape {tuple(shape)}, {count:,} values; Caffe allows at most {MAX_BLOB_COUNT:,}.",
        )
    return count

"""``.keras`` files checked with the reader's rules before Keras opens them.

A ``.keras`` file is a zip archive that Keras reads member by member, its ``config.json`` whole: a
FIFO would hang it and a zip bomb would fill memory. The file must be a regular file of at most
:data:`MAX_KERAS_BYTES`, its members may declare at most that many bytes together, and its
configuration at most :data:`MAX_CONFIG_BYTES`.
"""

from __future__ import annotations

import zipfile

from caffe2keras.caffe.limits import MAX_HDF5_BYTES, MAX_PROTOTXT_BYTES, checked_input_file
from caffe2keras.errors import ModelFileError

# The weights inside are HDF5, held to the HDF5 reader's limit.
MAX_KERAS_BYTES = MAX_HDF5_BYTES
MAX_CONFIG_BYTES = MAX_PROTOTXT_BYTES


def check_keras_file(path) -> None:
    """Refuse a ``.keras`` file that is no regular file, too large, or declares too much once unpacked."""
    checked_input_file(path, ".keras model file", MAX_KERAS_BYTES)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return  # not an archive: the loader says what it is instead
    unpacked = sum(member.file_size for member in members)
    config = max((m.file_size for m in members if m.filename.endswith(".json")), default=0)
    if unpacked > MAX_KERAS_BYTES or config > MAX_CONFIG_BYTES:
        raise ModelFileError(
            path,
            f"its members declare {unpacked:,} bytes (the largest configuration {config:,}); a .keras file may "
            f"unpack to at most {MAX_KERAS_BYTES:,}, its configuration to {MAX_CONFIG_BYTES:,}.",
        )

"""Save a model as ``.keras`` without holding its weights twice in memory or on disk.

``model.save`` builds the weights' HDF5 file in memory when it thinks memory
suffices (then copies that buffer into the archive), or in a temporary file it
then copies, and first copies every variable to a new numpy array.
:func:`save_model` writes the same archive — ``metadata.json``, ``config.json``,
``model.weights.h5``, assets — with Keras' own serialization, but HDF5 writes
each variable from a view of its buffer straight into the archive's (stored,
uncompressed) weights member; zipfile then takes the member's CRC from a read
of those bytes. Where this Keras lacks the internals used, or they fail in any way but
the file system's own errors, it calls ``model.save``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np

from caffe2keras.errors import ArgumentError
from caffe2keras.progress import Progress
from caffe2keras.recursion import recursion_room

CRC_CHUNK = 16 << 20

try:  # Keras' own serialization; private, so checked before use
    from keras.src.saving import saving_lib
except ImportError:  # pragma: no cover - a Keras without this module
    saving_lib = None
try:
    from keras.src.utils import module_utils
except ImportError:  # pragma: no cover - a Keras without this module
    module_utils = None

_INTERNALS = (
    "_serialize_model_as_json",
    "_save_state",
    "H5IOStore",
    "DiskIOStore",
    "_METADATA_FILENAME",
    "_CONFIG_FILENAME",
    "_VARS_FNAME_H5",
    "_ASSETS_DIRNAME",
)


def _streaming_supported() -> bool:
    return (
        saving_lib is not None
        and all(hasattr(saving_lib, name) for name in _INTERNALS)
        and all(hasattr(saving_lib.H5IOStore, name) for name in ("_get_h5_file", "_create_h5_group"))
    )


def save_model(model, path: str | os.PathLike, *, progress: bool = False) -> None:
    """Write ``model`` to ``path`` (a ``.keras`` file) as ``model.save(path)`` does, streaming its weights.

    ``progress=True`` shows a progress bar on stderr.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ArgumentError(f"the path must end in .keras. Received: path={str(path)!r}")
    # Each byte is written once, then read once for the archive's CRC.
    total = 2 * sum(np.asarray(v).nbytes for v in model.weights)
    with (
        Progress(progress) as bars,
        bars.phase("saving", total) as advance,
        recursion_room(len(model.layers)),
        tensorflow_left_unimported(),
    ):
        if _streaming_supported():
            try:
                _save_streaming(model, path, advance)
                return
            except OSError:
                raise  # the file system's refusal (a full disk...) is the user's to see
            except Exception:  # a Keras whose private internals changed shape
                path.unlink(missing_ok=True)
        model.save(path)


@contextlib.contextmanager
def tensorflow_left_unimported():
    """Keras' serializer (and ``keras.utils.set_random_seed``) asks whether TensorFlow is available by importing it: seconds, and gigabytes
    of address space, where the ``[export]`` extra installed it. A model on another backend holds no
    TensorFlow object to serialize, so while it saves, TensorFlow counts as unavailable, unless it
    is imported already or Keras has already decided."""
    import keras

    lazy = getattr(module_utils, "tensorflow", None)
    if (
        keras.backend.backend() == "tensorflow"
        or "tensorflow" in sys.modules
        or getattr(lazy, "_available", True) is not None
    ):
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None


def _save_streaming(model, path: Path, on_bytes) -> None:
    config_json, metadata_json = saving_lib._serialize_model_as_json(model)
    failures: list[OSError] = []
    try:
        _write_archive(model, path, on_bytes, config_json, metadata_json, failures)
    except Exception:
        # HDF5 reports a failed write (a full disk) as some later, unrelated error: raise the cause.
        if failures:
            raise failures[0] from None
        raise


def _write_archive(model, path: Path, on_bytes, config_json, metadata_json, failures) -> None:
    with open(path, "w+b") as file, zipfile.ZipFile(region := _FileRegion(file.fileno(), failures), "w") as archive:
        archive.writestr(saving_lib._METADATA_FILENAME, metadata_json)
        archive.writestr(saving_lib._CONFIG_FILENAME, config_json)
        assets_store = saving_lib.DiskIOStore(saving_lib._ASSETS_DIRNAME, archive=archive, mode="w")
        try:
            with archive.open(saving_lib._VARS_FNAME_H5, "w", force_zip64=True) as member:
                weights = _FileRegion(file.fileno(), failures, start=region.tell())
                weights_store = _ViewingH5IOStore(weights, on_variable=on_bytes)
                try:
                    saving_lib._save_state(model, weights_store, assets_store, "", set())
                finally:
                    weights_store.close()
                # The member's bytes are in place: zipfile reads them only for its CRC and sizes.
                region.skipping = True
                for offset in range(0, weights.size, CRC_CHUNK):
                    chunk = os.pread(file.fileno(), min(CRC_CHUNK, weights.size - offset), weights.start + offset)
                    member.write(chunk)
                    on_bytes(len(chunk))
                region.skipping = False
        finally:
            assets_store.close()  # adds the assets some layers save (most save none)


class _FileRegion(io.RawIOBase):
    """A file seen from byte ``start`` on, with its own position (``pread``/``pwrite``).

    It lets HDF5 write a complete file inside the archive. With ``skipping``
    set, writes only move the position: the bytes are already there. Failed
    writes are appended to ``failures``.
    """

    def __init__(self, fd: int, failures: list[OSError], start: int = 0):
        super().__init__()
        self.fd, self.start, self.position, self.size, self.skipping = fd, start, 0, 0, False
        self.failures = failures

    def flush(self) -> None:
        pass  # every write is a pwrite: nothing is buffered

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = os.pread(self.fd, len(view), self.start + self.position)
        view[: len(data)] = data
        self.position += len(data)
        return len(data)

    def write(self, data) -> int:
        count = memoryview(data).nbytes
        if not self.skipping:
            written = 0
            with memoryview(data).cast("B") as view:
                try:
                    while written < count:
                        written += os.pwrite(self.fd, view[written:], self.start + self.position + written)
                except OSError as exc:
                    self.failures.append(exc)
                    raise
        self.position += count
        self.size = max(self.size, self.position)
        return count

    def truncate(self, size: int | None = None) -> int:
        self.size = self.position if size is None else size
        try:
            os.ftruncate(self.fd, self.start + self.size)
        except OSError as exc:
            self.failures.append(exc)
            raise
        return self.size


if saving_lib is not None and hasattr(saving_lib, "H5IOStore"):

    class _ViewingH5IOStore(saving_lib.H5IOStore):
        """Keras' HDF5 weights store, in a file region, writing each variable from a view of its buffer."""

        def __init__(self, region: _FileRegion, on_variable):
            self.region, self.on_variable = region, on_variable
            super().__init__(Path(saving_lib._VARS_FNAME_H5), mode="w")

        def _get_h5_file(self, path_or_io, mode=None):
            return h5py.File(self.region, mode="w")

        def __setitem__(self, key, value):
            array = np.asarray(value)  # a view of the variable's buffer on the CPU
            if array.dtype.kind == "f" and array.dtype.itemsize >= 2:
                if not self._h5_entry_initialized:
                    self._create_h5_group(self._h5_entry_path)
                self._h5_entry_group[key] = array
            else:  # bfloat16 and other types Keras tags specially
                super().__setitem__(key, value)
            self.on_variable(array.nbytes)

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

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

import caffe2keras.framework_internals as internals
from caffe2keras.errors import ArgumentError, ModelFileError
from caffe2keras.outputs import atomic_output
from caffe2keras.progress import Progress
from caffe2keras.recursion import recursion_room

CRC_CHUNK = 16 << 20
# Where a converted model keeps its variables' Caffe multipliers, in memory and in the archive.
MULTIPLIERS_ATTRIBUTE = "_caffe_multipliers"
MULTIPLIERS_MEMBER = "caffe2keras/multipliers.json"


def save_model(model, path: str | os.PathLike, *, progress: bool = False) -> None:
    """Write ``model`` to ``path`` (a ``.keras`` file) as ``model.save(path)`` does, streaming its weights.

    ``progress=True`` shows a progress bar on stderr. The file is written beside ``path`` and
    renamed into place when complete (see :mod:`caffe2keras.outputs` for the paths refused).
    A converted model's ``lr_mult``/``decay_mult`` go in too (:func:`parameter_multipliers`).
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
        internals.tensorflow_left_unimported(),
        atomic_output(path, ".keras") as tmp,
    ):
        tmp = Path(tmp)
        if not _saved_streaming(model, tmp, advance):
            model.save(tmp)
        _add_multipliers(model, tmp)


def _saved_streaming(model, tmp: Path, advance) -> bool:
    if not internals.has_internal(internals.STREAMING_SAVE):
        return False
    try:
        _save_streaming(model, tmp, advance)
        return True
    except OSError:
        raise  # the file system's refusal (a full disk...) is the user's to see
    except Exception:  # a Keras whose private internals changed shape
        tmp.unlink(missing_ok=True)
        return False


def _add_multipliers(model, path: Path) -> None:
    """The ``lr_mult``/``decay_mult`` a converted model carries, as a member Keras' loader skips."""
    multipliers = getattr(model, MULTIPLIERS_ATTRIBUTE, None)
    if multipliers:
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(MULTIPLIERS_MEMBER, json.dumps({k: list(v) for k, v in multipliers.items()}))


def parameter_multipliers(model) -> dict[str, tuple[float, float]]:
    """``{variable.path: (lr_mult, decay_mult)}`` of a converted model (or its ``.keras`` file),
    where its net's ``param`` blocks set them other than 1: give them to
    ``CaffeSolver(multipliers=...)`` to fine-tune as Caffe would. Frozen layers (``lr_mult: 0``
    on every blob) are ``trainable=False`` instead."""
    if isinstance(model, (str, os.PathLike)):
        try:
            with zipfile.ZipFile(model) as archive:
                if MULTIPLIERS_MEMBER not in archive.namelist():
                    return {}
                stored = json.loads(archive.read(MULTIPLIERS_MEMBER))
            return {str(k): (float(v[0]), float(v[1])) for k, v in stored.items()}
        except (OSError, zipfile.BadZipFile, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise ModelFileError(
                model, f"cannot read it as a .keras file with multipliers ({exc}). Received: path={str(model)!r}"
            ) from None
    return dict(getattr(model, MULTIPLIERS_ATTRIBUTE, None) or {})


def _save_streaming(model, path: Path, on_bytes) -> None:
    config_json, metadata_json = internals.serialize_model_as_json(model)
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
        archive.writestr(internals.METADATA_MEMBER, metadata_json)
        archive.writestr(internals.CONFIG_MEMBER, config_json)
        assets_store = internals.assets_store(archive)
        try:
            with archive.open(internals.WEIGHTS_MEMBER, "w", force_zip64=True) as member:
                weights = _FileRegion(file.fileno(), failures, start=region.tell())
                weights_store = internals.ViewingH5IOStore(weights, on_variable=on_bytes)
                try:
                    internals.save_state(model, weights_store, assets_store)
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

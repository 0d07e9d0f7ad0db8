"""Save a model as ``.keras`` without holding its weights twice in memory.

``model.save`` builds the weights' HDF5 file in memory when it thinks memory
suffices (then copies that buffer into the archive), and copies every
variable to a new numpy array before writing it. :func:`save_model` writes the
same archive — ``metadata.json``, ``config.json``, ``model.weights.h5``, assets —
with Keras' own serialization, but each variable is written from a view of its
buffer into an HDF5 file on disk, which is then streamed into the zip. Where
this Keras lacks the internals used, it calls ``model.save``.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from caffe2keras.progress import Progress

COPY_CHUNK = 16 << 20

try:  # Keras' own serialization; private, so checked before use
    from keras.src.saving import saving_lib
except ImportError:  # pragma: no cover - a Keras without this module
    saving_lib = None

_INTERNALS = ("_serialize_model_as_json", "_save_state", "H5IOStore", "DiskIOStore", "_METADATA_FILENAME",
              "_CONFIG_FILENAME", "_VARS_FNAME_H5", "_ASSETS_DIRNAME")


def _streaming_supported() -> bool:
    return (
        saving_lib is not None
        and all(hasattr(saving_lib, name) for name in _INTERNALS)
        and hasattr(saving_lib.H5IOStore, "_create_h5_group")
    )


def save_model(model, path: str | os.PathLike, *, progress: bool = False) -> None:
    """Write ``model`` to ``path`` (a ``.keras`` file) as ``model.save(path)`` does, streaming its weights.

    ``progress=True`` shows a progress bar on stderr.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"the path must end in .keras. Received: path={str(path)!r}")
    # Each byte is written twice: into the HDF5 file, then into the archive.
    total = 2 * sum(np.asarray(v).nbytes for v in model.weights)
    with Progress(progress) as bars, bars.phase("saving", total) as advance:
        if _streaming_supported():
            _save_streaming(model, path, advance)
        else:
            model.save(path)


def _save_streaming(model, path: Path, on_bytes) -> None:
    config_json, metadata_json = saving_lib._serialize_model_as_json(model)
    with tempfile.TemporaryDirectory(prefix=".weights-", dir=path.parent) as scratch:
        weights_path = os.path.join(scratch, saving_lib._VARS_FNAME_H5)
        weights_store = _ViewingH5IOStore(weights_path, mode="w", on_variable=on_bytes)
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(saving_lib._METADATA_FILENAME, metadata_json)
            archive.writestr(saving_lib._CONFIG_FILENAME, config_json)
            assets_store = saving_lib.DiskIOStore(saving_lib._ASSETS_DIRNAME, archive=archive, mode="w")
            try:
                saving_lib._save_state(model, weights_store, assets_store, "", set())
            finally:
                weights_store.close()
                assets_store.close()
            with open(weights_path, "rb") as source, archive.open(saving_lib._VARS_FNAME_H5, "w",
                                                                   force_zip64=True) as member:
                while chunk := source.read(COPY_CHUNK):
                    member.write(chunk)
                    on_bytes(len(chunk))


if saving_lib is not None and hasattr(saving_lib, "H5IOStore"):

    class _ViewingH5IOStore(saving_lib.H5IOStore):
        """Keras' HDF5 weights store, writing each variable from a view of its buffer, not a copy."""

        def __init__(self, *args, on_variable, **kwargs):
            super().__init__(*args, **kwargs)
            self.on_variable = on_variable

        def __setitem__(self, key, value):
            array = np.asarray(value)  # a view of the variable's buffer on the CPU
            if array.dtype.kind == "f" and array.dtype.itemsize >= 2:
                if not self._h5_entry_initialized:
                    self._create_h5_group(self._h5_entry_path)
                self._h5_entry_group[key] = array
            else:  # bfloat16 and other types Keras tags specially
                super().__setitem__(key, value)
            self.on_variable(array.nbytes)

"""Every use of Keras', TensorFlow's and tf2onnx's private internals, and every runtime patch of them.

A Keras or tf2onnx upgrade is one file to read: this one. Nothing else in the package imports
``keras.src`` or patches these frameworks (``tests/test_framework_internals.py`` checks it), and
each internal is probed by :func:`missing_internals` before use, with a public fallback where it
is missing:

- ``add_weight``: a layer's variables created from given values (:func:`call_creating_variables`);
  public Keras API only, patched on one layer instance for one call.
- ``saving_lib``: Keras' ``.keras`` serialization, for :func:`caffe2keras.save_model`'s streaming
  writer (falls back to ``model.save``).
- ``module_utils.tensorflow``: Keras' lazy "is TensorFlow installed" probe, answered "no" while a
  model on another backend saves (:func:`tensorflow_left_unimported`).
- ``tensorflow nn.conv``: Keras' TensorFlow convolution, traced plain for tf2onnx
  (:func:`grouped_convolutions_traced_plain`; checked on export only: it imports TensorFlow).
- ``tf2onnx optimizers``: tf2onnx's optimizer table, wrapped to free each graph copy
  (:func:`optimizer_copies_collected`; checked on export only).

Example: ``missing_internals()`` is ``[]`` on the Keras versions ``pyproject.toml`` allows.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np

try:  # Keras' own serialization; private, so checked before use
    from keras.src.saving import saving_lib
except ImportError:  # pragma: no cover - a Keras without this module
    saving_lib = None
try:
    from keras.src.utils import module_utils
except ImportError:  # pragma: no cover - a Keras without this module
    module_utils = None

STREAMING_SAVE = "saving_lib"
TENSORFLOW_PROBE = "module_utils.tensorflow"
TENSORFLOW_CONV = "tensorflow nn.conv"
TF2ONNX_OPTIMIZERS = "tf2onnx optimizers"

_SAVING_LIB_NAMES = (
    "_serialize_model_as_json",
    "_save_state",
    "H5IOStore",
    "DiskIOStore",
    "_METADATA_FILENAME",
    "_CONFIG_FILENAME",
    "_VARS_FNAME_H5",
    "_ASSETS_DIRNAME",
)


def _has_saving_lib() -> bool:
    return (
        saving_lib is not None
        and all(hasattr(saving_lib, name) for name in _SAVING_LIB_NAMES)
        and all(hasattr(saving_lib.H5IOStore, name) for name in ("_get_h5_file", "_create_h5_group"))
    )


def _has_tensorflow_probe() -> bool:
    return hasattr(getattr(module_utils, "tensorflow", None), "_available")


def _tensorflow_nn():
    """Keras' TensorFlow ops module (imports TensorFlow), or None."""
    try:
        from keras.src.backend.tensorflow import nn
    except ImportError:
        return None
    return nn


def _has_tensorflow_conv() -> bool:
    try:
        from keras.src.backend import standardize_data_format  # noqa: F401
    except ImportError:
        return False
    return callable(getattr(_tensorflow_nn(), "conv", None))


def _optimizer_table() -> dict | None:
    try:
        from tf2onnx import optimizer
    except ImportError:
        return None
    table = getattr(optimizer, "_optimizers", None)
    if isinstance(table, dict) and all(callable(factory) for factory in table.values()):
        return table
    return None


_CHECKS: dict[str, Callable[[], bool]] = {
    STREAMING_SAVE: _has_saving_lib,
    TENSORFLOW_PROBE: _has_tensorflow_probe,
    TENSORFLOW_CONV: _has_tensorflow_conv,
    TF2ONNX_OPTIMIZERS: lambda: _optimizer_table() is not None,
}
_EXPORT_ONLY = (TENSORFLOW_CONV, TF2ONNX_OPTIMIZERS)


def missing_internals(*, export: bool = False) -> list[str]:
    """The internals this installation lacks, by name. ``export=True`` also probes TensorFlow's and
    tf2onnx's, which imports them (seconds, and gigabytes of address space)."""
    return [name for name, check in _CHECKS.items() if (export or name not in _EXPORT_ONLY) and not check()]


def has_internal(name: str) -> bool:
    return _CHECKS[name]()


# What Layer.add_weight takes by position (Keras 2's call style, which Keras 3 still accepts).
ADD_WEIGHT_POSITIONAL = ("shape", "initializer", "dtype")


def call_creating_variables(
    layer, inputs, initializer_for: Callable[[int, object], object | None]
) -> tuple[object, int]:
    """``layer(inputs)``, its variable ``i`` created with ``initializer_for(i, requested)`` unless that
    is None, ``requested`` being the initializer the layer asked for.

    Returns the output and how many variables the layer created. Keras has no public way to
    hand a layer the values of the variables it is about to create: building the layer and
    then assigning would first fill every variable with its initializer, a second copy of the
    largest weights. So, for this one call, the layer's ``add_weight`` swaps the initializer,
    whether the layer passes it by keyword or by position.
    """
    created = 0
    original = layer.add_weight

    def add_weight(*args, **kwargs):
        nonlocal created
        index = created
        created += 1
        if len(args) > len(ADD_WEIGHT_POSITIONAL):
            return original(*args, **kwargs)  # Keras reports a call it refuses
        kwargs = {**kwargs, **dict(zip(ADD_WEIGHT_POSITIONAL, args))}
        initializer = initializer_for(index, kwargs.get("initializer"))
        if initializer is not None:
            return original(**{**kwargs, "initializer": initializer})
        return original(**kwargs)

    layer.add_weight = add_weight
    try:
        output = layer(inputs)
    finally:
        del layer.add_weight
    return output, created


@contextlib.contextmanager
def tensorflow_left_unimported() -> Iterator[None]:
    """Keras' serializer asks whether TensorFlow is available by importing it: seconds, and gigabytes
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


# The member names of a .keras archive, as Keras writes them (None without saving_lib).
METADATA_MEMBER = getattr(saving_lib, "_METADATA_FILENAME", None)
CONFIG_MEMBER = getattr(saving_lib, "_CONFIG_FILENAME", None)
WEIGHTS_MEMBER = getattr(saving_lib, "_VARS_FNAME_H5", None)
ASSETS_DIRECTORY = getattr(saving_lib, "_ASSETS_DIRNAME", None)


def serialize_model_as_json(model) -> tuple[str, str]:
    """The archive's ``config.json`` and ``metadata.json``, as ``model.save`` writes them."""
    return saving_lib._serialize_model_as_json(model)


def assets_store(archive):
    """Keras' store for the assets some layers save, in the archive being written."""
    return saving_lib.DiskIOStore(ASSETS_DIRECTORY, archive=archive, mode="w")


def save_state(model, weights_store, assets) -> None:
    """Write every variable of ``model`` to ``weights_store`` (and assets), as ``model.save`` does."""
    saving_lib._save_state(model, weights_store, assets, "", set())


if saving_lib is not None and hasattr(saving_lib, "H5IOStore"):

    class ViewingH5IOStore(saving_lib.H5IOStore):
        """Keras' HDF5 weights store, writing into the open binary file ``region`` from a view of
        each variable's buffer; ``on_variable(nbytes)`` is called after each."""

        def __init__(self, region, on_variable):
            self.region, self.on_variable = region, on_variable
            super().__init__(Path(WEIGHTS_MEMBER), mode="w")

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


@contextlib.contextmanager
def grouped_convolutions_traced_plain() -> Iterator[None]:
    """Trace grouped convolutions as plain TensorFlow convolutions, which tf2onnx maps to ``Conv`` with ``group``.

    Keras' TensorFlow backend compiles them with XLA, because TensorFlow's CPU kernel lacks them;
    tf2onnx cannot see into an XLA-compiled function. Traced for ONNX they never run in TensorFlow.
    Where Keras' TensorFlow convolution is not where this expects it, the export runs as it is.
    """
    if not has_internal(TENSORFLOW_CONV):
        yield
        return
    import tensorflow as tf
    from keras.src.backend import standardize_data_format

    nn = _tensorflow_nn()
    original = nn.conv

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        layout = "NHWC" if standardize_data_format(data_format) == "channels_last" else "NCHW"
        if len(inputs.shape) != 4:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        return tf.nn.convolution(inputs, kernel, strides, padding.upper(), data_format=layout, dilations=dilation_rate)

    nn.conv = conv
    try:
        yield
    finally:
        nn.conv = original


@contextlib.contextmanager
def optimizer_copies_collected() -> Iterator[None]:
    """Free each of tf2onnx's graph copies before the next is made.

    tf2onnx deep-copies the whole graph, weights included, before each of its dozen optimizers, in
    rounds until none changes it. The copies it drops hold reference cycles, which Python's
    collector frees only now and then: they piled up to about 40 times the weights (10.9 GiB for
    CaffeNet; VGG16 was killed past 19 GB). A collection before each optimizer keeps about three.
    Where tf2onnx's optimizer table is not where this expects it, the export runs as it is.
    """
    import gc

    table = _optimizer_table()
    if table is None:
        yield
        return

    def collected_first(factory):
        def make():
            gc.collect()
            return factory()

        return make

    originals = dict(table)
    table.update({name: collected_first(factory) for name, factory in originals.items()})
    # Objects alive now (TensorFlow's modules, the model) are set aside, so that each collection
    # scans only what the export makes: a full one took long enough to slow small nets tenfold.
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        table.update(originals)

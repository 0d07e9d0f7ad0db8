"""Export a converted model onward: ONNX, TensorFlow SavedModel, LiteRT (``.tflite``).

Keras' own ``model.export`` does the work, on the TensorFlow backend: it is the one backend that
writes all three formats (ONNX through tf2onnx). Under another backend the model is saved as
``.keras`` and exported by a child process that runs with ``KERAS_BACKEND=tensorflow``; the custom
layers use ``keras.ops`` only, so they trace there unchanged.

The output is written beside its path under a temporary name and renamed when complete: a failed
export leaves no partial file or directory.

Its :func:`main` is that child process, started isolated (``python -I``) so that nothing in the
working directory is imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from caffe2keras.errors import Caffe2KerasError, ExportError, ModelFileError
from caffe2keras.keras_files import check_keras_file
from caffe2keras.outputs import check_output_path

# Format -> (the name Keras' model.export takes, the file extension; None for a directory).
FORMATS = {
    "onnx": ("onnx", ".onnx"),
    "tflite": ("litert", ".tflite"),
    "saved_model": ("tf_saved_model", None),
}
# The modules each format needs, all in the `caffe2keras[export]` extra.
REQUIREMENTS = {"onnx": ("tensorflow", "tf2onnx", "onnx"), "tflite": ("tensorflow",), "saved_model": ("tensorflow",)}
EXTRA_HINT = "Install the export dependencies with: pip install 'caffe2keras[export]'"
# Users with only caffe2keras[onnx] reach for `export` first: the Caffe files need no TensorFlow.
ONNX_HINT = "Or write ONNX straight from the Caffe files, without TensorFlow: caffe2keras convert NET.prototxt W.caffemodel -o model.onnx"
# The child reports a Caffe2KerasError on this line of its stderr, as JSON.
ERROR_MARK = "caffe2keras-export-error: "


def export_format(path, format: str | None = None) -> str:
    """The format to write ``path`` in: ``format`` if given, else the one its extension names."""
    if format is not None:
        if format not in FORMATS:
            raise ExportError(f"Unknown export format; choose one of {', '.join(FORMATS)}. Received: format={format!r}")
        return format
    suffix = Path(path).suffix
    for name, (_keras_name, extension) in FORMATS.items():
        if extension == suffix:
            return name
    raise ExportError(
        "The output's extension does not name an export format: use .onnx or .tflite, "
        f"or give format='saved_model' for a SavedModel directory. Received: path={str(path)!r}"
    )


def export_model(model, path, format: str | None = None) -> Path:
    """Export a Keras model (or a ``.keras`` file) to ONNX, a TensorFlow SavedModel or LiteRT.

    Args:
        model: a ``keras.Model``, or the path of a ``.keras`` file (as ``caffe2keras convert`` writes).
        path: the output: a ``.onnx`` or ``.tflite`` file, or the SavedModel's directory.
        format: ``"onnx"``, ``"tflite"`` or ``"saved_model"``; default: chosen by ``path``'s extension.

    The inputs keep the model's names, layout and a free batch size; ONNX outputs are named after
    the model's outputs (the Caffe blobs). Needs the ``caffe2keras[export]`` extra. Raises
    :class:`caffe2keras.ExportError` for a missing extra, or a layer the format cannot express.

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    format = export_format(path, format)
    missing = [name for name in REQUIREMENTS[format] if importlib.util.find_spec(name) is None]
    if missing:
        hint = f"{EXTRA_HINT}. {ONNX_HINT}" if format == "onnx" else EXTRA_HINT
        raise ExportError(f"Exporting to {format} needs {', '.join(missing)}. {hint}. Received: format={format!r}")
    path = Path(path)
    if isinstance(model, (str, os.PathLike)):
        source = Path(model)
        check_output_path(path, [source], folder=FORMATS[format][1] is None)
        check_keras_file(source)
        with _atomic_output(path, format) as partial:
            _export_in_child(source, partial, format)
        return path

    import keras

    if keras.backend.backend() == "tensorflow":
        with _atomic_output(path, format) as partial:
            _export_here(model, partial, format)
        return path
    from caffe2keras.saving import save_model

    with tempfile.TemporaryDirectory(prefix="caffe2keras-export-") as scratch:
        source = Path(scratch) / "model.keras"
        save_model(model, source)
        with _atomic_output(path, format) as partial:
            _export_in_child(source, partial, format)
    return path


@contextlib.contextmanager
def _atomic_output(path: Path, format: str):
    """A path beside ``path`` to write, moved onto ``path`` when the block succeeds."""
    extension = FORMATS[format][1] or ""
    check_output_path(path, folder=not extension)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A short name, as the CLI's own: the output's name may already be as long as the system allows.
        scratch = Path(tempfile.mkdtemp(prefix=".c2k-", suffix=".partial", dir=path.parent))
    except OSError as exc:
        raise ModelFileError(path, f"cannot write the output: {exc.strerror or exc}.") from exc
    try:
        partial = scratch / f"export{extension}"
        yield partial
        if path.is_dir() and not path.is_symlink():
            # A directory cannot be replaced in one step: the old one is moved aside first.
            old = scratch / "previous"
            os.replace(path, old)
        os.replace(partial, path)
    except OSError as exc:
        raise ModelFileError(path, f"cannot write the output: {exc.strerror or exc}.") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _input_signature(model):
    import keras

    specs = [keras.InputSpec(shape=t.shape, dtype=t.dtype, name=t.name) for t in model.inputs]
    # A functional model takes its inputs as one positional argument: a list of them.
    return [specs] if len(specs) > 1 else specs


def _outputs_by_name(model):
    """The same layers, returning a dict of the outputs by blob name.

    SavedModel and LiteRT signatures name a list's outputs ``output_0``...; a dict's keys name
    them instead. Their flat output order is the keys' sorted order (TensorFlow's nesting rule),
    which no signature can change: read the outputs by name.
    """
    import keras

    return keras.Model(model.inputs, dict(zip(model.output_names, model.outputs)), name=model.name)


def _export_here(model, path: Path, format: str) -> None:
    """Export under this process's (TensorFlow) backend."""
    from caffe2keras.framework_internals import grouped_convolutions_traced_plain, optimizer_copies_collected

    keras_format = FORMATS[format][0]
    onnx_only = format == "onnx"
    if not onnx_only:
        model = _outputs_by_name(model)
    tracing = grouped_convolutions_traced_plain() if onnx_only else contextlib.nullcontext()
    collecting = optimizer_copies_collected() if onnx_only else contextlib.nullcontext()
    try:
        with _quiet_native_logs(), tracing, collecting:
            model.export(str(path), format=keras_format, verbose=False, input_signature=_input_signature(model))
    except Exception as exc:  # the exporters raise anything from ValueError to TF's own errors
        raise _export_failure(model, format, exc) from exc
    if format == "onnx":
        _finish_onnx(path, model)


def _export_failure(model, format: str, exc: Exception) -> ExportError:
    """The error for an export that failed, naming the layer the exporter's message names."""
    message = str(exc).strip().splitlines()
    reason = message[0] if message else type(exc).__name__
    text = str(exc)
    for layer in model.layers:
        if f"/{layer.name}/" in text or f"'{layer.name}'" in text:
            return ExportError(
                f"Layer {layer.name!r} ({type(layer).__name__}) cannot be exported to {format}: {reason}. "
                f"Received: format={format!r}"
            )
    return ExportError(f"The model cannot be exported to {format}: {reason}. Received: format={format!r}")


def _finish_onnx(path: Path, model) -> None:
    """Name the outputs after the model's; give Caffe's max pooling its pads, each convolution its bias and LRN its own op.

    See :mod:`caffe2keras.onnx_graph`: each edit keeps the numbers.
    """
    import onnx

    from caffe2keras.layers import LRN
    from caffe2keras.onnx_graph import (
        fold_bias_adds_into_convs,
        fold_pads_into_max_pools,
        fuse_lrn_layers,
        move_negative_end_pads_to_output_padding,
        name_outputs,
    )

    proto = onnx.load(str(path))
    name_outputs(proto.graph, model.output_names)
    fold_pads_into_max_pools(proto.graph)
    fold_bias_adds_into_convs(proto.graph)
    move_negative_end_pads_to_output_padding(proto.graph)
    lrn_layers = {
        layer.name: layer.get_config()
        for layer in model.layers
        if isinstance(layer, LRN) and layer.norm_region == "across_channels" and layer.data_format == "channels_first"
    }
    fuse_lrn_layers(proto.graph, lrn_layers, {layer.name for layer in model.layers})
    onnx.save(proto, str(path))


@contextlib.contextmanager
def _quiet_native_logs():
    """TensorFlow and tf2onnx log each step of a successful export; keep only their errors."""
    import logging

    loggers = [logging.getLogger(name) for name in ("tf2onnx", "tensorflow")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _export_in_child(source: Path, path: Path, format: str) -> None:
    """Export the ``.keras`` file ``source`` in a Python process on the TensorFlow backend."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-I", "-c", CHILD_CODE, json.dumps(_child_search_path()), str(source), str(path), format]
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode == 0:
        return
    for line in reversed(result.stderr.splitlines()):
        if line.startswith(ERROR_MARK):
            kind, message = json.loads(line[len(ERROR_MARK) :])
            raise (ModelFileError(source, message) if kind == "ModelFileError" else ExportError(message))
    if result.returncode < 0:  # the kernel's out-of-memory killer sends SIGKILL and leaves no message
        reason = f"was killed by signal {-result.returncode} (out of memory?)"
    else:
        reason = "failed:\n" + "\n".join(result.stderr.strip().splitlines()[-5:])
    raise ExportError(f"The TensorFlow export process {reason}. Received: format={format!r}")


# The child runs isolated (-I: no working directory, PYTHONPATH or user site on its path, which
# `python -m` would put first) with this process's search path given explicitly, less the
# working directory: a `tf2onnx.py` lying there must never run in the module's place.
CHILD_CODE = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv.pop(1)); "
    "from caffe2keras.export import main; sys.exit(main(sys.argv[1:]))"
)


def _child_search_path() -> list[str]:
    """This process's module folders for the child: caffe2keras' own first, never the working directory."""
    package_root = str(Path(__file__).resolve().parent.parent)
    here = os.path.realpath(os.getcwd())
    folders = [package_root]
    for entry in sys.path:
        if os.path.isabs(entry) and os.path.realpath(entry) != here and entry not in folders:
            folders.append(entry)
    return folders


def _load(source: Path):
    import keras

    import caffe2keras.layers  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(source, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors...
        raise ModelFileError(source, f"cannot load the Keras model: {exc}") from exc


def main(argv) -> int:
    source, path, format = argv
    try:
        _export_here(_load(Path(source)), Path(path), format)
    except Caffe2KerasError as exc:
        message = exc.reason if isinstance(exc, ModelFileError) else str(exc)
        print(ERROR_MARK + json.dumps([type(exc).__name__, message]), file=sys.stderr)
        return 1
    return 0

"""Nets exported once per test session, and their outputs in each exported format's own runtime.

A child process on the TensorFlow backend converts the net, exports it with
:func:`caffe2keras.export_model` and runs every export (onnxruntime, the SavedModel, the LiteRT
interpreter) on the given inputs. The outputs are kept in a directory that pytest-xdist workers
share, one lock per net, so each net is converted and exported once however many tests read it, small nets
by one child together.

Run as ``python -m tests.exported DIRECTORY...``: the child; each DIRECTORY holds ``job.json`` and ``inputs.npz``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from caffe2keras.layout import Layout
from tests.shared import REPO


@dataclass
class Export:
    """One net to export to ``formats`` and run on ``inputs`` (Caffe layout, by input blob)."""

    key: str
    prototxt: Path
    weights: Path
    inputs: dict[str, np.ndarray]
    outputs: list[str]
    data_format: str
    formats: tuple[str, ...]


def exported_outputs(root: Path, group: str, exports: list[Export]) -> dict[str, dict[str, list[np.ndarray]]]:
    """``{key: {format: Caffe-layout outputs}}``, or ``{key: traceback}`` for a net that failed.

    The group's nets are exported by one child, once per session.

    Grouping small nets spares a TensorFlow start per net; a big net is a group of its own.
    """
    directory = root / group
    with open(root / f"{group}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "done").exists():
            for export in exports:
                net = directory / export.key
                net.mkdir(parents=True, exist_ok=True)
                job = dict(
                    prototxt=str(export.prototxt),
                    weights=str(export.weights),
                    outputs=list(export.outputs),
                    data_format=export.data_format,
                    formats=list(export.formats),
                )
                (net / "job.json").write_text(json.dumps(job))
                np.savez(net / "inputs.npz", **export.inputs)
            env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
            child = [sys.executable, "-m", "tests.exported", *(str(directory / e.key) for e in exports)]
            # One export at a time across workers: tf2onnx takes about 20 times a net's weights in
            # memory (13 GB for VGG16), and two at once would not fit where one does.
            with open(root / "one-export-at-a-time.lock", "w") as turn:
                fcntl.flock(turn, fcntl.LOCK_EX)
                subprocess.run(child, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
            (directory / "done").touch()
    results = {}
    for export in exports:
        results[export.key] = {}
        failure = directory / export.key / "error.txt"
        if failure.exists():  # this net's failure, reported by the tests that read it
            results[export.key] = failure.read_text()
            continue
        for format in export.formats:
            with np.load(directory / export.key / f"{format}.npz") as saved:
                results[export.key][format] = [saved[f"y{i}"] for i in range(len(saved.files))]
    return results


def _run_onnx(path: Path, feeds: dict) -> list:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _run_saved_model(path: Path, feeds: dict, model) -> list:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept: the endpoint's variables live as long as it does
    arrays = [feeds[name] for name in _input_names(model)]
    outputs = loaded.serve(arrays) if len(arrays) > 1 else loaded.serve(arrays[0])
    # The endpoint returns the outputs by blob name (a dict), the Caffe net's order aside.
    return [np.asarray(outputs[name]) for name in model.output_names]


def _run_tflite(path: Path, feeds: dict, model) -> list:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    names = runner.get_input_details()
    arrays = [feeds[name] for name in _input_names(model)]
    # The signature names its inputs after the model's (in order) and its outputs after their blobs.
    results = runner(**dict(zip(names, arrays)))
    return [results[name] for name in model.output_names]


def _record_onnx_operators(path: Path, record: Path) -> None:
    """Each node's operator with its ``group`` where it has one, e.g. ``Conv`` or ``Conv/group=32``."""
    import onnx

    operators = []
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        groups = [a.i for a in node.attribute if a.name == "group" and a.i != 1]
        operators.append(node.op_type + "".join(f"/group={g}" for g in groups))
    record.write_text(json.dumps(operators))


def onnx_operators(root: Path, group: str, key: str) -> list[str]:
    return json.loads((root / group / key / "onnx_operators.json").read_text())


def _input_names(model) -> list[str]:
    return [t.name.split(":")[0] for t in model.inputs]


def _child(directory: Path) -> None:
    import caffe2keras

    job = json.loads((directory / "job.json").read_text())
    layout = Layout(job["data_format"])
    model = caffe2keras.convert(job["prototxt"], job["weights"], outputs=job["outputs"], data_format=job["data_format"])
    with np.load(directory / "inputs.npz") as saved:
        feeds = {name: layout.to_keras(saved[name]) for name in saved.files}
    runners = {"onnx": _run_onnx, "saved_model": _run_saved_model, "tflite": _run_tflite}
    extensions = {"onnx": ".onnx", "tflite": ".tflite", "saved_model": ""}
    for format in job["formats"]:
        path = directory / f"model{extensions[format]}"
        caffe2keras.export_model(model, path, format)
        if format == "onnx":  # what the graph is made of, for the tests of its shape
            _record_onnx_operators(path, directory / "onnx_operators.json")
        run = runners[format]
        outputs = run(path, feeds) if format == "onnx" else run(path, feeds, model)
        np.savez(
            directory / f"{format}.npz", **{f"y{i}": layout.to_caffe(np.asarray(y)) for i, y in enumerate(outputs)}
        )
        shutil.rmtree(path) if path.is_dir() else path.unlink()  # big nets: hundreds of MB each


if __name__ == "__main__":
    import traceback

    for argument in sys.argv[1:]:
        try:
            _child(Path(argument))
        except Exception:  # one net's failure fails its own tests, not its group's
            (Path(argument) / "error.txt").write_text(traceback.format_exc())

"""Running converted models against ground truth (imported by the tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from caffe2keras.layout import Layout
from caffe2keras.tolerance import compare


@dataclass
class Case:
    path: Path
    spec: dict

    @classmethod
    def load(cls, path: Path) -> Case:
        return cls(path, json.loads((path / "case.json").read_text()))

    @property
    def inputs(self) -> list[str]:
        return self.spec["input_order"]

    @property
    def checked_blobs(self) -> list[str]:
        """Net outputs, then the probes (logits under final softmaxes), without repeats."""
        return list(dict.fromkeys(self.spec["output_order"] + self.spec["probes"]))

    def input_arrays(self) -> list[np.ndarray]:
        return [np.load(self.path / f"in_{name}.npy") for name in self.inputs]

    def reference(self, blob: str, prefix: str = "out") -> np.ndarray:
        return np.load(self.path / f"{prefix}_{blob.replace('/', '__')}.npy")

    def has_blob(self, blob: str) -> bool:
        return (self.path / f"blob_{blob.replace('/', '__')}.npy").exists()


def run(model, arrays, data_format: str) -> list[np.ndarray]:
    """Run ``model`` (compiled as one graph) on Caffe-layout arrays; return Caffe-layout outputs."""
    layout = Layout(data_format)
    feed = [layout.to_keras(a) for a in arrays]
    outputs = model.predict_on_batch(feed[0] if len(feed) == 1 else feed)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [layout.to_caffe(np.asarray(y)) for y in outputs]


def assert_matches(actual: np.ndarray, reference: np.ndarray, what: str) -> None:
    """``actual`` is within the goldens' tolerance of ``reference`` (:mod:`caffe2keras.tolerance`)."""
    assert actual.shape == reference.shape, f"{what}: shape {actual.shape} != reference {reference.shape}"
    comparison = compare(actual, reference)
    assert comparison.within_tolerance, (
        f"{what}: max|y - ref| = {comparison.max_abs_error:.3g} > {comparison.allowed:.3g}"
    )


def save_and_reload(model, tmp_path: Path):
    """Save as .keras and load back with safe_mode=True (the project's model contract)."""
    import keras  # here, so that the ONNX writer's tests run without Keras

    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    return keras.saving.load_model(path, safe_mode=True)

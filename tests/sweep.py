"""The machinery of the layer sweeps (tests/sweeps/, one module per layer family): many small configurations, one converted net per family.

Each :class:`Case` is one configuration with its own input blob(s), layer(s) and references. A
family's cases share one prototxt, one caffemodel (written by caffe2keras' writer), one Keras model
per data format and one save/reload, which keeps hundreds of configurations fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.tolerance import compare
from tests import oracle
from tests.golden import run, save_and_reload
from tests.oracle import Layer, input_layer

# Caffe's sizes round (2 - 3) / 2 to 0 (C++ division; float ceil for pooling), giving one
# window where the kernel exceeds the input; OpenCV computes an empty output.
OPENCV_KERNEL_OVER_INPUT = "OpenCV gives no window where the kernel exceeds the input"
OPENCV_NEGATIVE_AXIS = "OpenCV's importer fails on this negative axis"


@dataclass
class Case:
    """One configuration and what Caffe gives for it (computed by :mod:`tests.oracle`).

    ``opencv`` is None when OpenCV's Caffe importer is also compared, else the reason it is not
    (OpenCV lacks the layer or parameter, or computes it differently from Caffe).
    """

    name: str
    layers: list[Layer]
    inputs: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    opencv: str | None = None


@dataclass
class Family:
    cases: list[Case]
    prototxt: Path
    caffemodel: Path | None  # None when no layer has parameters
    opencv_prototxt: Path
    blobs: list[str] = field(default_factory=list)

    @classmethod
    def write(cls, name: str, cases: Sequence[Case], directory: Path) -> Family:
        names = [c.name for c in cases]
        assert len(set(names)) == len(names), f"duplicate case names in {name}"
        prototxt = directory / f"{name}.prototxt"
        prototxt.write_text(oracle.net_prototxt([layer for c in cases for layer in c.layers], name))
        opencv_prototxt = directory / f"{name}.opencv.prototxt"
        opencv_prototxt.write_text(
            oracle.net_prototxt([layer for c in cases if c.opencv is None for layer in c.layers], name)
        )
        weights = [(layer.name, layer.type, list(layer.blobs)) for c in cases for layer in c.layers if layer.blobs]
        caffemodel = directory / f"{name}.caffemodel" if weights else None
        if weights:
            write_caffemodel(caffemodel, weights)
        blobs = [blob for c in cases for blob in c.expected]
        return cls(list(cases), prototxt, caffemodel, opencv_prototxt, blobs)

    def inputs(self, cases: Sequence[Case] | None = None) -> dict[str, np.ndarray]:
        return {k: v for c in (self.cases if cases is None else cases) for k, v in c.inputs.items()}

    def opencv_outputs(self) -> dict[str, np.ndarray]:
        """OpenCV's value of every expected blob of the cases it is trusted with."""
        trusted = [c for c in self.cases if c.opencv is None]
        if not trusted:
            return {}
        wanted = [(blob, _producer(c, blob)) for c in trusted for blob in c.expected]
        values = oracle.opencv_forward(
            self.opencv_prototxt, self.caffemodel, self.inputs(trusted), [where for _, where in wanted]
        )
        return {blob: value for (blob, _), value in zip(wanted, values)}


def _producer(case: Case, blob: str) -> tuple[str, int]:
    """(layer, top index) that writes ``blob`` last: the value after the forward pass."""
    for layer in reversed(case.layers):
        if blob in layer.tops:
            return layer.name, list(layer.tops).index(blob)
    raise AssertionError(f"{case.name}: no layer writes {blob!r}")


def check_family(family: Family, data_format: str, tmp_path: Path, opencv: dict[str, np.ndarray]) -> None:
    """Convert, save and reload (safe_mode=True), run, and compare every blob with every oracle."""
    model = caffe2keras.convert(family.prototxt, family.caffemodel, outputs=family.blobs, data_format=data_format)
    reloaded = save_and_reload(model, tmp_path)
    actual = dict(zip(family.blobs, predict(reloaded, family.inputs(), data_format)))
    failures = []
    for case in family.cases:
        for blob, reference in case.expected.items():
            oracles = [("Caffe's formulas", reference)]
            if blob in opencv:
                oracles.append(("OpenCV", opencv[blob]))
            for oracle_name, value in oracles:
                if actual[blob].shape != value.shape:
                    failures.append(
                        f"{case.name}: blob {blob!r} has shape {actual[blob].shape}, {oracle_name} gives {value.shape}"
                    )
                    continue
                comparison = compare(actual[blob], value)
                if not comparison.within_tolerance:
                    failures.append(
                        f"{case.name}: blob {blob!r} differs from {oracle_name} by {comparison.max_abs_error:.3g} "
                        f"(allowed {comparison.allowed:.3g})"
                    )
    assert not failures, f"{len(failures)} mismatch(es) in {data_format}:\n" + "\n".join(failures)


def predict(model, inputs: dict[str, np.ndarray], data_format: str) -> list[np.ndarray]:
    """Run ``model`` on Caffe-layout arrays given by input name."""
    return run(model, [inputs[t.name.split(":")[0]] for t in model.inputs], data_format)


# --------------------------------------------------------------------------- building cases


class Maker:
    """Deterministic inputs and weights for one family's cases."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def array(self, *shape, low: float | None = None, high: float | None = None) -> np.ndarray:
        values = self.rng.standard_normal(shape) if low is None else self.rng.uniform(low, high, shape)
        return np.asarray(values, np.float32)  # 0-d for shape (): a scalar blob has no dims

    def single(
        self,
        name: str,
        layer_type: str,
        x: np.ndarray | Sequence[int],
        params: dict | None,
        reference: Callable[..., np.ndarray],
        blobs: Sequence[np.ndarray] = (),
        opencv: str | None = None,
    ) -> Case:
        """One layer on one input blob ``<name>_x``; its top is named like the layer."""
        x = self.array(*x) if not isinstance(x, np.ndarray) else x
        source = f"{name}_x"
        layer = Layer(name, layer_type, (source,), (name,), params or {}, list(blobs))
        return Case(
            name, [input_layer(source, x.shape), layer], {source: x}, {name: np.asarray(reference(x, *blobs))}, opencv
        )

    def multi(
        self,
        name: str,
        layer_type: str,
        xs: Sequence[np.ndarray],
        params: dict | None,
        expected: dict[str, np.ndarray] | np.ndarray,
        tops: Sequence[str] | None = None,
        opencv: str | None = None,
    ) -> Case:
        """One layer on several input blobs ``<name>_x<i>``."""
        sources = [f"{name}_x{i}" for i in range(len(xs))]
        tops = [name] if tops is None else list(tops)
        expected = expected if isinstance(expected, dict) else {name: expected}
        layers = [input_layer(s, x.shape) for s, x in zip(sources, xs)]
        layers.append(Layer(name, layer_type, sources, tops, params or {}))
        return Case(name, layers, dict(zip(sources, xs)), expected, opencv)

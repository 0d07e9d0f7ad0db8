"""Deterministic, well-scaled weights for any prototxt (examples, tests, benchmarks)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from caffe2keras.api import load_graph, parameter_shapes


def synthetic_weights(
    prototxt: str | os.PathLike,
    *,
    seed: int = 0,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> list[tuple[str, str, list[np.ndarray]]]:
    """``(layer name, type, blobs)`` for every layer with parameters, ready for ``write_caffemodel``.

    Weights are scaled by fan-in so activations keep a sane range through deep nets;
    BatchNorm gets plausible statistics and a scale factor of 1; parameters that layers
    share by name (``param { name: ... }``) get one value.
    """
    rng = np.random.default_rng(seed)
    ops = {op.name: op for op in load_graph(prototxt, input_shapes).ops}
    shared: dict[str, np.ndarray] = {}  # parameters shared by name hold one value, as in Caffe
    layers = []
    for name, shapes in parameter_shapes(prototxt, input_shapes).items():
        op = ops[name]
        blobs = []
        for index, shape in enumerate(shapes):
            key = op.param.param[index].name if index < len(op.param.param) else ""
            if key in shared and shared[key].size == math.prod(shape):
                blobs.append(shared[key].reshape(shape))
                continue
            blobs.append(_values(rng, op.type, index, shape))
            if key:
                shared[key] = blobs[-1]
        layers.append((name, op.type, blobs))
    return layers


def _values(rng: np.random.Generator, layer_type: str, index: int, shape: tuple[int, ...]) -> np.ndarray:
    if layer_type == "BatchNorm":
        if index == 2:
            return np.ones(shape, np.float32)
        if index == 1:
            return (np.abs(rng.standard_normal(shape)) + 0.5).astype(np.float32)
    if layer_type == "BN":  # slope, bias, mean, variance
        if index == 3:
            return (np.abs(rng.standard_normal(shape)) + 0.5).astype(np.float32)
        if index == 0:
            return (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    if layer_type == "PReLU":
        return rng.uniform(0.05, 0.3, shape).astype(np.float32)
    if len(shape) >= 2:
        fan_in = math.prod(shape[1:]) if layer_type != "Deconvolution" else shape[0] * math.prod(shape[2:])
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(1 / math.sqrt(max(fan_in, 1)))
    if layer_type == "Scale" and index == 0:
        return (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)

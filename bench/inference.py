"""Inference of converted models against their native Keras twins, same backend, same batch.

    python bench/inference.py [--nets vgg16,resnet50] [--batch 4] [--runs 10] [--dir DIR]

For each net, the converted model (our prototxt, synthetic weights) and
``keras.applications.<Net>(weights=None)`` are run with ``predict_on_batch``
(jit-compiled by Keras) on the same random batch, alternately, after one
warm-up call each. Reports the median time per batch, the ratio, and the
spread of the per-pair ratios; and, free of timing noise, what XLA's cost
analysis of each compiled forward pass counts (floating-point operations,
bytes accessed) and its number of convolutions and fused kernels.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

import caffe2keras
from common import DEFAULT_DIR, ensure_model, machine

TWINS = {"vgg16": keras.applications.VGG16, "resnet50": keras.applications.ResNet50}


def timed(model, batch) -> float:
    start = time.perf_counter()
    np.asarray(model.predict_on_batch(batch))
    return time.perf_counter() - start


def compiled_cost(model, batch) -> str:
    """XLA's own account of the compiled inference pass (JAX backend only)."""
    if keras.backend.backend() != "jax":
        return ""
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    forward = jax.jit(lambda t, n, x: model.stateless_call(t, n, x, training=False)[0])
    compiled = forward.lower(trainable, non_trainable, batch).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    text = compiled.as_text()
    return (
        f"{cost.get('flops', 0) / 1e9:.3f} GFLOP, {cost.get('bytes accessed', 0) / 1e6:.1f} MB accessed, "
        f"{text.count(' convolution(')} convolutions, {text.count(' fusion(')} fusions"
    )


def compare(net: str, batch_size: int, runs: int, directory) -> tuple[float, float, list[float]]:
    prototxt, weights = ensure_model(net, directory)
    converted = caffe2keras.convert(prototxt, weights)
    twin = TWINS[net](weights=None)
    batch = np.random.default_rng(0).standard_normal((batch_size, 224, 224, 3)).astype(np.float32)
    for name, model in (("converted", converted), ("keras.applications", twin)):
        timed(model, batch)  # compile
        print(f"{net:<9} {name:<19} XLA: {compiled_cost(model, batch)}", flush=True)
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(timed(converted, batch))
        theirs.append(timed(twin, batch))
    return statistics.median(ours), statistics.median(theirs), [a / b for a, b in zip(ours, theirs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="vgg16,resnet50")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    print(
        f"{machine()}; Keras {keras.__version__}, backend {keras.backend.backend()}, batch {args.batch}, "
        f"medians of {args.runs} alternated calls"
    )
    for net in args.nets.split(","):
        ours, theirs, ratios = compare(net, args.batch, args.runs, args.dir)
        print(
            f"{net:<9} converted {ours * 1e3:8.1f} ms   keras.applications {theirs * 1e3:8.1f} ms   "
            f"ratio {ours / theirs:.3f} (per pair {min(ratios):.2f}-{max(ratios):.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Parameters that Caffe layers share by name (``param { name: "conv1_w" }``).

Caffe keeps one copy of a named parameter: the first layer that names it owns
it, and every later layer naming it uses the same blob (siamese and
weight-tied nets). Here a layer whose parameters are *all* shared with an
earlier layer converted to the same Keras configuration reuses that layer's
Keras layers, so the weights stay tied when the model is trained. A layer that
shares only some of its parameters, or whose Keras configuration differs, is
converted on its own: exact at inference, but training would untie it, which
a :class:`~caffe2keras.errors.ConversionWarning` says.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, replace

import numpy as np

from caffe2keras.converters.base import Node, Step
from caffe2keras.errors import ConversionWarning, ShapeError, WeightsError
from caffe2keras.graph import Shape

PERMISSIVE = 1  # ParamSpec.DimCheckMode


@dataclass(frozen=True)
class _Owner:
    layer: str
    index: int
    shape: Shape
    value: np.ndarray | None


class SharedParameters:
    """Tracks named parameters while a net is built, in net order."""

    def __init__(self):
        self._owners: dict[str, _Owner] = {}
        self._tied: dict[tuple, list[Step]] = {}  # (type, names, Keras configuration) -> first steps

    def apply(self, node: Node, steps: list[Step]) -> list[Step]:
        """``steps``, using an earlier layer's Keras layers where every parameter is shared with it."""
        names = {
            index: spec.name for index, spec in enumerate(node.param.param) if spec.name and index in node.requested
        }
        if not names:
            return steps
        shared = sorted(name for name in names.values() if name in self._owners)
        self._check(node, names)
        if len(names) != len(node.requested):
            if shared:
                self._warn(node, shared, "it also has parameters of its own")
            return steps
        key = (node.type, tuple(names[i] for i in sorted(names)), _configuration(steps))
        earlier = self._tied.get(key)
        if earlier is not None:
            return _on_layers_of(steps, earlier)
        if shared:
            self._warn(node, shared, "its Keras configuration differs from the earlier layer's")
        self._tied[key] = steps
        return steps

    def _check(self, node: Node, names: dict[int, str]) -> None:
        """Caffe's rules: one shape per shared parameter (one count if PERMISSIVE), and one value."""
        for index, name in names.items():
            shape = node.requested[index]
            value = None if node.weights is None else node.weights[index].data
            owner = self._owners.get(name)
            if owner is None:
                self._owners[name] = _Owner(node.name, index, shape, value)
                continue
            permissive = node.param.param[index].share_mode == PERMISSIVE
            if shape != owner.shape and not (permissive and math.prod(shape) == math.prod(owner.shape)):
                raise ShapeError(
                    node.name,
                    node.type,
                    f"cannot share parameter {name!r} of layer {owner.layer!r}: its shape is "
                    f"{owner.shape}, this layer's {shape}",
                    f"param[{index}].name",
                    name,
                )
            if value is not None and owner.value is not None and not np.array_equal(value.ravel(), owner.value.ravel()):
                raise WeightsError(
                    node.name,
                    node.type,
                    f"shares parameter {name!r} with layer {owner.layer!r}, but the weights file "
                    "holds different values for the two",
                    f"param[{index}].name",
                    name,
                )

    def _warn(self, node: Node, shared: list[str], why: str) -> None:
        owners = sorted({self._owners[name].layer for name in shared})
        warnings.warn(
            f"Layer {node.name!r} ({node.type}) shares {', '.join(map(repr, shared))} with "
            f"{', '.join(map(repr, owners))}, but {why}: it is converted as a separate Keras layer. "
            "Outputs are exact; training would update the copies independently.",
            ConversionWarning,
            stacklevel=5,  # the caller of caffe2keras.convert
        )


def _configuration(steps: list[Step]) -> str:
    """What must agree for two layers to run on the same Keras layers: classes, configs, wiring."""
    positions = {id(step): i for i, step in enumerate(steps)}
    described = []
    for step in steps:
        # Initializers do not count: Caffe fills a shared parameter once, from its owner's filler.
        config = {k: v for k, v in step.layer.get_config().items() if k != "name" and not k.endswith("initializer")}
        wiring = (
            None
            if step.inputs is None
            else [i if isinstance(i, int) else f"step{positions[id(i)]}" for i in step.inputs]
        )
        described.append([type(step.layer).__qualname__, config, wiring])
    return json.dumps(described, sort_keys=True, default=repr)


def _on_layers_of(steps: list[Step], earlier: list[Step]) -> list[Step]:
    """``steps`` with the layers of ``earlier``, wired among themselves as before."""
    renewed: dict[int, Step] = {}
    for step, first in zip(steps, earlier):
        inputs = None if step.inputs is None else [renewed[id(i)] if isinstance(i, Step) else i for i in step.inputs]
        renewed[id(step)] = replace(step, layer=first.layer, inputs=inputs)
    return list(renewed.values())

"""The blob graph of a Caffe net, with Caffe's own rules.

* Layers are filtered by the TEST-phase ``include``/``exclude`` rules; losses,
  ``Accuracy``, SSD's ``DetectionEvaluate``, ``Silence`` and ``HDF5Output`` are
  dropped.
* Data layers, ``Input`` layers and the legacy ``input`` fields become the
  net's inputs.
* A blob name is rebound by in-place layers (``top == bottom``): every write
  makes a new version (:class:`BlobRef`), so each consumer sees the value it
  would see in Caffe, and the last version is what pycaffe shows after a
  forward pass.
* The net's outputs are, as in Caffe, the blobs nobody consumes, sorted by
  name (Caffe keeps them in a ``std::set``); blobs only ``Silence`` consumes
  count when there is no other.

Shape inference (:mod:`caffe2keras.shape_rules`) takes its per-type rules from
the caller, so neither module knows anything of converters. A dimension may be free (``None``): the net is
then converted once for every size, and the layers compute Caffe's
size-dependent rules from the actual input when they run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from caffe2keras.caffe.limits import MAX_BLOB_AXES, MAX_BLOB_COUNT
from caffe2keras.errors import ArgumentError, InputShapeError, LayerError, NetError, ShapeError

Shape = tuple[int | None, ...]

DROPPED_TYPES = frozenset({"Accuracy", "DetectionEvaluate", "Silence", "HDF5Output"})
DATA_LAYER_TYPES = frozenset(
    {
        "Input",
        "Data",
        "ImageData",
        "MemoryData",
        "HDF5Data",
        "DummyData",
        "WindowData",
        "AnnotatedData",
        "VideoData",
        "DenseImageData",  # alexgkendall/caffe-segnet: images with per-pixel labels
    }
)


def is_dropped_type(layer_type: str) -> bool:
    return layer_type in DROPPED_TYPES or layer_type.endswith("Loss")


def is_training_type(layer_type: str) -> bool:
    """Layers that only a TRAIN net built for training keeps: the losses and Accuracy."""
    return layer_type == "Accuracy" or layer_type.endswith("Loss")


@dataclass(frozen=True)
class BlobRef:
    """One value of a blob: ``version`` counts the writes to the name before it."""

    name: str
    version: int = 0

    def __str__(self) -> str:
        return self.name if self.version == 0 else f"{self.name}@{self.version}"


@dataclass
class Op:
    """One kept Caffe layer, wired to blob versions."""

    name: str
    type: str
    param: object  # caffe.LayerParameter
    bottoms: list[BlobRef]
    tops: list[BlobRef]


@dataclass
class Graph:
    name: str
    inputs: list[BlobRef]
    ops: list[Op]
    outputs: list[BlobRef]
    final: dict[str, BlobRef]  # blob name -> its value after the forward pass
    shapes: dict[BlobRef, Shape] = field(default_factory=dict)
    producers: dict[BlobRef, Op] = field(default_factory=dict)

    def blob(self, name: str) -> BlobRef:
        """The value of blob ``name`` after the forward pass."""
        if name not in self.final:
            raise NetError(
                f"the net has no blob {name!r}; known blobs: {', '.join(sorted(self.final))}. Received: blob={name!r}"
            )
        return self.final[name]

    def blob_order(self) -> list[BlobRef]:
        """Every blob value in network order (inputs first)."""
        order = list(self.inputs)
        for op in self.ops:
            order.extend(t for t in op.tops if t not in order)
        return order


def state_meets_rule(rule, phase: int, level: int, stages: Sequence[str]) -> bool:
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if rule.HasField("min_level") and level < rule.min_level:
        return False
    if rule.HasField("max_level") and level > rule.max_level:
        return False
    if any(stage not in stages for stage in rule.stage):
        return False
    return not any(stage in stages for stage in rule.not_stage)


def layer_is_kept(layer, phase: int, level: int, stages: Sequence[str]) -> bool:
    """Caffe's ``Net::FilterNet`` for one layer."""
    if layer.include and layer.exclude:
        raise LayerError(
            layer.name,
            layer.type,
            "a layer may have include rules or exclude rules, not both.",
            "include",
            len(layer.include),
        )
    if layer.include:
        return any(state_meets_rule(r, phase, level, stages) for r in layer.include)
    return not any(state_meets_rule(r, phase, level, stages) for r in layer.exclude)


def _dims(blob_shape) -> Shape:
    return tuple(int(d) for d in blob_shape.dim)


def _data_layer_shapes(layer) -> list[Shape | None]:
    """Shapes of a data layer's tops, where the prototxt alone determines them."""
    tops = len(layer.top)
    kind = layer.type
    if kind == "Input":
        shapes = [_dims(s) for s in layer.input_param.shape]
        if len(shapes) == 1:
            return shapes * tops
        return shapes + [None] * (tops - len(shapes))
    if kind == "DummyData":
        p = layer.dummy_data_param
        if p.shape:
            shapes = [_dims(s) for s in p.shape]
        else:
            shapes = [tuple(int(v) for v in dims) for dims in zip(p.num, p.channels, p.height, p.width)]
        return shapes * tops if len(shapes) == 1 else shapes + [None] * (tops - len(shapes))
    if kind == "MemoryData":
        p = layer.memory_data_param
        data = (p.batch_size, p.channels, p.height, p.width)
        return [data, (p.batch_size,)][:tops]
    if kind == "ImageData":
        p = layer.image_data_param
        crop = layer.transform_param.crop_size or p.crop_size
        height, width = (crop, crop) if crop else (p.new_height, p.new_width)
        data = (p.batch_size, 3 if p.is_color else 1, height, width) if height and width else None
        return [data, (p.batch_size,)][:tops]
    if kind == "DenseImageData":
        p = layer.dense_image_data_param
        if p.HasField("mean_file"):
            raise LayerError(
                layer.name,
                layer.type,
                "the layer subtracts a mean image read from a file while loading; the converted net "
                "takes the data after it, so subtract the mean yourself and drop the field",
                "dense_image_data_param.mean_file",
                p.mean_file,
            )
        # caffe-segnet's DataLayerSetUp: transform_param.crop_size, else crop_height x crop_width,
        # else new_height x new_width; otherwise the image files' size, given with input_shapes.
        crop = layer.transform_param.crop_size
        if crop:
            height, width = crop, crop
        elif p.crop_height and p.crop_width:
            height, width = p.crop_height, p.crop_width
        else:
            height, width = p.new_height, p.new_width
        if not (height and width):
            return [None] * tops
        return [(p.batch_size, 3 if p.is_color else 1, height, width), (p.batch_size, 1, height, width)][:tops]
    return [None] * tops


def _checked_input_shapes(input_shapes) -> dict[str, Shape]:
    """``input_shapes`` as tuples of ints (None: a free size), or the package's own error."""
    if input_shapes is None:
        return {}
    received = f"Received: input_shapes={input_shapes!r}"
    if not isinstance(input_shapes, Mapping):
        raise ArgumentError(f"input_shapes must map blob names to (N, C, H, W) shapes. {received}")
    given = {}
    for name, shape in input_shapes.items():
        if not isinstance(name, str) or isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
            raise ArgumentError(f"input_shapes must map blob names to sequences of integers. {received}")
        if not all(d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool)) for d in shape):
            raise ArgumentError(f"the shape of input {name!r} must hold integers (or None). {received}")
        given[name] = tuple(None if d is None else int(d) for d in shape)
        if not given[name] or any(d is not None and d <= 0 for d in given[name]):
            raise InputShapeError(
                f"input_shapes[{name!r}]: sizes must be whole numbers >= 1, or None (CLI: ?) for a free size "
                f"where the net allows one. Received: input_shapes[{name!r}]={given[name]!r}"
            )
    return given


def check_blob_shape(shape: Shape, layer: str, layer_type: str, what: str) -> None:
    """Caffe's ``Blob::Reshape`` checks: at most 32 axes, no negative dimension, at most INT_MAX
    values (free sizes, None, are left out of the count)."""
    fixed = [d for d in shape if d is not None]
    if len(shape) > MAX_BLOB_AXES or any(d < 0 for d in fixed) or math.prod(fixed) > MAX_BLOB_COUNT:
        raise ShapeError(
            layer,
            layer_type,
            f"{what} would have shape {tuple(shape)}; Caffe allows at most {MAX_BLOB_AXES} axes, no negative "
            f"dimension and at most {MAX_BLOB_COUNT:,} values",
            "shape",
            tuple(shape),
        )


def build_graph(
    net,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    *,
    phase: int | None = None,
    level: int | None = None,
    stages: Sequence[str] | None = None,
    require_input_shapes: bool = True,
    keep_losses: bool = False,
) -> Graph:
    """Wire a current-format NetParameter into a :class:`Graph` (TEST phase by default).

    ``keep_losses=True`` keeps the losses and Accuracy, for training (caffe2keras.training).

    With ``require_input_shapes=False`` an input without a known shape is no error; it is
    simply missing from ``graph.shapes`` (for callers that only need the inputs' names).
    """
    given = _checked_input_shapes(input_shapes)
    level = net.state.level if level is None else level
    stages = list(net.state.stage) if stages is None else list(stages)
    if phase is None:
        phase = net.state.DESCRIPTOR.fields_by_name["phase"].enum_type.values_by_name["TEST"].number
    wiring = _Wiring(keep_losses)
    for name, shape in _net_field_inputs(net):
        wiring.declare_input(name, shape, "the net's 'input' field")
    for layer in net.layer:
        if layer_is_kept(layer, phase, level, stages):
            wiring.add_layer(layer, given)
    graph = wiring.graph(net.name)
    _set_input_shapes(graph, wiring.declared_inputs, given, require_input_shapes)
    if not graph.inputs:
        raise NetError(
            "the net has no inputs: no Input or data layer and no 'input' field feeds a layer. "
            f"Received: layers={len(net.layer)}, input={list(net.input)}"
        )
    return graph


def _net_field_inputs(net) -> list[tuple[str, Shape | None]]:
    """The inputs the net's ``input`` field declares, with their shapes where it gives them."""
    # As Caffe's UpgradeNetInput: input_shape if the net has any, else 4 input_dim per input.
    legacy_shapes = [_dims(s) for s in net.input_shape] or [
        tuple(int(d) for d in net.input_dim[i : i + 4]) for i in range(0, len(net.input_dim) - 3, 4)
    ]
    return [(name, legacy_shapes[i] if i < len(legacy_shapes) else None) for i, name in enumerate(net.input)]


class _Wiring:
    """The ops and inputs of a net, layer by layer: each blob name's versions (an in-place layer
    writes a new one), checked as Caffe's Net::Init checks them."""

    def __init__(self, keep_losses: bool = False):
        self.keep_losses = keep_losses
        self.versions: dict[str, int] = {}
        self.declared_inputs: list[tuple[str, Shape | None, str]] = []  # name, shape, declared by
        self.ops: list[Op] = []
        self.silenced: set[str] = set()

    def new_version(self, name: str) -> BlobRef:
        self.versions[name] = self.versions.get(name, -1) + 1
        return BlobRef(name, self.versions[name])

    def declare_input(self, name: str, shape: Shape | None, origin: str) -> None:
        if name in self.versions:
            raise NetError(f"input blob {name!r} ({origin}) is declared twice. Received: input={name!r}")
        self.new_version(name)
        self.declared_inputs.append((name, shape, origin))

    def add_layer(self, layer, given: Mapping[str, Shape]) -> None:
        if layer.type in ("Silence",):
            self.silenced.update(layer.bottom)
        if is_dropped_type(layer.type) and not (self.keep_losses and is_training_type(layer.type)):
            return
        if not layer.top:
            # Caffe's CheckBlobCounts: every layer kept here makes at least one top.
            raise LayerError(
                layer.name,
                layer.type,
                "the layer has no top; Caffe refuses it (every layer but Silence and the losses "
                "writes at least one blob). Name its output blob with 'top:'",
                "top",
                [],
            )
        source_like = not layer.bottom and all(t in given for t in layer.top)
        if layer.type in DATA_LAYER_TYPES or source_like:
            if layer.bottom:
                raise LayerError(layer.name, layer.type, "a data layer takes no bottoms.", "bottom", list(layer.bottom))
            for top, shape in zip(layer.top, _data_layer_shapes(layer)):
                self.declare_input(top, shape, f"layer {layer.name!r} ({layer.type})")
            return
        bottoms = []
        for bottom in layer.bottom:
            if bottom not in self.versions:
                raise LayerError(
                    layer.name,
                    layer.type,
                    f"bottom blob {bottom!r} is not produced by any earlier layer or input.",
                    "bottom",
                    bottom,
                )
            bottoms.append(BlobRef(bottom, self.versions[bottom]))
        tops = []
        for top in layer.top:
            if top in self.versions and top not in layer.bottom:
                raise LayerError(
                    layer.name,
                    layer.type,
                    f"top blob {top!r} is already produced by another layer; only in-place "
                    "layers (top == bottom) may write a blob again.",
                    "top",
                    top,
                )
            tops.append(self.new_version(top))
        self.ops.append(Op(layer.name, layer.type, layer, bottoms, tops))

    def graph(self, name: str) -> Graph:
        """The graph of the layers added: inputs are the declared inputs some layer reads, outputs
        the final blob values no layer reads (nor Silence, unless Silence reads them all)."""
        consumed = {b for op in self.ops for b in op.bottoms}
        graph = Graph(
            name=name,
            inputs=[BlobRef(n) for n, _, _ in self.declared_inputs if BlobRef(n) in consumed],
            ops=self.ops,
            outputs=[],
            final={n: BlobRef(n, v) for n, v in self.versions.items()},
        )
        graph.producers = {top: op for op in self.ops for top in op.tops}
        produced_final = {ref for ref in graph.final.values() if ref in graph.producers}
        unconsumed = sorted((ref for ref in produced_final if ref not in consumed), key=lambda ref: ref.name)
        # Silence marks a blob as not wanted; a deploy net whose only result is silenced (colorization
        # silences class8_ab) would otherwise have nothing to give, so those blobs are its outputs.
        graph.outputs = [ref for ref in unconsumed if ref.name not in self.silenced] or unconsumed
        return graph


def _set_input_shapes(graph: Graph, declared_inputs, given: Mapping[str, Shape], require: bool) -> None:
    """Each input's shape: ``input_shapes``' if given, else the prototxt's."""
    missing = []
    used = set(graph.inputs)
    for name, shape, origin in declared_inputs:
        ref = BlobRef(name)
        if ref not in used:
            continue
        if name in given:
            shape = given[name]
        if not shape or any(d is not None and d <= 0 for d in shape):
            missing.append(f"{name!r} (from {origin})")
        else:
            check_blob_shape(shape, origin, "input", f"input blob {name!r}")
            graph.shapes[ref] = shape
    unknown = sorted(set(given) - {name for name, _, _ in declared_inputs})
    if unknown:
        raise InputShapeError(
            f"input_shapes names blobs that are not inputs of the net: {', '.join(unknown)}; "
            f"the inputs are {', '.join(n for n, _, _ in declared_inputs) or 'none'}. "
            f"Received: input_shapes={dict(given)!r}"
        )
    if missing and require:
        raise InputShapeError(
            f"no shape is known for input blob(s) {', '.join(missing)}; give it with "
            "input_shapes={'name': (N, C, H, W)} (CLI: --input-shape name=N,C,H,W; None or ? for a free size). "
            f"Received: input_shapes={dict(given)!r}"
        )


def needed_ops(graph: Graph, output_refs: Sequence[BlobRef]) -> set[int]:
    """The ids of the ops the outputs depend on (the writers build no other)."""
    needed: set = set()
    pending = list(output_refs)
    seen: set[BlobRef] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        op = graph.producers.get(ref)
        if op is not None and id(op) not in needed:
            needed.add(id(op))
            pending.extend(op.bottoms)
    return needed

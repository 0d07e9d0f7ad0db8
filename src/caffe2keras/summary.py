"""A look at a Caffe net before converting it: :func:`summarize` (``caffe2keras inspect``).

Every layer's blobs, Caffe shapes, parameter count, and the Keras layers its
converter makes, or why it cannot be converted. Each layer is planned
(:mod:`caffe2keras.plan`) as the builder plans it; no Keras model is built.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from caffe2keras.caffe import read_net, read_weights
from caffe2keras.converters.base import rule_for
from caffe2keras.errors import Caffe2KerasError, LayerError, about_file
from caffe2keras.graph import DATA_LAYER_TYPES, Graph, build_graph, is_dropped_type, layer_is_kept
from caffe2keras.layout import Layout
from caffe2keras.plan import layer_blobs, plan_layer, refusal
from caffe2keras.shape_rules import infer_known_shapes

PathLike = str | os.PathLike

# status -> (label, rich style)
STATUS_STYLE = {
    "ok": ("ok", "green"),
    "input": ("input", "cyan"),
    "dropped": ("dropped", "dim"),
    "unsupported": ("unsupported", "bold red"),
    "error": ("error", "bold red"),
    "unknown": ("shape unknown", "yellow"),
}


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    top_shapes: tuple[tuple[int, ...] | None, ...]  # Caffe's layout; None where unknown
    parameters: int | None
    keras: str  # the Keras layers, in order ("" when none are made)
    status: str  # a key of STATUS_STYLE
    reason: str = ""  # why a layer is dropped, unsupported, in error or of unknown shape


@dataclass
class NetSummary:
    """What :func:`summarize` found: one row per layer of the TEST-phase net, in prototxt order."""

    prototxt: str
    weights: str | None
    data_format: str
    rows: list[LayerRow]
    graph: Graph = field(repr=False)

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)

    @property
    def parameters(self) -> int:
        return sum(row.parameters or 0 for row in self.rows)

    @property
    def totals(self) -> str:
        counts = ", ".join(
            f"{self.count(status)} {label}" for status, (label, _) in STATUS_STYLE.items() if self.count(status)
        )
        unsupported_types = sorted({row.type for row in self.rows if row.status == "unsupported"})
        text = f"{len(self.rows)} layers ({counts}); {self.parameters:,} parameters"
        if unsupported_types:
            text += f"; unsupported types: {', '.join(unsupported_types)}"
        if self.count("unknown"):
            text += "; give the missing input shapes with --input-shape NAME=N,C,H,W"
        return text

    @property
    def convertible(self) -> bool:
        return not (self.count("unsupported") or self.count("error"))

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table

        from caffe2keras.console import console_text

        table = Table(show_edge=False, pad_edge=False)
        for title in ("#", "layer", "type", "bottoms → tops", "top shapes", "params", "Keras", "status"):
            table.add_column(title, justify="right" if title in ("#", "params") else "left")
        for index, row in enumerate(self.rows):
            label, style = STATUS_STYLE[row.status]
            shapes = ", ".join("?" if s is None else "×".join(map(str, s)) for s in row.top_shapes)
            status = f"[{style}]{label}[/]" + (f": {console_text(row.reason)}" if row.reason else "")
            table.add_row(
                str(index),
                console_text(row.name),
                console_text(row.type),
                console_text(f"{', '.join(row.bottoms)} → {', '.join(row.tops)}"),
                shapes,
                "" if row.parameters is None else f"{row.parameters:,}",
                console_text(row.keras),
                status,
            )
        head = f"[bold]{console_text(self.prototxt)}[/]" + (f" + {console_text(self.weights)}" if self.weights else "")
        return Group(f"{head} (shapes in Caffe's N×C×H×W; Keras layers for {self.data_format})", table, self.totals)

    def print(self, console=None) -> None:
        from caffe2keras.console import report_console

        (console or report_console()).print(self)


def summarize(
    prototxt: PathLike,
    weights: PathLike | None = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    data_format: str = "channels_last",
) -> NetSummary:
    """Every layer of a Caffe net, its shapes and parameters, and how it converts or why it cannot.

    With ``weights``, parameter counts are the file's, and each layer's blobs are checked against
    its prototxt (a layer whose blobs do not fit is in ``error``). Raises
    :class:`caffe2keras.Caffe2KerasError` only for files that cannot be read or a net that does
    not wire up; problems of single layers are rows of the summary.
    """
    layout = Layout(data_format)
    with about_file(prototxt):
        net = read_net(prototxt)
        graph = build_graph(net, input_shapes, require_input_shapes=False)
    loaded = None if weights is None else read_weights(weights)
    unknown = infer_known_shapes(graph, lambda op: getattr(rule_for(op.type), "shapes", None))
    ops = iter(graph.ops)
    rows = [
        LayerRow(name, "input", (), (name,), (graph.shapes.get(ref),), None, "keras.Input", "input")
        for name in net.input
        for ref in graph.inputs
        if ref.name == name
    ]
    level, stages = net.state.level, list(net.state.stage)
    op_names = {op.name for op in graph.ops}
    for layer in net.layer:
        if not layer_is_kept(layer, 1, level, stages):
            continue
        if layer.type in DATA_LAYER_TYPES or (not layer.bottom and layer.top and layer.name not in op_names):
            tops = tuple(layer.top)
            shapes = tuple(next((graph.shapes.get(r) for r in graph.inputs if r.name == t), None) for t in tops)
            rows.append(LayerRow(layer.name, layer.type, (), tops, shapes, None, "keras.Input", "input"))
        elif is_dropped_type(layer.type):
            rows.append(
                LayerRow(
                    layer.name,
                    layer.type,
                    tuple(layer.bottom),
                    tuple(layer.top),
                    (),
                    None,
                    "",
                    "dropped",
                    "not used at inference",
                )
            )
        else:
            op = next(ops)
            rows.append(_op_row(op, graph, loaded, layout, unknown.get(op.name)))
    return NetSummary(str(prototxt), None if weights is None else str(weights), data_format, rows, graph)


def _op_row(op, graph: Graph, loaded, layout: Layout, shapes_unknown: str | None) -> LayerRow:
    in_shapes = tuple(graph.shapes.get(b) for b in op.bottoms)
    out_shapes = tuple(graph.shapes.get(t) for t in op.tops)
    blobs = layer_blobs(loaded, op)
    parameters = None if blobs is None else sum(b.data.size for b in blobs) or None

    def row(keras: str, status: str, reason: str = "", count=parameters) -> LayerRow:
        return LayerRow(
            op.name,
            op.type,
            tuple(b.name for b in op.bottoms),
            tuple(t.name for t in op.tops),
            out_shapes,
            count,
            keras,
            status,
            reason,
        )

    refused = refusal(op)
    if refused is not None:
        return row("", "unsupported", str(refused) or "caffe2keras has no converter for this type")
    if None in in_shapes or (shapes_unknown and rule_for(op.type).shapes is not None):
        missing_input = None in in_shapes or shapes_unknown.startswith("the shape of")
        return row("", "unknown" if missing_input else "error", shapes_unknown or "the input shapes are not known")
    try:
        plan = plan_layer(op, in_shapes, layout, loaded)
        steps = plan.steps
    except LayerError as exc:
        received = "" if exc.field is None else f" ({exc.field}={exc.value!r})"
        return row("", "error", exc.detail + received)
    except Caffe2KerasError as exc:
        return row("", "error", str(exc))
    keras = " → ".join(type(step.layer).__name__ for step in steps) or "(identity)"
    if blobs:
        parameters = sum(b.data.size for i, b in enumerate(blobs) if i not in plan.node.folded) or None
    elif plan.node.requested:
        parameters = sum(math.prod(shape) for i, shape in plan.node.requested.items() if i not in plan.node.folded)
    return row(keras, "ok", count=parameters)

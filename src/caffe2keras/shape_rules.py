"""Caffe's shape rules applied to a graph: one layer's (:func:`apply_shape_rule`, as a plan applies
it) or every layer's in network order (:func:`infer_shapes`, :func:`infer_known_shapes`, for what
knows no plan), with the checks every produced shape must pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from caffe2keras.errors import LayerError, ShapeError
from caffe2keras.graph import Graph, Op, Shape, check_blob_shape

ShapeRule = Callable[[Op, list[Shape]], list[Shape]]


def has_free_dims(shapes: Sequence[Shape]) -> bool:
    return any(d is None for shape in shapes for d in shape)


def free_size_error(op: Op, in_shapes: Sequence[Shape]) -> ShapeError:
    """The error for a layer whose output Caffe defines only for sizes known at conversion."""
    return ShapeError(
        op.name,
        op.type,
        "this layer needs sizes fixed at conversion, but a free (None) dimension reaches it; "
        "convert with fixed input_shapes (CLI: --input-shape) to use it",
        "bottom_shapes",
        [tuple(s) for s in in_shapes],
    )


def apply_shape_rule(rule: ShapeRule, op: Op, in_shapes: list[Shape]) -> list[Shape]:
    """``rule(op, in_shapes)``; a rule that cannot take a free dimension becomes a clear error."""
    try:
        out_shapes = rule(op, in_shapes)
    except TypeError:
        if has_free_dims(in_shapes):
            raise free_size_error(op, in_shapes) from None
        raise
    return [tuple(None if d is None else int(d) for d in shape) for shape in out_shapes]


def infer_shapes(graph: Graph, rule_for: Callable[[Op], ShapeRule]) -> None:
    """Fill ``graph.shapes`` for every blob value, in network order."""
    for op in graph.ops:
        _infer_op_shapes(graph, op, rule_for(op))


def _infer_op_shapes(graph: Graph, op: Op, rule: ShapeRule) -> None:
    out_shapes = apply_shape_rule(rule, op, [graph.shapes[b] for b in op.bottoms])
    check_top_count(op, len(out_shapes))
    for top, shape in zip(op.tops, out_shapes):
        check_blob_shape(shape, op.name, op.type, f"top {top.name!r}")
        graph.shapes[top] = shape


def infer_known_shapes(graph: Graph, rule_for: Callable[[Op], ShapeRule | None]) -> dict[str, str]:
    """Fill ``graph.shapes`` as far as it goes: layers whose bottoms have no known shape, that
    have no shape rule, or whose rule refuses its inputs leave their tops unknown.

    Returns why, by layer name, for each layer whose tops stay unknown.
    """
    unknown: dict[str, str] = {}
    for op in graph.ops:
        # Caffe's blob names: a version (an in-place layer's output) is internal to the graph.
        missing = list(dict.fromkeys(b.name for b in op.bottoms if b not in graph.shapes))
        rule = rule_for(op)
        if missing:
            unknown[op.name] = f"the shape of {', '.join(missing)} is not known"
        elif rule is None:
            unknown[op.name] = "no shape rule"
        else:
            try:
                _infer_op_shapes(graph, op, rule)
            except LayerError as exc:
                unknown[op.name] = exc.detail
    return unknown


def check_top_count(op: Op, produced: int) -> None:
    """The layer's tops must name each blob its shape rule or converter makes."""
    if produced != len(op.tops):
        raise LayerError(
            op.name,
            op.type,
            f"the layer produces {produced} blob(s) but names {len(op.tops)} top(s).",
            "top",
            [t.name for t in op.tops],
        )

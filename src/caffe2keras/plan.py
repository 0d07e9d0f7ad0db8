"""The plan of one Caffe layer: what every writer of a converted net learns about it, in one place.

The Keras builder, ``inspect``'s summary, :func:`caffe2keras.parameter_shapes` (and any other
writer, such as an ONNX one) ask the same questions of each layer, so they ask them here:

- :func:`refusal` -- why the layer cannot be converted (no converter for its type, or its
  converter's ``check`` refuses it), or None. :func:`check_supported` reports every refused
  layer of a graph at once.
- :func:`plan_layer` -- a :class:`LayerPlan`:

  - ``node``: the :class:`~caffe2keras.converters.base.Node` a converter reads: parameters
    (``node.param``), the bottoms' and tops' Caffe shapes, the layout, and the weights file's
    blobs (``node.weights``; ``node.blob(i, shape)`` checks one against the shape it must have);
  - ``out_shapes``: the tops' Caffe shapes by the type's shape rule, one per top (None without
    a shape rule);
  - ``refusal``: as :func:`refusal` (then ``node`` and ``out_shapes`` are None);
  - ``steps``: the Keras layers to apply (:class:`~caffe2keras.converters.base.Step`), made on
    first access by running the converter, which also checks the weights and fills
    ``node.requested`` (every parameter blob's shape).

Example, a writer that needs no Keras layers::

    plan = plan_layer(op, [graph.shapes[b] for b in op.bottoms], Layout(), weights)
    if plan.refusal is None:
        graph.shapes.update(zip(op.tops, plan.out_shapes))

Planning runs no converter, so it makes no Keras object: only ``steps`` does. Neither this module
nor the built-in converter modules that fill the registry (``rule_for``) import Keras, so a writer
that never loads it (the ONNX one) plans every layer here too.

Errors: a net the layer cannot be planned for raises :class:`caffe2keras.errors.LayerError`
(missing bottoms, a shape rule refusing its input, parameters no converter check caught).
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from caffe2keras.caffe.weights import Blob, Weights
from caffe2keras.converters import base
from caffe2keras.converters.base import LayerRule, Node, Step
from caffe2keras.errors import Caffe2KerasError, LayerError, UnsupportedLayersError
from caffe2keras.graph import Graph, Op, Shape, check_blob_shape
from caffe2keras.layout import Layout
from caffe2keras.shape_rules import apply_shape_rule, check_top_count, free_size_error, has_free_dims

RuleFor = Callable[[str], LayerRule | None]


@dataclass(frozen=True)
class Refusal:
    """Why a layer cannot be converted."""

    reason: str  # "" when caffe2keras knows nothing of the type
    detail: str | None = None  # what tells this layer from others of its type (a Python layer's class)

    def __str__(self) -> str:
        return f"{self.detail}: {self.reason}" if self.detail else self.reason


def refusal(op: Op, rule_for: RuleFor = base.rule_for) -> Refusal | None:
    """Why ``op`` cannot be converted, or None when its converter takes it."""
    rule = rule_for(op.type)
    if rule is None:
        known = base.unsupported(op.type)
        if known is None:
            return Refusal("")
        return Refusal(known.reason, known.detail(op) if known.detail else None)
    if rule.check is not None and (reason := rule.check(op)) is not None:
        known = base.unsupported(op.type)  # a type converted only in part: a Python layer's class
        return Refusal(reason, known.detail(op) if known and known.detail else None)
    return None


def check_supported(
    graph: Graph | Sequence[Op],
    rule_for: RuleFor = base.rule_for,
    writer_refusal: Callable[[Op], Refusal | None] | None = None,
) -> None:
    """Report every layer that cannot be converted at once, by type, before anything is built.

    ``graph`` may be the ops a writer keeps; ``writer_refusal`` adds what that writer cannot write
    of a layer its converter takes (the ONNX writer: a type it has no emitter for)."""
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    reasons: dict[str, dict[str, None]] = {}  # type -> distinct reasons, in order
    details: dict[str, dict[str, None]] = {}
    for op in graph.ops if isinstance(graph, Graph) else graph:
        refused = refusal(op, rule_for)
        if refused is None and writer_refusal is not None:
            refused = writer_refusal(op)
        if refused is None:
            continue
        counts[op.type] += 1
        first.setdefault(op.type, op.name)
        reasons.setdefault(op.type, {})[refused.reason] = None
        if refused.detail is not None:
            details.setdefault(op.type, {})[refused.detail] = None
    if counts:
        raise UnsupportedLayersError(
            (t, counts[t], first[t], _join_reasons(details.get(t, {}), reasons[t])) for t in counts
        )


def _join_reasons(details, reasons) -> str:
    text = "; ".join(r for r in reasons if r)
    return f"{', '.join(details)}: {text}" if details else text


def layer_blobs(weights: Weights | None, op: Op) -> tuple[Blob, ...] | None:
    """The blobs a weights file holds for ``op`` (maybe none), or None without a weights file."""
    if weights is None:
        return None
    found = weights.get(op.name)
    return found.blobs if found is not None else ()


@dataclass(eq=False)
class LayerPlan:
    """One layer, planned: see the module's docstring."""

    op: Op
    rule: LayerRule | None
    refusal: Refusal | None
    node: Node | None
    out_shapes: tuple[Shape, ...] | None

    @functools.cached_property
    def steps(self) -> list[Step]:
        """The Keras layers the converter makes, its parameters and weights checked."""
        if self.node is None:
            raise UnsupportedLayersError([(self.op.type, 1, self.op.name, str(self.refusal))])
        with reported_against(self.op, self.node.in_shapes):
            built = self.rule.convert(self.node)
        self.node.check_all_blobs_used()
        return [built] if isinstance(built, Step) else list(built)


def plan_layer(
    op: Op,
    in_shapes: Sequence[Shape],
    layout: Layout,
    weights: Weights | None = None,
    *,
    rule_for: RuleFor = base.rule_for,
    allow_random: bool = False,
) -> LayerPlan:
    """Plan ``op`` given its bottoms' Caffe shapes; ``weights=None`` plans the architecture only.

    A layer the weights file lacks reads its blobs, as Caffe keeps them, from its prototxt's
    fillers: constant ones, or random ones with ``allow_random`` (``node.filled`` says which).
    """
    rule = rule_for(op.type)
    refused = refusal(op, rule_for)
    if refused is not None:
        return LayerPlan(op, rule, refused, None, None)
    if len(op.bottoms) < rule.min_bottoms:
        raise LayerError(
            op.name,
            op.type,
            f"the layer has no bottom; Caffe refuses it ({op.type} reads at least {rule.min_bottoms} "
            "blob). Name its input blob with 'bottom:'",
            "bottom",
            [],
        )
    in_shapes = tuple(in_shapes)
    with reported_against(op, in_shapes):
        out_shapes = tuple(apply_shape_rule(rule.shapes, op, list(in_shapes))) if rule.shapes else None
    if out_shapes is not None:
        check_top_count(op, len(out_shapes))
        for top, shape in zip(op.tops, out_shapes):
            check_blob_shape(shape, op.name, op.type, f"top {top.name!r}")
    node = Node(
        op,
        in_shapes,
        out_shapes or (),
        layout,
        layer_blobs(weights, op),
        from_fillers=weights is not None and weights.get(op.name) is None,
        allow_random=allow_random,
    )
    return LayerPlan(op, rule, None, node, out_shapes)


@contextlib.contextmanager
def reported_against(op: Op, in_shapes: Sequence[Shape]) -> Iterator[None]:
    """Turn what a shape rule, converter or other writer's emitter lets slip into an error naming
    the layer."""
    try:
        yield
    except Caffe2KerasError:
        raise
    except TypeError:
        if has_free_dims(in_shapes):  # arithmetic on a size that is only known when the model runs
            raise free_size_error(op, in_shapes) from None
        raise
    except (ArithmeticError, ValueError) as exc:  # a parameter no check caught; still the net's doing
        raise LayerError(
            op.name, op.type, f"the layer's parameters cannot be used: {type(exc).__name__}: {exc}", "type", op.type
        ) from exc

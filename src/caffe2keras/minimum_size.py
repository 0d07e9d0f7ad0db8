"""The smallest input a free-size net takes, found at conversion and checked before each run.

Caffe's shape rules shrink a blob at each strided convolution and pooling: below some input size
a blob has no pixels left (a 3x3 pooling with stride 2 of a 1x1 map gives 0x0 by Caffe's own
rounding) or a layer refuses its input (a kernel larger than the padded map). Keras then fails
inside a convolution, or, where an empty map reaches a global average pooling, divides 0 by 0
and returns NaN. :func:`minimum_sizes` runs the net's shape rules at trial sizes (no tensors) to
find, per free spatial axis of each image input, the smallest size at which every blob has at
least one value; the model carries it in its :class:`~caffe2keras.layers.CaffePreprocessing`
step (``min_size``), and :func:`check_input_sizes` refuses smaller inputs by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from caffe2keras.errors import Caffe2KerasError, InputShapeError
from caffe2keras.graph import Graph, Shape
from caffe2keras.shape_rules import infer_shapes

SPATIAL_AXES = (2, 3)  # H and W of Caffe's (N, C, H, W)
LARGEST_TRIED = 1 << 16  # a net needing a larger input than this gets no recorded minimum


def minimum_sizes(graph: Graph, shape_rule: Callable) -> dict[str, tuple[int, int]]:
    """``{input blob: (min height, min width)}`` for each 4-D input whose height or width is
    free, where the minimum is above 1. ``shape_rule(op)`` gives an op's rule (None: unknown,
    and then nothing is recorded)."""
    free = {
        ref: shape
        for ref, shape in ((ref, graph.shapes.get(ref)) for ref in graph.inputs)
        if shape is not None and len(shape) == 4 and any(shape[axis] is None for axis in SPATIAL_AXES)
    }
    if not free or any(shape_rule(op) is None for op in graph.ops):
        return {}

    def fits(sizes: Mapping[tuple, int]) -> bool:
        trial = dict(graph.shapes)
        for ref, shape in free.items():
            trial[ref] = tuple(
                sizes.get((ref, axis), 1) if d is None else d for axis, d in enumerate(shape)
            )  # a free batch or channel axis: 1
        return _all_blobs_filled(graph, trial, shape_rule)

    axes = [(ref, axis) for ref, shape in free.items() for axis in SPATIAL_AXES if shape[axis] is None]
    square = _smallest(lambda s: fits(dict.fromkeys(axes, s)), 1, LARGEST_TRIED)
    if square is None:
        return {}
    found = {}
    for key in axes:

        def works(size: int, key=key) -> bool:
            return fits({**dict.fromkeys(axes, square), key: size})

        # Most nets treat height and width alike: one trial shows the square's side is this axis' minimum.
        found[key] = square if square == 1 or not works(square - 1) else _smallest(works, 1, square - 1)
    if not fits(found):  # the axes are not independent: keep the square that works
        found = dict.fromkeys(axes, square)
    minimums = {}
    for ref in free:
        sizes = tuple(found.get((ref, axis), 1) for axis in SPATIAL_AXES)
        if max(sizes) > 1:
            minimums[ref.name] = sizes
    return minimums


def _all_blobs_filled(graph: Graph, shapes: dict, shape_rule: Callable) -> bool:
    trial = Graph(graph.name, graph.inputs, graph.ops, graph.outputs, graph.final, shapes, graph.producers)
    try:
        infer_shapes(trial, shape_rule)
    except (Caffe2KerasError, ArithmeticError, TypeError, ValueError):  # a rule refusing a size too small
        return False
    return all(d is None or d > 0 for shape in trial.shapes.values() for d in shape)


def _smallest(works: Callable[[int], bool], low: int, high: int) -> int | None:
    """The smallest size in [low, high] that works, taking sizes above a working one to work too."""
    size = low
    while not works(size):
        if size >= high:
            return None
        low, size = size + 1, min(high, size * 2)
    while low < size:
        middle = (low + size) // 2
        if works(middle):
            size = middle
        else:
            low = middle + 1
    return size


def check_input_sizes(model, shapes: Mapping[str, Shape] | Sequence[Shape]) -> None:
    """An :class:`InputShapeError` naming the input, its size and the minimum, for any input
    (a Keras shape, with the batch axis; by input name, or in the model's input order) smaller
    than the minimum the model's preprocessing step records."""
    from caffe2keras.layers.preprocessing import CaffePreprocessing

    if not isinstance(shapes, Mapping):
        shapes = dict(zip((t.name.split(":")[0] for t in model.inputs), shapes))
    for layer in model.layers:
        if not isinstance(layer, CaffePreprocessing) or layer.min_size is None:
            continue
        name = layer.input.name.split(":")[0]
        shape = shapes.get(name)
        if shape is None:
            continue
        size = tuple(shape[1:3] if layer.data_format == "channels_last" else shape[2:4])
        if any(s is not None and s < m for s, m in zip(size, layer.min_size)):
            raise InputShapeError(below_minimum_message(name, size, layer.min_size))


def below_minimum_message(name: str, size: Sequence[int], minimum: Sequence[int]) -> str:
    return (
        f"input {name!r} is {size[0]}x{size[1]}, smaller than the {minimum[0]}x{minimum[1]} the net needs "
        "(below it, a strided layer is left with no pixels, as in Caffe); give an image at least that "
        f"large. Received: {name}={size[0]}x{size[1]}"
    )

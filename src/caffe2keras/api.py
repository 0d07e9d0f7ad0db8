"""The public Python API: convert a Caffe model, register converters for custom types."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence

from caffe2keras.builder import build_model
from caffe2keras.caffe import read_net, read_weights
from caffe2keras.caffe.limits import check_path_type
from caffe2keras.converters.base import Converter, LayerRule, ShapeRule, register_rule, rule_for
from caffe2keras.errors import ArgumentError, ConversionWarning, NetError, RegistryError, WeightsError, about_file
from caffe2keras.graph import DATA_LAYER_TYPES, Graph, build_graph, is_dropped_type
from caffe2keras.labels import check_label_count, read_labels
from caffe2keras.layout import Layout
from caffe2keras.minimum_size import minimum_sizes
from caffe2keras.parameter_slots import apply_param_blocks
from caffe2keras.plan import check_supported, plan_layer
from caffe2keras.preprocessing import Preprocessing, declared_transforms, plan_inputs, unembedded_warning
from caffe2keras.progress import Progress
from caffe2keras.saving import MULTIPLIERS_ATTRIBUTE
from caffe2keras.shape_rules import infer_shapes

PathLike = str | os.PathLike


def convert(
    prototxt: PathLike,
    weights: PathLike | None = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    outputs: Sequence[str] | None = None,
    data_format: str = "channels_last",
    progress: bool = False,
    preprocessing=None,
    labels=None,
    allow_random: bool = False,
):
    """Convert a Caffe net to a Keras functional model.

    Args:
        prototxt: the net definition (``deploy.prototxt``, ``train_val.prototxt``; current or V1 format).
        weights: a ``.caffemodel`` or ``.caffemodel.h5`` file, or None for the architecture only.
        input_shapes: Caffe (N, C, H, W) shapes of input blobs the prototxt does not fix, by blob name.
        outputs: blob names to return, in this order, each with its value after the whole forward
            pass (as pycaffe's ``net.blobs[name]``); default: Caffe's net outputs.
        data_format: ``"channels_last"`` (Caffe's axis 1 moved last in every tensor of rank >= 3)
            or ``"channels_first"`` (Caffe's own layout).
        progress: show progress bars (reading, building) on stderr, for big models.
        preprocessing: build Caffe's preprocessing into the model, in front of the input: True
            (as the data layers' ``transform_param`` says), a dict of :class:`Preprocessing`'s
            options, or a :class:`Preprocessing`. The model then takes RGB images of 0-255, as
            Keras users hold them; ``channel_order`` says the order the net was trained on
            (default ``"bgr"``, ``"rgb"`` for CIFAR-10 and MTCNN). None: the model takes the net's blob as is, and a
            :class:`ConversionWarning` says what Caffe's data layers did.
        labels: class labels (a file of one per line, or a sequence) for the model to carry;
            ``caffe2keras predict`` and :func:`model_labels` read them back.
        allow_random: a layer the weights file lacks starts, as in Caffe, from its prototxt's
            fillers; constant ones always, random ones (xavier, gaussian...) only when True.
            A :class:`ConversionWarning` names such layers.

    A layer whose ``param`` blocks give every blob ``lr_mult: 0`` (Caffe's frozen layer) is
    ``trainable=False``; other multipliers than 1 are carried for fine-tuning with
    :class:`~caffe2keras.layers.CaffeSolver` (:func:`parameter_multipliers`).

    Returns:
        A ``keras.Model`` whose inputs are named and ordered as the net's input blobs and whose
        outputs are named after their blobs. Raises :class:`caffe2keras.Caffe2KerasError`.
    """
    layout = Layout(data_format)
    if outputs is not None and (isinstance(outputs, str) or not all(isinstance(n, str) for n in outputs)):
        raise ArgumentError(f"outputs must be a list of blob names, or None. Received: outputs={outputs!r}")
    with about_file(prototxt):
        net = read_net(prototxt)
        graph = graph_of(net, input_shapes)
        if outputs is not None:
            for name in outputs:
                graph.blob(name)
        options = Preprocessing.from_argument(preprocessing)
        label_list = None if labels is None else read_labels(labels)
        steps = plan_inputs(net, prototxt, graph, options, label_list, minimum_sizes(graph, shape_rule_or_none))
        if options is None and (message := unembedded_warning(declared_transforms(net))):
            warnings.warn(message, ConversionWarning, stacklevel=2)
        with Progress(progress) as bars:
            loaded = None
            if weights is not None:
                check_path_type(weights, "weights")
                with bars.phase("reading", None, detail=os.path.basename(weights)):
                    loaded = read_weights(weights, {op.name for op in graph.ops})
            applied = []
            with bars.phase("building", len(graph.ops)) as advance:
                with about_file(weights, (WeightsError,)):
                    model = build_model(
                        graph,
                        loaded,
                        layout,
                        rule_for,
                        outputs,
                        on_layer=lambda op: advance(detail=f"{op.name} ({op.type})"),
                        input_layers={step.blob: step.layer(layout.data_format) for step in steps},
                        allow_random=allow_random,
                        on_steps=lambda op, steps: applied.append((op, steps)),
                    )
            settings = apply_param_blocks(graph, layout, applied, rule_for)
            setattr(model, MULTIPLIERS_ATTRIBUTE, settings.multipliers)
        if label_list is not None:
            output = model.outputs[0]
            check_label_count(label_list, math.prod(output.shape[1:]), model.output_names[0])
    return model


def shape_rule_or_none(op) -> ShapeRule | None:
    return rule_for(op.type).shapes


def load_graph(prototxt: PathLike, input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """Read a prototxt into a blob graph, and check every layer type has a converter."""
    with about_file(prototxt):
        return graph_of(read_net(prototxt), input_shapes)


def graph_of(net, input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    graph = build_graph(net, input_shapes)
    check_supported(graph, rule_for)
    return graph


def parameter_shapes(
    prototxt: PathLike, input_shapes: Mapping[str, Sequence[int]] | None = None
) -> dict[str, list[tuple[int, ...]]]:
    """The shape of every parameter blob the prototxt implies, by layer name, in Caffe's layout.

    Layers without parameters are left out. No Keras model is built.
    """
    with about_file(prototxt):
        graph = load_graph(prototxt, input_shapes)

        def shape_rule(op):
            rule = rule_for(op.type)
            if rule.shapes is None:
                raise NetError(
                    f"layer {op.name!r} ({op.type}) has a converter without a shape rule; register it "
                    f"with register_converter(..., shapes=...). Received: type={op.type!r}"
                )
            return rule.shapes

        infer_shapes(graph, shape_rule)
        shapes = {}
        for op in graph.ops:
            plan = plan_layer(op, [graph.shapes[b] for b in op.bottoms], Layout())
            plan.steps  # noqa: B018 (the converter asks for each parameter blob by its shape)
            if plan.node.requested:
                shapes[op.name] = [plan.node.requested[i] for i in sorted(plan.node.requested)]
    return shapes


def register_converter(
    layer_type: str,
    convert: Converter,
    shapes: ShapeRule | None = None,
    *,
    replace: bool = False,
) -> None:
    """Teach caffe2keras a Caffe layer type (a fork's, your own, or ``"Python"``).

    Args:
        layer_type: the type string as the prototxt writes it (``type: "MyLayer"``).
        convert: ``convert(node) -> Step | list[Step]``. ``node`` (a
            :class:`caffe2keras.Node`) carries the layer's parameters
            (``node.param``), its Caffe shapes, the layout of the Keras tensors
            and its weights (``node.blob(i, shape)``). Return the Keras layers to
            apply wrapped in :class:`caffe2keras.Step` (an empty list makes every
            top the first bottom). Raise ``node.error(message, field, value)`` for
            parameters you cannot convert. For a saved model to reload with
            ``safe_mode=True``, use layers registered with
            ``keras.saving.register_keras_serializable``, never ``Lambda``.
        shapes: ``shapes(op, input_shapes) -> output_shapes``: Caffe's shape rule,
            in Caffe's layout with the batch axis (``op.param`` is the layer's
            parameters). It lets the builder check your layers' output shapes and
            ``parameter_shapes`` work; when omitted, the output shapes are read
            off the Keras layers.
        replace: replace an existing converter, a built-in one included.

    Raises:
        RegistryError: ``layer_type`` already has a converter (and ``replace`` is
            False), or caffe2keras handles the type before any converter runs
            (data layers become inputs; losses, ``Accuracy`` and ``Silence`` are dropped).
    """
    if not isinstance(layer_type, str) or not layer_type:
        raise ArgumentError(f"layer_type must be a non-empty string. Received: layer_type={layer_type!r}")
    if not callable(convert):
        raise ArgumentError(f"convert must be callable as convert(node). Received: convert={convert!r}")
    if shapes is not None and not callable(shapes):
        raise ArgumentError(
            f"shapes must be callable as shapes(op, input_shapes), or None. Received: shapes={shapes!r}"
        )
    if layer_type in DATA_LAYER_TYPES or is_dropped_type(layer_type):
        role = "become the net's inputs" if layer_type in DATA_LAYER_TYPES else "are dropped at inference"
        raise RegistryError(
            f"{layer_type!r} layers {role} before any converter runs, so a converter for them "
            f"would never be called. Received: layer_type={layer_type!r}"
        )
    register_rule(LayerRule(layer_type, convert, shapes), replace=replace)

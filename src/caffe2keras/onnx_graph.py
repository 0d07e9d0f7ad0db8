"""Edits to the ONNX graph tf2onnx writes, so that it reads as the Caffe net did.

- The graph's outputs are named after the model's outputs (the Caffe blobs), not ``Identity:0``.
- Caffe's max pooling, traced as a ``Pad`` with -FLT_MAX then an unpadded ``MaxPool``, becomes one
  ``MaxPool`` with ``pads``: runtimes then pick their pooling kernel with padding built in. The
  numbers are equal: ONNX's ``MaxPool`` ignores padded cells, and a window made of padding alone
  (which Caffe fills with -FLT_MAX) does not occur while every pad is smaller than the kernel,
  which ONNX Runtime requires and this checks.
- Caffe's across-channel LRN, traced from ``keras.ops`` as squares, channel slices, sums and a
  power, becomes one ONNX ``LRN``: its formula is Caffe's, ``x / (k + alpha / n * sum(x^2)) ^ beta``
  over a zero-padded window of ``n`` channels centred on each.
- A transposed convolution whose kernel is shorter than its stride: TensorFlow's output is
  ``n * stride`` long, which tf2onnx writes as a negative end pad (ONNX Runtime refuses those).
  The same length is ``output_padding``: zeros past the kernel's reach, as TensorFlow's.
- A channels_first convolution's ``BiasAdd`` that tf2onnx leaves as an ``Add`` of a 1-D bias: ONNX
  broadcasts that along the last axis (width), not the channels TensorFlow's ``BiasAdd`` adds it to,
  and where the width equals the channel count nothing refuses it. The bias becomes the
  convolution's own ``B`` input, per channel as in TensorFlow (and Caffe).
"""

from __future__ import annotations

import re

import numpy as np

LOWEST_FLOAT32 = float(np.finfo(np.float32).min)


def name_outputs(graph, names) -> None:
    renames = {}
    for output, name in zip(graph.output, names):
        renames[output.name] = name
        output.name = name
    for node in graph.node:
        node.output[:] = [renames.get(n, n) for n in node.output]
        node.input[:] = [renames.get(n, n) for n in node.input]


def fold_pads_into_max_pools(graph) -> int:
    """Fold each ``Pad`` that only feeds an unpadded 2-D ``MaxPool`` into its ``pads``; return how many."""
    from onnx import helper

    # By name, left as protos: only the few pads read are converted, not every weight.
    initializers = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    folded = []
    for pad in graph.node:
        if pad.op_type != "Pad" or pad.output[0] in graph_outputs:
            continue
        users = consumers.get(pad.output[0], [])
        if len(users) != 1 or users[0].op_type != "MaxPool":
            continue
        pool = users[0]
        pads = _max_pool_pads(pad, pool, initializers)
        if pads is None:
            continue
        pool.input[0] = pad.input[0]
        kept = [a for a in pool.attribute if a.name not in ("pads", "auto_pad")]
        del pool.attribute[:]
        pool.attribute.extend([*kept, helper.make_attribute("pads", pads)])
        folded.append(pad)
    for pad in folded:
        graph.node.remove(pad)
    _drop_unused_initializers(graph)
    return len(folded)


def fuse_lrn_layers(graph, lrn_layers: dict[str, dict], layer_names) -> int:
    """Replace the nodes traced from each across-channel, channels_first LRN layer with one ``LRN``.

    ``lrn_layers`` maps a Keras layer's name to its config; ``layer_names`` are all the model's layer
    names. tf2onnx names a node ``<model>/<layer scope>/<op>``, the scope being the layer's name,
    possibly with a ``_<n>`` suffix. A layer whose nodes do not form one subgraph with one input
    and one output is left as traced. Returns how many layers were fused.
    """
    from onnx import helper

    scopes: dict[str, list] = {}
    for node in graph.node:
        parts = node.name.split("/")
        layer = _layer_of_scope(parts[1], layer_names) if len(parts) > 2 else None
        if layer in lrn_layers:
            scopes.setdefault(layer, []).append(node)
    constants = {t.name for t in graph.initializer}
    fused = {}
    for layer, nodes in scopes.items():
        boundary = _single_input_output(graph, nodes, constants)
        if boundary is None:
            continue
        config = lrn_layers[layer]
        lrn = helper.make_node(
            "LRN",
            [boundary[0]],
            [boundary[1]],
            name=f"{layer}/LRN",
            size=config["size"],
            alpha=config["alpha"],
            beta=config["beta"],
            bias=config["k"],
        )
        fused[id(nodes[-1])] = (lrn, {id(n) for n in nodes})
    if fused:
        removed = set().union(*(ids for _, ids in fused.values()))
        kept = []
        for node in graph.node:
            if id(node) in fused:
                kept.append(fused[id(node)][0])
            elif id(node) not in removed:
                kept.append(node)
        del graph.node[:]
        graph.node.extend(kept)
        _drop_unused_initializers(graph)
    return len(fused)


def _layer_of_scope(scope: str, layer_names) -> str | None:
    if scope in layer_names:
        return scope
    stripped = re.sub(r"_\d+$", "", scope)
    return stripped if stripped in layer_names else None


def _single_input_output(graph, nodes, constants) -> tuple[str, str] | None:
    """(input, output) of the subgraph ``nodes`` if it reads one tensor and one of its tensors is read outside."""
    produced = {name for node in nodes for name in node.output}
    inside = {id(node) for node in nodes}
    inputs = {name for node in nodes for name in node.input if name not in produced and name not in constants}
    read_outside = {name for node in graph.node if id(node) not in inside for name in node.input} | {
        o.name for o in graph.output
    }
    outputs = produced & read_outside
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    return next(iter(inputs)), next(iter(outputs))


def _drop_unused_initializers(graph) -> None:
    """Constants only the removed nodes read (a pad's widths, a slice's bounds)."""
    used = {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)


def _max_pool_pads(pad, pool, initializers) -> list[int] | None:
    """The ``MaxPool`` ``pads`` equal to ``pad`` followed by ``pool``, or None where they would differ."""
    from onnx import helper, numpy_helper

    attributes = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
    pad_mode = {a.name: helper.get_attribute_value(a) for a in pad.attribute}.get("mode", b"constant")
    kernel = attributes.get("kernel_shape", [])
    if (
        pad_mode != b"constant"
        or len(kernel) != 2
        or any(attributes.get("pads", [0]))
        or attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID")
        or len(pad.input) < 3
        or pad.input[1] not in initializers
        or pad.input[2] not in initializers
    ):
        return None
    widths = numpy_helper.to_array(initializers[pad.input[1]]).astype(np.int64).reshape(2, -1)  # begins, ends per axis
    value = float(numpy_helper.to_array(initializers[pad.input[2]]))
    if widths.shape[1] != 4 or any(widths[:, :2].ravel()) or value > LOWEST_FLOAT32:
        return None
    spatial = widths[:, 2:]
    if (spatial < 0).any() or (spatial >= np.asarray(kernel)).any():
        return None
    return [int(w) for w in spatial.ravel()]  # ONNX order: begins then ends


def move_negative_end_pads_to_output_padding(graph) -> int:
    """Rewrite each ``ConvTranspose`` end pad of ``-p`` as ``output_padding`` ``p``; return how many nodes."""
    from onnx import helper

    rewritten = 0
    for node in graph.node:
        if node.op_type != "ConvTranspose":
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        pads = list(attributes.get("pads", []))
        spatial = len(pads) // 2
        if not any(p < 0 for p in pads[spatial:]) or any(p < 0 for p in pads[:spatial]):
            continue
        strides = attributes.get("strides", [1] * spatial)
        dilations = attributes.get("dilations", [1] * spatial)
        extra = list(attributes.get("output_padding", [0] * spatial))
        for axis in range(spatial):
            if pads[spatial + axis] < 0:
                extra[axis] -= pads[spatial + axis]
                pads[spatial + axis] = 0
        if any(e >= max(s, d) for e, s, d in zip(extra, strides, dilations)):  # ONNX's bound
            continue
        kept = [a for a in node.attribute if a.name not in ("pads", "output_padding")]
        del node.attribute[:]
        node.attribute.extend(
            [*kept, helper.make_attribute("pads", pads), helper.make_attribute("output_padding", extra)]
        )
        rewritten += 1
    return rewritten


def fold_bias_adds_into_convs(graph) -> int:
    """Make each ``BiasAdd`` of a 1-D bias after a bias-less ``Conv`` that convolution's bias; return how many."""
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}  # shapes only: no weight is copied
    producers = {name: node for node in graph.node for name in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    graph_outputs = {o.name for o in graph.output}
    folded = []
    for add in graph.node:
        if add.op_type != "Add" or not add.name.endswith("BiasAdd") or len(add.input) != 2:
            continue
        conv, bias_shape = producers.get(add.input[0]), shapes.get(add.input[1])
        if (
            conv is None
            or conv.op_type != "Conv"
            or len(conv.input) != 2
            or conv.input[1] not in shapes
            or readers.get(conv.output[0]) != 1
            or conv.output[0] in graph_outputs
            or bias_shape is None
            or bias_shape != (shapes[conv.input[1]][0],)
        ):
            continue
        conv.input.append(add.input[1])
        conv.output[0] = add.output[0]
        folded.append(add)
    for add in folded:
        graph.node.remove(add)
    return len(folded)

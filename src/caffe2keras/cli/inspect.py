"""``caffe2keras inspect``: a Caffe net's layers, shapes and parameters, and how each converts."""

from __future__ import annotations

from pathlib import Path

from caffe2keras.cli.common import (
    UsageError,
    add_net_parser,
    add_shape_options,
    parse_shape_args,
    refuse_overwriting_inputs,
)
from caffe2keras.outputs import atomic_output


def register(commands) -> None:
    parser = add_net_parser(
        commands,
        "inspect",
        help="show a Caffe net's layers, shapes, parameters and how each converts",
        description="A table of every layer of the net's TEST phase: its bottoms and tops, each top's "
        "shape, its parameter count, and the Keras layers it converts to or why it cannot. No Keras "
        "model is built. Exit status 1 when some layer cannot be converted.",
        weights="weights (.caffemodel or .caffemodel.h5): count and check their blobs",
        weights_optional=True,
    )
    parser.add_argument(
        "--graph",
        metavar="NET.svg",
        help="also draw the net as SVG: blobs and layers, in-place layers folded into the layer "
        "before them, unsupported layers in red",
    )
    add_shape_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.graph is not None and Path(args.graph).suffix != ".svg":
        raise UsageError(f"--graph writes an .svg file. Received: --graph {args.graph}")
    if args.graph is not None:
        refuse_overwriting_inputs(args.graph, (args.prototxt, args.weights))
    from caffe2keras.summary import summarize

    summary = summarize(
        args.prototxt, args.weights, input_shapes=parse_shape_args(args.input_shape), data_format=args.data_format
    )
    summary.print()
    if args.graph is not None:
        from caffe2keras.drawing import net_svg

        with atomic_output(args.graph, ".svg") as tmp:
            Path(tmp).write_text(net_svg(summary), encoding="utf-8")
        print(f"wrote {args.graph}")
    return 0 if summary.convertible else 1

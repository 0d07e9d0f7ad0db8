"""``caffe2keras export``: a ``.keras`` model to ONNX, a TensorFlow SavedModel or LiteRT."""

from __future__ import annotations

FORMATS = ("onnx", "tflite", "saved_model")


def register(commands) -> None:
    parser = commands.add_parser(
        "export",
        help="export a .keras model to ONNX, TensorFlow SavedModel or LiteRT (needs caffe2keras[export])",
    )
    parser.add_argument(
        "model", help="the .keras file (as `caffe2keras convert` writes it), or a Caffe .prototxt for ONNX"
    )
    parser.add_argument(
        "--weights",
        metavar="CAFFEMODEL",
        help="with a .prototxt: its weights, written straight to ONNX (no TensorFlow)",
    )
    parser.add_argument(
        "-o", "--output", required=True, help="OUT.onnx or OUT.tflite, or a directory with --format saved_model"
    )
    parser.add_argument("--format", choices=FORMATS, help="the output format (default: by the output's extension)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.model.endswith(".prototxt"):
        return _run_onnx(args)
    from caffe2keras.cli.common import refuse_overwriting_inputs
    from caffe2keras.export import export_format, export_model

    format = export_format(args.output, args.format)
    refuse_overwriting_inputs(args.output, (args.model,))
    export_model(args.model, args.output, format)
    if not args.quiet:
        print(f"wrote {args.output} ({format})")
    return 0


def _run_onnx(args) -> int:
    """A Caffe net straight to ONNX, as ``convert -o OUT.onnx`` writes it."""
    from caffe2keras.cli.common import UsageError, refuse_overwriting_inputs
    from caffe2keras.onnx import to_onnx

    if (args.format or "onnx") != "onnx" or not args.output.endswith(".onnx"):
        raise UsageError(
            "a Caffe .prototxt is exported to ONNX only (-o OUT.onnx); for SavedModel or LiteRT, convert it to "
            f".keras first. Received: -o {args.output}"
        )
    refuse_overwriting_inputs(args.output, (args.model, args.weights))
    written = to_onnx(args.model, args.weights, args.output)
    if not args.quiet:
        print(f"wrote {args.output}: {written}")
    return 0

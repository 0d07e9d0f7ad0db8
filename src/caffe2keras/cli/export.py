"""``caffe2keras export``: a ``.keras`` model to ONNX, a TensorFlow SavedModel or LiteRT."""

from __future__ import annotations

FORMATS = ("onnx", "tflite", "saved_model")


def register(commands) -> None:
    parser = commands.add_parser(
        "export",
        help="export a .keras model to ONNX, TensorFlow SavedModel or LiteRT (needs caffe2keras[export])",
    )
    parser.add_argument("model", help="the .keras file (as `caffe2keras convert` writes it)")
    parser.add_argument(
        "-o", "--output", required=True, help="OUT.onnx or OUT.tflite, or a directory with --format saved_model"
    )
    parser.add_argument("--format", choices=FORMATS, help="the output format (default: by the output's extension)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(run=run)


def run(args) -> int:
    from caffe2keras.cli.common import refuse_overwriting_inputs
    from caffe2keras.export import export_format, export_model

    format = export_format(args.output, args.format)
    refuse_overwriting_inputs(args.output, (args.model,))
    export_model(args.model, args.output, format)
    if not args.quiet:
        print(f"wrote {args.output} ({format})")
    return 0

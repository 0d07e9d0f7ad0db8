"""``caffe2keras convert``: a Caffe model to a ``.keras`` file."""

from __future__ import annotations

from caffe2keras.cli.common import (
    UsageError,
    add_net_parser,
    add_preprocessing_options,
    add_progress_options,
    add_shape_options,
    describe,
    parse_list_arg,
    parse_shape_args,
    preprocessing_options,
    refuse_overwriting_inputs,
    save_atomically,
    wants_progress,
)


def register(commands) -> None:
    parser = add_net_parser(
        commands,
        "convert",
        help="convert a Caffe model to a .keras file (or .onnx, .tflite)",
        description="Build the Keras model of the net's TEST phase, fill it with the caffemodel's weights "
        "and write it as a .keras file (or export it: -o model.onnx / model.tflite). Inputs the "
        "prototxt does not size take --input-shape (? for a free size); --preprocess or --mean/--scale "
        "build Caffe's preprocessing in, --labels carries the class names along.",
        weights="weights (.caffemodel or .caffemodel.h5); omit for the architecture only",
        weights_optional=True,
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="the file to write: .keras; .onnx (straight from Caffe, needs caffe2keras[onnx]); "
        ".tflite (needs caffe2keras[export])",
    )
    parser.add_argument(
        "--outputs", metavar="BLOB[,BLOB...]", help="blobs to output, in order (default: the net's outputs)"
    )
    add_shape_options(parser)
    add_preprocessing_options(parser)
    parser.add_argument("--labels", metavar="FILE", help="class labels, one per line, for the model to carry")
    parser.add_argument(
        "--allow-random-init",
        action="store_true",
        help="layers the weights file lacks may start from random prototxt fillers (constant ones always do)",
    )
    add_progress_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    refuse_overwriting_inputs(args.output, (args.prototxt, args.weights, args.labels, getattr(args, "mean", None)))
    if args.output.endswith(".onnx"):
        return _run_onnx(args)
    from caffe2keras.api import convert

    progress = wants_progress(args)
    model = convert(
        args.prototxt,
        args.weights,
        input_shapes=parse_shape_args(args.input_shape),
        outputs=parse_list_arg(args.outputs),
        data_format=args.data_format,
        progress=progress,
        preprocessing=preprocessing_options(args),
        labels=args.labels,
        allow_random=args.allow_random_init,
    )
    save_atomically(model, args.output, progress)
    if not args.quiet:
        print(f"wrote {args.output}: {describe(model)}")
    return 0


def _run_onnx(args) -> int:
    """Write the ONNX file straight from the Caffe graph (neither Keras nor TensorFlow is loaded)."""
    if preprocessing_options(args) is not None or args.labels:
        raise UsageError(
            "an .onnx file takes the net as it is: --preprocess, --mean, --scale, --input-order and --labels "
            f"apply to .keras models. Received: -o {args.output}"
        )
    from caffe2keras.onnx import to_onnx

    model = to_onnx(
        args.prototxt,
        args.weights,
        args.output,
        input_shapes=parse_shape_args(args.input_shape),
        outputs=parse_list_arg(args.outputs),
    )
    if not args.quiet:
        print(f"wrote {args.output}: {model}")
    return 0

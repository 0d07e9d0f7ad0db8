"""``caffe2keras verify``: compare every blob of a conversion with a reference run."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from caffe2keras.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    UsageError,
    add_net_parser,
    add_shape_options,
    parse_list_arg,
    parse_shape_args,
    refuse_overwriting_inputs,
)
from caffe2keras.outputs import atomic_output


def register(commands) -> None:
    parser = add_net_parser(
        commands,
        "verify",
        help="compare every blob of the converted model (or an .onnx file) with a reference run",
        description="Convert the net with every blob as an output, run it and a reference on the same "
        "input, and compare blob by blob in network order. Given an .onnx file instead of the prototxt "
        "and weights, run it in each --runtime and compare with --against (a .npz of blobs, or another "
        "runtime). Exit status: 0 every compared blob within tolerance, 1 one is not, 2 the comparison "
        "could not be made.",
        weights="weights (.caffemodel; .caffemodel.h5 except against OpenCV); none with an .onnx file",
        weights_optional=True,
    )
    parser.add_argument(
        "--against",
        default="opencv",
        metavar="opencv|caffe|BLOBS.npz",
        help="the reference: OpenCV 4.x's Caffe runtime (default), pycaffe, or a .npz of "
        "blobs by Caffe blob name in NCHW layout, whose input blobs are the inputs; for an .onnx "
        "file, a .npz or a runtime (onnxruntime, opencv, opencv-classic)",
    )
    parser.add_argument(
        "--runtime",
        default="onnxruntime",
        metavar="RUNTIME[,RUNTIME...]",
        help="for an .onnx file: the runtimes to check, each against --against (onnxruntime, opencv: the "
        "installed OpenCV's readNetFromONNX, opencv-classic: OpenCV 5's ENGINE_CLASSIC); default onnxruntime",
    )
    parser.add_argument(
        "--input",
        action="append",
        metavar="[BLOB=]FILE",
        help="an input: .npy in Caffe's NCHW layout, or an image (read with OpenCV, resized "
        "to the input's HxW, BGR, values 0-255, no mean); default: random normal (repeatable)",
    )
    parser.add_argument("--json", metavar="REPORT.json", help="also write the report as JSON")
    parser.add_argument(
        "--atol", type=non_negative_float, default=1e-4, metavar="A", help="absolute tolerance (default 1e-4)"
    )
    parser.add_argument(
        "--rtol",
        type=non_negative_float,
        default=1e-4,
        metavar="R",
        help="tolerance relative to max|ref| (default 1e-4): ok when max|y-ref| <= A + R*max|ref|",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    add_shape_options(parser)
    parser.set_defaults(run=run, failure_status=EXIT_USAGE)


def parse_input_args(values: Sequence[str] | None):
    """``["x.npy"]`` -> ``"x.npy"``; ``["data=x.npy", "im_info=y.npy"]`` -> a dict by blob."""
    if not values:
        return None
    named, unnamed = {}, []
    for value in values:
        blob, sep, path = value.partition("=")
        if sep and blob and path and not Path(value).exists():
            if blob in named:
                raise UsageError(f"--input names blob {blob!r} twice. Received: --input {value}")
            named[blob] = path
        else:
            unnamed.append(value)
    if unnamed and (named or len(unnamed) > 1):
        raise UsageError(
            "with several --input options, name the blob of each: --input BLOB=FILE. "
            f"Received: --input {' --input '.join(values)}"
        )
    return unnamed[0] if unnamed else named


def _input_paths(values: Sequence[str] | None) -> list[str]:
    return [value if Path(value).exists() else value.partition("=")[2] for value in values or ()]


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0. Received: {value!r}")
    return number


def run(args) -> int:
    if args.prototxt.endswith(".onnx"):
        return _run_onnx(args)
    if args.weights is None:
        raise UsageError(f"verify needs the net's weights. Received: {args.prototxt}")
    from rich.console import Console

    from caffe2keras.verification import verify

    if args.json:
        refuse_overwriting_inputs(args.json, (args.prototxt, args.weights, args.against, *_input_paths(args.input)))
        check_writable_location(args.json)
    console = Console(stderr=True)
    with console.status("verifying") as status:
        report = verify(
            args.prototxt,
            args.weights,
            against=args.against,
            inputs=parse_input_args(args.input),
            input_shapes=parse_shape_args(args.input_shape),
            atol=args.atol,
            rtol=args.rtol,
            data_format=args.data_format,
            seed=args.seed,
            on_step=lambda what: status.update(f"{what}…"),
        )
    report.print()
    if args.json:
        with atomic_output(args.json, ".json") as tmp:
            Path(tmp).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if not report.compared:
        print("caffe2keras: error: nothing was compared; check the reference's blob names.", file=sys.stderr)
        return EXIT_USAGE
    return 0 if report.ok else EXIT_ERROR


def _run_onnx(args) -> int:
    """Each runtime's outputs of the .onnx file against the reference (neither Keras nor a converter)."""
    import numpy as np

    from caffe2keras.verification.runtimes import verify_onnx

    if args.weights is not None:
        raise UsageError(f"an .onnx file holds its weights; give no weights file. Received: {args.weights}")
    given = parse_input_args(args.input)
    if given is not None and not isinstance(given, dict):
        raise UsageError(f"name the input blob of an .onnx file: --input BLOB=FILE.npy. Received: --input {given}")
    reports = verify_onnx(
        args.prototxt,
        against=args.against,
        runtimes=parse_list_arg(args.runtime),
        inputs={name: np.load(path) for name, path in (given or {}).items()},
        atol=args.atol,
        rtol=args.rtol,
        seed=args.seed,
    )
    for report in reports:
        report.print()
    if args.json:
        with atomic_output(args.json, ".json") as tmp:
            Path(tmp).write_text(json.dumps([report.to_dict() for report in reports], indent=2) + "\n")
    return 0 if all(report.ok for report in reports) else EXIT_ERROR


def check_writable_location(path: str) -> None:
    """Refuse an output that cannot be written before the long run, not after it; nothing is left behind.

    The nearest existing folder is probed with a nameless temporary file: what a permission bit
    does not tell (a read-only or virtual file system, running as root) shows up too.
    """
    from caffe2keras.errors import ModelFileError
    from caffe2keras.outputs import check_output_path

    check_output_path(path)
    target = Path(path)
    folder = target.parent
    while not folder.exists():  # the folders to come are made when the file is written
        folder = folder.parent
    if not folder.is_dir():
        raise ModelFileError(path, f"cannot write the file: {folder} is not a directory.")
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise ModelFileError(
            path, f"cannot write the file: cannot create files in {folder} ({exc.strerror})."
        ) from None

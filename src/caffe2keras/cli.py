"""The ``caffe2keras`` command line.

Errors are printed as one message, never a traceback (``--debug`` shows it),
the exit status is non-zero, and no partial output file is left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line argument that does not parse."""


def parse_shape_args(values: Sequence[str] | None) -> dict[str, tuple[int, ...]] | None:
    """``["data=1,3,224,224", ...]`` -> ``{"data": (1, 3, 224, 224)}``."""
    if not values:
        return None
    shapes = {}
    for value in values:
        name, sep, dims = value.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            shapes[name] = tuple(int(d) for d in dims.replace("x", ",").split(","))
        except ValueError:
            raise UsageError(
                f"--input-shape takes NAME=N,C,H,W (for example data=1,3,224,224). Received: {value!r}"
            ) from None
    return shapes


def parse_list_arg(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@contextlib.contextmanager
def atomic_output(path: str, suffix: str):
    """A temporary path beside ``path``, renamed to it when the block succeeds: no partial file.

    An OSError (an unwritable directory, a full disk...) is the user's to fix, not a bug: it
    becomes a :class:`ModelFileError` naming the path.
    """
    from caffe2keras.errors import ModelFileError

    target = Path(path)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{suffix}", dir=target.parent)
        os.close(fd)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; the output should not be
        os.replace(tmp, target)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.filename:
            reason += f": {exc.filename}"
        raise ModelFileError(path, f"cannot write the file: {reason}.") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_atomically(model, path: str, progress: bool = False) -> None:
    from caffe2keras.saving import save_model

    if Path(path).suffix != ".keras":
        raise UsageError(f"the output must be a .keras file. Received: -o {path}")
    with atomic_output(path, ".keras") as tmp:
        save_model(model, tmp, progress=progress)


def describe(model) -> str:
    def shapes(tensors):
        return ", ".join(f"{t.name.split(':')[0]} {tuple(t.shape)}" for t in tensors)

    params = model.count_params()
    return (
        f"{len(model.layers)} Keras layers, {params:,} parameters\n"
        f"inputs:  {shapes(model.inputs)}\n"
        f"outputs: {', '.join(f'{n} {tuple(t.shape)}' for n, t in zip(model.output_names, model.outputs))}"
    )


def command_convert(args) -> int:
    import caffe2keras

    progress = not args.quiet and (args.progress or sys.stderr.isatty())
    model = caffe2keras.convert(
        args.prototxt,
        args.weights,
        input_shapes=parse_shape_args(args.input_shape),
        outputs=parse_list_arg(args.outputs),
        data_format=args.data_format,
        progress=progress,
    )
    save_atomically(model, args.output, progress)
    if not args.quiet:
        print(f"wrote {args.output}: {describe(model)}")
    return 0


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


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0. Received: {value!r}")
    return number


def command_verify(args) -> int:
    from rich.console import Console

    import caffe2keras

    console = Console(stderr=True)
    with console.status("verifying") as status:
        report = caffe2keras.verify(
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


def add_shape_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-shape",
        action="append",
        metavar="NAME=N,C,H,W",
        help="shape of an input blob the prototxt does not fix (repeatable)",
    )
    parser.add_argument(
        "--data-format",
        choices=("channels_last", "channels_first"),
        default="channels_last",
        help="layout of the Keras model's tensors (default channels_last)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caffe2keras",
        description="Convert Caffe models (prototxt + caffemodel) to Keras 3 with Caffe's exact numbers.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="convert a Caffe model to a .keras file")
    convert.add_argument("prototxt", help="net definition (.prototxt)")
    convert.add_argument(
        "weights", nargs="?", help="weights (.caffemodel or .caffemodel.h5); omit for the architecture only"
    )
    convert.add_argument("-o", "--output", required=True, help="the .keras file to write")
    convert.add_argument(
        "--outputs", metavar="BLOB[,BLOB...]", help="blobs to output, in order (default: the net's outputs)"
    )
    add_shape_options(convert)
    shown = convert.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress", action="store_true", help="show progress bars on stderr (default: when stderr is a terminal)"
    )
    shown.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    convert.set_defaults(run=command_convert)

    verify = commands.add_parser(
        "verify",
        help="compare every blob of the converted model with a reference run",
        description="Convert the net with every blob as an output, run it and a reference on the same "
        "input, and compare blob by blob in network order. Exit status: 0 every compared blob within "
        "tolerance, 1 one is not, 2 the comparison could not be made.",
    )
    verify.add_argument("prototxt", help="net definition (.prototxt)")
    verify.add_argument("weights", help="weights (.caffemodel; .caffemodel.h5 except against OpenCV)")
    verify.add_argument(
        "--against",
        default="opencv",
        metavar="opencv|caffe|BLOBS.npz",
        help="the reference: OpenCV 4.x's Caffe runtime (default), pycaffe, or a .npz of "
        "blobs by Caffe blob name in NCHW layout, whose input blobs are the inputs",
    )
    verify.add_argument(
        "--input",
        action="append",
        metavar="[BLOB=]FILE",
        help="an input: .npy in Caffe's NCHW layout, or an image (read with OpenCV, resized "
        "to the input's HxW, BGR, values 0-255, no mean); default: random normal (repeatable)",
    )
    verify.add_argument("--json", metavar="REPORT.json", help="also write the report as JSON")
    verify.add_argument(
        "--atol", type=non_negative_float, default=1e-4, metavar="A", help="absolute tolerance (default 1e-4)"
    )
    verify.add_argument(
        "--rtol",
        type=non_negative_float,
        default=1e-4,
        metavar="R",
        help="tolerance relative to max|ref| (default 1e-4): ok when max|y-ref| <= A + R*max|ref|",
    )
    verify.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    add_shape_options(verify)
    verify.set_defaults(run=command_verify, failure_status=EXIT_USAGE)
    return parser


@contextlib.contextmanager
def conversion_warnings_as_lines():
    """Print each ConversionWarning as one ``caffe2keras: warning:`` line; other warnings as usual."""
    from caffe2keras.errors import ConversionWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ConversionWarning):
            print(f"caffe2keras: warning: {message}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from caffe2keras.errors import Caffe2KerasError

    # verify keeps exit status 1 for "a blob diverged"; any failure to compare is 2.
    failure_status = getattr(args, "failure_status", EXIT_ERROR)
    try:
        with conversion_warnings_as_lines():
            return args.run(args)
    except UsageError as exc:
        print(f"caffe2keras: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Caffe2KerasError as exc:
        if args.debug:
            raise
        print(f"caffe2keras: error: {exc}", file=sys.stderr)
        return failure_status
    except KeyboardInterrupt:
        print("caffe2keras: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still no traceback unless asked for
        if args.debug:
            raise
        print(
            f"caffe2keras: internal error: {type(exc).__name__}: {exc}\n"
            "Run again with --debug for the traceback, and please report it.",
            file=sys.stderr,
        )
        return failure_status


def run() -> None:
    """The console script: :func:`main`, then exit without tearing the interpreter down.

    Everything is written and closed by then; unloading Keras, JAX and their
    thousands of objects would take about half a second more.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()

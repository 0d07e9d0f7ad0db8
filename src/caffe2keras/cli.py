"""The ``caffe2keras`` command line.

Errors are printed as one message, never a traceback (``--debug`` shows it),
the exit status is non-zero, and no partial output file is left behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
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


def save_atomically(model, path: str) -> None:
    """Save to a temporary file beside ``path``, then rename: no partial file on failure."""
    from caffe2keras.errors import ModelFileError

    target = Path(path)
    if target.suffix != ".keras":
        raise UsageError(f"the output must be a .keras file. Received: -o {path}")
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".partial.keras", dir=target.parent)
        os.close(fd)
        model.save(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; the output should not be
        os.replace(tmp, target)
    except OSError as exc:  # an unwritable directory, a full disk...: the user's to fix, not a bug
        reason = exc.strerror or str(exc)
        if exc.filename:
            reason += f": {exc.filename}"
        raise ModelFileError(path, f"cannot write the model: {reason}.") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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

    model = caffe2keras.convert(
        args.prototxt,
        args.weights,
        input_shapes=parse_shape_args(args.input_shape),
        outputs=parse_list_arg(args.outputs),
        data_format=args.data_format,
    )
    save_atomically(model, args.output)
    print(f"wrote {args.output}: {describe(model)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caffe2keras",
        description="Convert Caffe models (prototxt + caffemodel) to Keras 3 with Caffe's exact numbers.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="convert a Caffe model to a .keras file")
    convert.add_argument("prototxt", help="net definition (.prototxt)")
    convert.add_argument("weights", nargs="?", help="weights (.caffemodel or .caffemodel.h5); omit for the architecture only")
    convert.add_argument("-o", "--output", required=True, help="the .keras file to write")
    convert.add_argument("--input-shape", action="append", metavar="NAME=N,C,H,W",
                         help="shape of an input blob the prototxt does not fix (repeatable)")
    convert.add_argument("--outputs", metavar="BLOB[,BLOB...]", help="blobs to output, in order (default: the net's outputs)")
    convert.add_argument("--data-format", choices=("channels_last", "channels_first"), default="channels_last")
    convert.set_defaults(run=command_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from caffe2keras.errors import Caffe2KerasError

    try:
        return args.run(args)
    except UsageError as exc:
        print(f"caffe2keras: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Caffe2KerasError as exc:
        if args.debug:
            raise
        print(f"caffe2keras: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
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
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

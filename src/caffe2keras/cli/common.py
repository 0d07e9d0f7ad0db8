"""What every command shares: usage errors, argument parsers, atomic outputs.

Nothing here imports Keras or a backend: ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from caffe2keras.outputs import atomic_output, replaced_input

EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line argument that does not parse."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that every cleanup (``finally``) runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def termination_as_interrupt():
    """While the block runs, SIGTERM and SIGHUP raise :class:`Terminated`, as SIGINT raises
    KeyboardInterrupt: a partial output is removed whichever ends the command. A signal the
    process ignores stays ignored: under ``nohup`` a hang-up must not end the conversion."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set from the main thread
        return

    def interrupt(signum, frame):
        raise Terminated(signum)

    previous = {
        number: signal.signal(number, interrupt)
        for number in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(number) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def refuse_overwriting_inputs(output: str, inputs: Sequence[str | None]) -> None:
    """A UsageError when ``output`` names one of ``inputs`` (by path or as the same file)."""
    given = replaced_input(output, inputs)
    if given is not None:
        raise UsageError(f"the output would overwrite the input {given}; choose another path. Received: -o {output}")


def parse_shape_args(values: Sequence[str] | None) -> dict[str, tuple[int | None, ...]] | None:
    """``["data=1,3,224,224", ...]`` -> ``{"data": (1, 3, 224, 224)}``; ``?`` is a free size (None)."""
    if not values:
        return None
    shapes = {}
    for value in values:
        name, sep, dims = value.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            shape = tuple(None if d.strip() == "?" else int(d) for d in dims.replace("x", ",").split(","))
        except ValueError:
            raise UsageError(
                f"--input-shape takes NAME=N,C,H,W (for example data=1,3,224,224, or data=1,3,?,? for any "
                f"height and width). Received: {value!r}"
            ) from None
        if name in shapes:
            raise UsageError(f"--input-shape gives blob {name!r} twice; give each input once. Received: {value!r}")
        shapes[name] = shape
    return shapes


def parse_list_arg(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def add_input_shape_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-shape",
        action="append",
        metavar="NAME=N,C,H,W",
        help="shape of an input blob the prototxt does not fix, once per input; ? is a free size "
        "(data=1,3,?,? for any height and width)",
    )


def add_net_parser(commands, name: str, help: str, description: str, weights: str, weights_optional: bool = False):
    """A command's parser whose first arguments are the net's files: the prototxt, then the weights."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("prototxt", help="net definition (.prototxt)")
    parser.add_argument("weights", nargs="?" if weights_optional else None, help=weights)
    return parser


def add_shape_options(parser: argparse.ArgumentParser) -> None:
    add_input_shape_option(parser)
    parser.add_argument(
        "--data-format",
        choices=("channels_last", "channels_first"),
        default="channels_last",
        help="layout of the Keras model's tensors (default channels_last)",
    )


def add_preprocessing_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Caffe's preprocessing",
        "Build what Caffe's data layer did to images into the model, which then takes RGB images of "
        "0-255. Each option defaults to the prototxt's transform_param; giving one implies --preprocess.",
    )
    group.add_argument(
        "--preprocess", action="store_true", help="put Caffe's preprocessing (channel order, mean, scale) in front"
    )
    group.add_argument(
        "--mean",
        metavar="FILE.binaryproto|V1,V2,V3",
        help="mean image file, or one value per channel in the net's channel order (B,G,R for a BGR net)",
    )
    group.add_argument("--scale", type=float, metavar="S", help="multiplies the pixels after the mean is subtracted")
    group.add_argument(
        "--channel-order",
        choices=("bgr", "rgb"),
        help="the channel order the net was trained on: bgr (default; Caffe's image tools, the BVLC/ImageNet "
        "nets) or rgb (CIFAR-10, MTCNN). The model takes RGB images either way",
    )
    # An earlier version's option, with the opposite meaning: refused with its translation.
    group.add_argument("--input-order", help=argparse.SUPPRESS)


def preprocessing_options(args) -> dict | None:
    """The ``preprocessing=`` argument of ``convert`` from the command line, or None."""
    if args.input_order is not None:
        old = {"rgb": "bgr", "bgr": "rgb"}.get(args.input_order, "bgr|rgb")
        raise UsageError(
            "--input-order is replaced by --channel-order, the order the net was trained on; the model "
            f"takes RGB images either way. Use --channel-order {old}. Received: --input-order={args.input_order}"
        )
    if not (args.preprocess or args.mean is not None or args.scale is not None or args.channel_order):
        return None
    return {"mean": parse_mean_arg(args.mean), "scale": args.scale, "channel_order": args.channel_order}


def parse_mean_arg(value: str | None):
    """``"104,117,123"`` -> values; anything else (or an existing file of that name) is a file."""
    if value is None or Path(value).exists():
        return value
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        return value


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress", action="store_true", help="show progress bars on stderr (default: when stderr is a terminal)"
    )
    shown.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def wants_progress(args) -> bool:
    return not args.quiet and (args.progress or sys.stderr.isatty())


EXPORT_SUFFIXES = (".onnx", ".tflite")


def save_atomically(model, path: str, progress: bool = False) -> None:
    """Write ``model`` as ``.keras``, or exported to the format a ``.onnx`` or ``.tflite`` path names."""
    from caffe2keras.saving import save_model

    suffix = Path(path).suffix
    if suffix in EXPORT_SUFFIXES:
        from caffe2keras.export import export_model

        export_model(model, path)
        return
    if suffix != ".keras":
        raise UsageError(f"the output must be a .keras, .onnx or .tflite file. Received: -o {path}")
    with atomic_output(path, ".keras") as tmp:  # the command's own temporary file, whatever writes it
        save_model(model, tmp, progress=progress)


def describe(model) -> str:
    """The summary ``convert`` prints: sizes, inputs, outputs, and what loading the file needs."""
    from caffe2keras.layers.preprocessing import CaffePreprocessing

    def shapes(tensors):
        return ", ".join(f"{t.name.split(':')[0]} {tuple(t.shape)}" for t in tensors)

    # An embedded mean is input data, not a parameter of the net.
    params = model.count_params() - sum(
        layer.count_params() for layer in model.layers if isinstance(layer, CaffePreprocessing)
    )
    custom = custom_layers(model)
    loading = (
        f"needs caffe2keras to load (import caffe2keras): {', '.join(custom)}"
        if custom
        else "plain Keras: loads with Keras alone"
    )
    return (
        f"{len(model.layers)} Keras layers, {params:,} parameters\n"
        f"inputs:  {shapes(model.inputs)}\n"
        f"outputs: {', '.join(f'{n} {tuple(t.shape)}' for n, t in zip(model.output_names, model.outputs))}\n"
        f"loading: {loading}" + _training_lines(model)
    )


def _training_lines(model) -> str:
    """What the net's ``param`` blocks left in the model: frozen layers and multipliers."""
    from caffe2keras.layers.preprocessing import CaffePreprocessing
    from caffe2keras.saving import parameter_multipliers

    frozen = [
        layer.name
        for layer in model.layers
        if layer.weights and not layer.trainable and not isinstance(layer, CaffePreprocessing)
    ]
    by_pair: dict[tuple[float, float], list[str]] = {}
    for path, pair in parameter_multipliers(model).items():
        by_pair.setdefault(pair, []).append(path)
    lines = ""
    if frozen:
        lines += f"\nfrozen (lr_mult 0, trainable=False): {some_of(frozen, 'layers')}"
    if by_pair:
        listed = "; ".join(
            f"{lr:g}/{decay:g} on {some_of(paths, 'variables')}" for (lr, decay), paths in by_pair.items()
        )
        lines += f"\nlr_mult/decay_mult (for CaffeSolver, caffe2keras.parameter_multipliers): {listed}"
    return lines


# A summary line names this many, then counts the rest: a Zoo net's biases at lr_mult 2 number dozens.
NAMED_IN_A_LINE = 4


def some_of(names: list[str], what: str) -> str:
    """``names`` joined, or, past ``NAMED_IN_A_LINE``, their count and the first few."""
    if len(names) <= NAMED_IN_A_LINE:
        return ", ".join(names)
    return f"{len(names)} {what} ({', '.join(names[: NAMED_IN_A_LINE - 1])}, ...)"


def custom_layers(model) -> list[str]:
    """caffe2keras' registered classes (layers, initializers) that the saved model's config names."""
    import json
    import re

    import keras

    from caffe2keras import framework_internals

    with framework_internals.tensorflow_left_unimported():  # the summary of a JAX model needs no TensorFlow
        config = json.dumps(keras.saving.serialize_keras_object(model))
    return sorted(set(re.findall(r'"caffe2keras>(\w+)"', config)))


@contextlib.contextmanager
def conversion_warnings_as_lines():
    """Print each ConversionWarning as one ``caffe2keras: warning:`` line; other warnings as usual."""
    from caffe2keras.console import printable
    from caffe2keras.errors import ConversionWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ConversionWarning):
            print(f"caffe2keras: warning: {printable(message)}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original

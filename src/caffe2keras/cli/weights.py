"""``caffe2keras weights``: Caffe weights into an existing Keras architecture, written as a Keras file."""

from __future__ import annotations

from pathlib import Path

from caffe2keras.cli.common import (
    UsageError,
    add_input_shape_option,
    add_net_parser,
    parse_shape_args,
    refuse_overwriting_inputs,
    save_atomically,
)
from caffe2keras.outputs import atomic_output

APPLICATIONS = "keras.applications."


def register(commands) -> None:
    parser = add_net_parser(
        commands,
        "weights",
        help="load Caffe weights into a Keras architecture and write its weights file",
        description="Pair the Caffe layers with the layers of a Keras model (by --map, then by name, "
        "then by the order and shapes of their weights), fill it, and write a .weights.h5 file "
        "(model.load_weights reads it) or a whole .keras model. All or nothing: every unpaired "
        "layer and shape mismatch is reported, and nothing is written.",
        weights="weights (.caffemodel or .caffemodel.h5)",
    )
    parser.add_argument(
        "--into",
        required=True,
        metavar="ARCH",
        help="the Keras architecture: a .keras file, or keras.applications.NAME (built with weights=None)",
    )
    parser.add_argument(
        "--into-arg",
        action="append",
        metavar="NAME=VALUE",
        help="a keyword argument of the keras.applications constructor (repeatable), VALUE a Python literal: "
        "--into-arg include_top=False --into-arg input_shape=(224,224,3)",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="NAME.weights.h5 (the weights; BatchNormalization epsilons that differ from Caffe's are "
        "made up for in the moving variance) or NAME.keras (the whole model, with Caffe's epsilons)",
    )
    parser.add_argument(
        "--map",
        action="append",
        metavar="CAFFE_LAYER=KERAS_LAYER",
        help="pair two layers yourself (repeatable); an empty KERAS_LAYER leaves the Caffe layer out",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    add_input_shape_option(parser)
    parser.set_defaults(run=run)


def parse_mapping(values) -> dict[str, str | None]:
    mapping: dict[str, str | None] = {}
    for value in values or ():
        caffe_layer, sep, keras_layer = value.partition("=")
        if not sep or not caffe_layer:
            raise UsageError(f"--map takes CAFFE_LAYER=KERAS_LAYER (for example fc8=predictions). Received: {value!r}")
        mapping[caffe_layer] = keras_layer or None
    return mapping


def parse_constructor_args(values) -> dict:
    """``--into-arg NAME=VALUE`` pairs, each VALUE a Python literal (read, never run: ast.literal_eval)."""
    import ast

    kwargs = {}
    for value in values or ():
        name, sep, literal = value.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UsageError(f"--into-arg takes NAME=VALUE (for example include_top=False). Received: {value!r}")
        if name == "weights":
            raise UsageError(
                f"the architecture is built with weights=None: the weights are Caffe's. Received: {value!r}"
            )
        try:
            kwargs[name] = ast.literal_eval(literal.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise UsageError(
                f"--into-arg {name}'s value must be a Python literal (False, 1000, (224, 224, 3), 'avg', None). "
                f"Received: {value!r}"
            ) from None
    return kwargs


def load_architecture(spec: str, constructor_args: dict | None = None):
    """A Keras model from a ``.keras`` file, or ``keras.applications.NAME(**constructor_args)``."""
    import keras

    if spec.startswith(APPLICATIONS):
        name = spec[len(APPLICATIONS) :]
        # Only the model builders: a name such as __class__ is an attribute, not a model.
        known = [n for n in dir(keras.applications) if n[:1].isupper() and callable(getattr(keras.applications, n))]
        if name not in known:
            raise UsageError(
                f"keras.applications has no model {name!r}; it has {', '.join(known)}. Received: --into {spec}"
            )
        try:
            return getattr(keras.applications, name)(weights=None, **(constructor_args or {}))
        except (TypeError, ValueError) as exc:
            given = ", ".join(f"{k}={v!r}" for k, v in (constructor_args or {}).items())
            raise UsageError(f"keras.applications.{name} refuses its arguments: {exc} Received: {given}") from None
    if constructor_args:
        raise UsageError(f"--into-arg applies to keras.applications.NAME, not a .keras file. Received: --into {spec}")
    if Path(spec).suffix != ".keras":
        raise UsageError(f"--into takes a .keras file or keras.applications.NAME. Received: --into {spec}")
    import caffe2keras.layers  # noqa: F401  (registers the custom layers a converted model uses)
    from caffe2keras.errors import ModelFileError
    from caffe2keras.keras_files import check_keras_file

    check_keras_file(spec)
    try:
        return keras.saving.load_model(spec, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many kinds for unreadable archives
        raise ModelFileError(spec, f"Keras cannot load this model: {exc}") from exc


def run(args) -> int:
    output = Path(args.output)
    whole_model = output.suffix == ".keras"
    if not (whole_model or output.name.endswith(".weights.h5")):
        raise UsageError(f"the output must be a .weights.h5 or .keras file. Received: -o {args.output}")
    refuse_overwriting_inputs(args.output, (args.prototxt, args.weights, args.into))
    mapping = parse_mapping(args.map)
    model = load_architecture(args.into, parse_constructor_args(args.into_arg))
    from caffe2keras.errors import WeightsPairingError
    from caffe2keras.transplant import load_caffe_weights

    try:
        report = load_caffe_weights(
            model,
            args.prototxt,
            args.weights,
            mapping=mapping,
            epsilon="layer" if whole_model else "variance",
            input_shapes=parse_shape_args(args.input_shape),
        )
    except WeightsPairingError as exc:
        raise exc.for_cli() from None
    if whole_model:
        save_atomically(model, args.output)
    else:
        with atomic_output(args.output, ".weights.h5") as tmp:
            model.save_weights(tmp)
    if not args.quiet:
        report.print()
        print(f"wrote {args.output}")
    return 0

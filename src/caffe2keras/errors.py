"""The one exception hierarchy of caffe2keras.

Every error a user can cause derives from :class:`Caffe2KerasError`. Errors
about one layer name the layer, its Caffe type, the offending field and its
value, and end, Keras-style, in ``Received: field=value``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class Caffe2KerasError(Exception):
    """Base class of every error caffe2keras raises on purpose."""

    #: the file the error is about, once known (see :func:`about_file`)
    path: str | None = None


class ArgumentError(Caffe2KerasError, TypeError, ValueError):
    """An argument of the API of the wrong type or out of range (also a TypeError and a ValueError)."""


class SchemaError(Caffe2KerasError):
    """The Caffe schema (or a plugin's addition to it) does not compile."""


class RegistryError(Caffe2KerasError):
    """A converter registration clashes with an existing one, or could never run."""


class ModelFileError(Caffe2KerasError):
    """A model file is missing, truncated, corrupt or not in a Caffe format, or cannot be written."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NetError(Caffe2KerasError):
    """The net as a whole is inconsistent (unknown blobs, missing inputs...)."""


class InputShapeError(NetError):
    """An input blob has no known shape, or a given shape does not fit."""


def _received(field: str | None, value) -> str:
    return "" if field is None else f" Received: {field}={value!r}"


class LayerError(Caffe2KerasError):
    """A problem with one layer: its parameters, weights or inputs."""

    def __init__(self, layer: str, layer_type: str, message: str, field: str | None = None, value=None):
        self.layer = layer
        self.layer_type = layer_type
        self.field = field
        self.value = value
        self.detail = message
        sentence = message if message.endswith((".", "?", "!")) else message + "."
        super().__init__(f"Layer {layer!r} ({layer_type}): {sentence}{_received(field, value)}")


class UnsupportedParameterError(LayerError):
    """A parameter value that caffe2keras cannot convert exactly."""


class WeightsError(LayerError):
    """Weights that do not match the layer (count or shape)."""


class ShapeError(LayerError):
    """Input shapes that the layer cannot take, as Caffe would also refuse."""


class PreprocessingError(Caffe2KerasError):
    """Preprocessing or labels that do not fit the net: a mean of the wrong shape, an unknown input..."""


class WeightsPairingError(Caffe2KerasError):
    """Caffe weights that do not all pair with the layers of a Keras model; no weight was changed."""

    PYTHON_HINT = "Pair layers yourself with mapping={caffe_layer: keras_layer} (None leaves a Caffe layer out)."
    CLI_HINT = "Pair layers yourself with --map CAFFE=KERAS (CAFFE= leaves a Caffe layer out)."
    # Past this many problems the nets hardly pair at all: a count and the first few say it.
    SHOWN = 10

    def __init__(
        self,
        target: str,
        unpaired_caffe: list[str],
        unpaired_keras: list[str],
        mismatches: list[str],
        *,
        caffe_layers: int,
        paired: int,
        hint: str = PYTHON_HINT,
    ):
        self.target, self.caffe_layers, self.paired = target, caffe_layers, paired
        self.unpaired_caffe, self.unpaired_keras, self.mismatches = unpaired_caffe, unpaired_keras, mismatches
        problems = [
            *mismatches,
            *(f"Caffe layer {text}: no Keras layer pairs with it" for text in unpaired_caffe),
            *(f"Keras layer {text}: no Caffe layer pairs with it" for text in unpaired_keras),
        ]
        heading = f"{len(problems)} problem(s)"
        if len(problems) > self.SHOWN:
            heading = f"{caffe_layers} weighted Caffe layers, {paired} paired; the first {self.SHOWN} of {heading}"
            problems = problems[: self.SHOWN]
        super().__init__(
            f"cannot load the Caffe weights into {target}; no weight was changed. {heading}:\n  "
            + "\n  ".join(problems)
            + f"\n{hint} "
            f"Received: unpaired_caffe={len(unpaired_caffe)}, unpaired_keras={len(unpaired_keras)}, "
            f"mismatches={len(mismatches)}"
        )

    def for_cli(self) -> WeightsPairingError:
        """The same error with its hint in command-line terms (``--map``, not ``mapping=``)."""
        return WeightsPairingError(
            self.target,
            self.unpaired_caffe,
            self.unpaired_keras,
            self.mismatches,
            caffe_layers=self.caffe_layers,
            paired=self.paired,
            hint=self.CLI_HINT,
        )


class VerifyError(Caffe2KerasError):
    """A verification that cannot be set up: a reference that cannot run, inputs that do not fit."""


class ExportError(Caffe2KerasError):
    """A model that cannot be exported: a missing ``caffe2keras[export]`` extra, or a layer the format cannot express."""


class ConversionWarning(UserWarning):
    """The conversion is exact at inference, but something behaves differently in training."""


class UnsupportedLayersError(Caffe2KerasError):
    """Layer types with no converter, all listed together before anything is built."""

    PLUGIN_HINT = (
        "Register a converter for a custom type with caffe2keras.register_converter() "
        "(see the docs, docs/guide/custom-layers.md)."
    )

    def __init__(self, unsupported: Iterable[tuple[str, int, str, str]]):
        # (type, count, first layer name, reason or "")
        self.unsupported = list(unsupported)
        lines = []
        for layer_type, count, first, reason in self.unsupported:
            times = "1 layer" if count == 1 else f"{count} layers"
            suffix = f" — {reason}" if reason else ""
            lines.append(f"  {layer_type}: {times}, first {first!r}{suffix}")
        types = ", ".join(t for t, *_ in self.unsupported)
        super().__init__(
            f"{len(self.unsupported)} unsupported layer type(s) in the net:\n"
            + "\n".join(lines)
            + f"\n{self.PLUGIN_HINT} Received: types={types!r}"
        )


class ZooError(Caffe2KerasError):
    """A Model Zoo net that is not in the catalog, or a catalog out of schema."""


class UnverifiedNetError(ZooError):
    """A net with no published hash for a file, downloaded without ``allow_unverified``."""


class DownloadError(ZooError):
    """A file that could not be fetched: HTTP error, dropped connection, no local copy offline."""


class HashMismatchError(DownloadError):
    """A fetched file whose hash is not the catalog's; it was not kept."""


class CacheError(ZooError):
    """The download directory cannot be written: read-only, full disk, no permission."""


class SolverError(Caffe2KerasError):
    """A solver (``solver.prototxt``) field that caffe2keras cannot train with, or that Caffe refuses."""

    def __init__(self, path, message: str, field: str, value):
        self.path, self.field, self.value = str(path), field, value
        super().__init__(f"{self.path}: {message} Received: {field}={value!r}")


@contextmanager
def about_file(
    path, kinds: tuple[type[Caffe2KerasError], ...] = (NetError, LayerError, UnsupportedLayersError)
) -> Iterator[None]:
    """Errors of ``kinds`` raised inside start with the file they are about, unless one already names its file.

    A layer's error is found far from the file it came from (the graph, the plan, the weights' pairing);
    the entry point that opened the file says which one, so the message names it as the others do.
    """
    try:
        yield
    except kinds as exc:
        if exc.path is None and path is not None:
            exc.path = str(path)
            exc.args = (f"{exc.path}: {exc.args[0]}", *exc.args[1:])
        raise

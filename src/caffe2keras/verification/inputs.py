"""The inputs both sides run on: arrays, images, or random draws at the net's input shapes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from caffe2keras.caffe import read_net
from caffe2keras.errors import InputShapeError, ModelFileError, VerifyError, about_file
from caffe2keras.graph import BlobRef, Graph, Shape, build_graph
from caffe2keras.image_files import decode_image
from caffe2keras.numeric import require_real
from caffe2keras.numpy_files import read_npy
from caffe2keras.verification.references import Reference
from caffe2keras.verification.report import InputInfo, name_list

PathLike = str | os.PathLike
InputSpec = np.ndarray | PathLike
Inputs = InputSpec | Mapping[str, InputSpec] | None


def read_input(spec: InputSpec, shape: Shape | None, blob: str) -> tuple[np.ndarray, str]:
    """One input array in Caffe's NCHW layout, and a description of where it came from.

    * an array: used as is (``float32``);
    * a ``.npy`` file: an NCHW array (a missing batch axis is added);
    * any other file: an image read with OpenCV (``IMREAD_COLOR``, or ``IMREAD_GRAYSCALE`` for a
      1-channel input), resized to the input's H×W with bilinear interpolation
      (``cv2.INTER_LINEAR``), kept in BGR channel order with raw 0–255 values — no mean, no
      scaling, as ``convert`` adds no preprocessing — and transposed HWC → CHW, batch 1.
    """
    if isinstance(spec, np.ndarray):
        array = require_real(spec, blob, VerifyError, f"input {blob!r}").astype(np.float32, copy=False)
        return _with_rank(array, shape, blob, "array"), "array"
    path = Path(spec)
    if not path.is_file():
        raise VerifyError(f"input file {str(path)!r} for blob {blob!r} does not exist. Received: input={str(path)!r}")
    if path.suffix == ".npy":
        try:
            array = read_npy(path)
        except ModelFileError as exc:
            raise VerifyError(
                f"cannot read input {str(path)!r} as a .npy array: {exc.reason} Received: input={str(path)!r}"
            ) from None
        array = require_real(array, blob, VerifyError, f"input {str(path)!r} for blob {blob!r}").astype(np.float32)
        return _with_rank(array, shape, blob, str(path)), str(path)
    return _read_image(path, shape, blob)


def _with_rank(array: np.ndarray, shape: Shape | None, blob: str, origin: str) -> np.ndarray:
    if shape is not None and array.ndim == len(shape) - 1:
        array = array[None]
    if shape is not None and array.ndim != len(shape):
        raise InputShapeError(
            f"input {origin} for blob {blob!r} has shape {array.shape}, the net's input is "
            f"{len(shape)}-D {tuple(shape)} (Caffe's N,C,H,W layout). Received: {blob}={array.shape}"
        )
    return array


def _read_image(path: Path, shape: Shape | None, blob: str) -> tuple[np.ndarray, str]:
    try:
        import cv2
    except ImportError:
        raise VerifyError(
            f"reading the image {str(path)!r} needs OpenCV: pip install 'opencv-python-headless<5'. "
            f"Received: input={str(path)!r}"
        ) from None
    if shape is None or len(shape) != 4 or shape[1] not in (1, 3):
        raise InputShapeError(
            f"an image input needs a 4-D input blob with 1 or 3 channels and a known shape; blob {blob!r} "
            f"has shape {shape} (give one with --input-shape {blob}=1,3,H,W). Received: input={str(path)!r}"
        )
    channels, height, width = shape[1:]
    image = decode_image(path, cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR)
    # A free size (None) takes the image's own.
    height, width = (own if wanted is None else wanted for wanted, own in zip((height, width), image.shape[:2]))
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    image = image[:, :, None] if image.ndim == 2 else image
    order = "gray" if channels == 1 else "BGR"
    source = f"image {path} ({order}, resized to {height}x{width} bilinear, values 0-255, HWC->CHW)"
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None]), source


def _named_inputs(inputs: Inputs, names: Sequence[str]) -> dict[str, InputSpec]:
    if inputs is None:
        return {}
    if isinstance(inputs, Mapping):
        unknown = [n for n in inputs if n not in names]
        if unknown:
            raise InputShapeError(
                f"{name_list(unknown)} {'is not an input' if len(unknown) == 1 else 'are not inputs'} of the net; "
                f"its inputs are {name_list(list(names))}. Received: inputs={name_list(list(inputs))}"
            )
        return dict(inputs)
    if len(names) != 1:
        raise InputShapeError(
            f"the net has {len(names)} inputs ({name_list(list(names))}); name the blob each input is for "
            "(inputs={'blob': ...}, CLI: --input BLOB=FILE). Received: one unnamed input"
        )
    return {names[0]: inputs}


def _dictated_input(graph: Graph, ref: BlobRef, dictated: Mapping[str, np.ndarray], reference: Reference):
    """An input taken from a blob file, which must hold the value the net started from."""
    name = ref.name
    if name not in dictated:
        raise VerifyError(
            f"the reference blobs ({reference.description}) lack the net's input blob {name!r}, which they "
            f"were computed from; add it, or give the input (--input {name}=FILE). Received: input={name!r}"
        )
    if graph.final[name] != ref:
        rewriter = graph.producers[graph.final[name]]
        raise VerifyError(
            f"input blob {name!r} is rewritten in place by layer {rewriter.name!r} ({rewriter.type}), so the "
            f"reference blobs hold its final value, not the input; give the input (--input {name}=FILE). "
            f"Received: input={name!r}"
        )
    return require_real(dictated[name], name, VerifyError, f"the reference's input blob {name!r}").astype(np.float32)


def prepare_inputs(
    prototxt: PathLike,
    inputs: Inputs,
    reference: Reference,
    input_shapes: Mapping[str, Sequence[int]] | None,
    seed: int,
) -> tuple[dict[str, np.ndarray], list[InputInfo]]:
    """Every input blob's array (Caffe layout), in the net's input order."""
    with about_file(prototxt):
        declared = build_graph(read_net(prototxt), input_shapes, require_input_shapes=False)
    names = [ref.name for ref in declared.inputs]
    specs = _named_inputs(inputs, names)
    dictated = reference.inputs(names)
    rng = np.random.default_rng(seed)
    arrays, infos = {}, []
    for ref in declared.inputs:
        name, shape = ref.name, declared.shapes.get(ref)
        if name in specs:
            array, source = read_input(specs[name], shape, name)
        elif dictated is not None:
            array, source = _dictated_input(declared, ref, dictated, reference), "the reference's input blob"
        elif shape is None:
            raise InputShapeError(
                f"no shape is known for input blob {name!r}; give it an input file, or a shape with "
                f"--input-shape {name}=N,C,H,W (input_shapes=). Received: input_shapes={dict(input_shapes or {})!r}"
            )
        elif None in shape:
            raise InputShapeError(
                f"input blob {name!r} has free sizes {shape}; give it an input of the size to run at "
                f"(inputs=, CLI: --input {name}=FILE). Received: input_shapes={dict(input_shapes or {})!r}"
            )
        else:
            array, source = rng.standard_normal(shape, dtype=np.float32), f"random normal (seed {seed})"
        wanted = (input_shapes or {}).get(name)
        if wanted is not None and not fits(wanted, array.shape):
            raise InputShapeError(
                f"input blob {name!r} gets an array of shape {array.shape}, but its shape is given as "
                f"{tuple(wanted)}. Received: input_shapes={dict(input_shapes or {})!r}"
            )
        arrays[name] = array
        infos.append(InputInfo(name, tuple(array.shape), source))
    return arrays, infos


def fits(shape: Sequence[int | None], actual: Sequence[int]) -> bool:
    """Whether an array of shape ``actual`` fits ``shape``, where None is a free size."""
    return len(shape) == len(actual) and all(d is None or d == a for d, a in zip(shape, actual))


# ---------------------------------------------------------------------------------------------

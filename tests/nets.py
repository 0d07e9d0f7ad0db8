"""Small Caffe nets written in a test: convert them, run them, and run them in OpenCV."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from tests import oracle
from tests.golden import run, save_and_reload

Layers = Sequence[tuple[str, str, Sequence[np.ndarray]]]


def net(input_shapes: Mapping[str, Sequence[int]], body: str) -> str:
    """A prototxt with legacy inputs of the given shapes, then ``body``."""
    header = "".join(
        f'input: "{name}"\ninput_shape {{ {" ".join(f"dim: {d}" for d in shape)} }}\n'
        for name, shape in input_shapes.items()
    )
    return f'name: "t"\n{header}{body}'


def layer(type_: str, params: str = "", bottoms=("data",), tops=("out",), name="l") -> str:
    """One ``layer { }`` entry of a prototxt."""
    wiring = "".join(f' bottom: "{b}"' for b in bottoms) + "".join(f' top: "{t}"' for t in tops)
    return f'layer {{ name: "{name}" type: "{type_}"{wiring} {params} }}\n'


def write_net(tmp_path: Path, text: str, layers: Layers = ()) -> tuple[Path, Path | None]:
    """The prototxt and (when ``layers`` holds blobs) a caffemodel, in ``tmp_path``."""
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(text)
    if not layers:
        return prototxt, None
    weights = tmp_path / "net.caffemodel"
    write_caffemodel(weights, layers)
    return prototxt, weights


def convert_and_run(
    tmp_path: Path, text: str, inputs: Sequence[np.ndarray], data_format: str, layers: Layers = (), **convert_args
) -> list[np.ndarray]:
    """Caffe-layout outputs of the converted net, saved and reloaded with ``safe_mode=True``."""
    prototxt, weights = write_net(tmp_path, text, layers)
    model = caffe2keras.convert(prototxt, weights, data_format=data_format, **convert_args)
    return run(save_and_reload(model, tmp_path), list(inputs), data_format)


def opencv_forward(
    tmp_path: Path, text: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str], layers: Layers = ()
) -> list[np.ndarray]:
    """The same net run by OpenCV's independent Caffe importer; ``outputs`` names layers (first top)."""
    prototxt, weights = write_net(tmp_path, text, layers)
    return oracle.opencv_forward(prototxt, weights, inputs, [(name, 0) for name in outputs])

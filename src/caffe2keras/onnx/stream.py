"""Write an ONNX model with its weights streamed from the caffemodel's memory map.

``ModelProto.SerializeToString`` would hold every weight twice more (in the
TensorProtos, then in the serialized string). Protocol buffers merge a message
field that occurs more than once, and append to repeated fields, so the file is
written as the model without its large initializers, followed, for each one, by
a ``graph`` field holding a graph with just that initializer; its ``raw_data``
bytes are written straight from the mapped file.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from onnx import ModelProto, TensorProto

from caffe2keras.arrays import release_pages
from caffe2keras.caffe.writer import varint

# Field numbers of onnx.proto, each with wire type 2 (length-delimited).
MODEL_GRAPH = 7
GRAPH_INITIALIZER = 5
TENSOR_RAW_DATA = 9


def _field_head(number: int, length: int) -> bytes:
    return varint(number << 3 | 2) + varint(length)


def _tensor_head(name: str, array: np.ndarray) -> bytes:
    """The serialized TensorProto up to its raw data's bytes (which follow it in the file)."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=array.shape)
    head = tensor.SerializeToString() + _field_head(TENSOR_RAW_DATA, array.nbytes)
    tensor_length = len(head) + array.nbytes
    graph_length = len(_field_head(GRAPH_INITIALIZER, tensor_length)) + tensor_length
    return _field_head(MODEL_GRAPH, graph_length) + _field_head(GRAPH_INITIALIZER, tensor_length) + head


def write_streamed(file, model: ModelProto, weights: Mapping[str, np.ndarray]) -> None:
    """Write ``model`` and then ``weights`` (float32 arrays, as initializers of its graph) to ``file``."""
    file.write(model.SerializeToString())
    for name, array in weights.items():
        data = array if array.dtype == np.dtype("<f4") and array.flags.c_contiguous else None
        if data is None:  # computed or strided values: one small copy
            data = np.ascontiguousarray(array, dtype="<f4")
        file.write(_tensor_head(name, data))
        file.write(memoryview(data.reshape(-1)).cast("B"))
        release_pages(array)  # the file holds them now; the mapped pages can go

"""Reading Caffe files: the schema, net definitions and weights. No Caffe needed."""

from caffe2keras.caffe.prototxt import parse_net_text, read_net
from caffe2keras.caffe.schema import extend_schema, schema
from caffe2keras.caffe.weights import Blob, LayerWeights, Weights, read_blob_file, read_weights

__all__ = [
    "Blob",
    "LayerWeights",
    "Weights",
    "extend_schema",
    "parse_net_text",
    "read_blob_file",
    "read_net",
    "read_weights",
    "schema",
]

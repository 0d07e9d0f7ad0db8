"""The Caffe Model Zoo by name: a catalog, verified downloads, conversion with preprocessing and labels.

Importing this package imports neither Keras nor the network stack.
"""

from caffe2keras.zoo.catalog import Net, get_net, load_catalog, read_labels, validate_catalog
from caffe2keras.zoo.download import Downloaded, cache_dir, download

__all__ = ["Downloaded", "Net", "cache_dir", "download", "get_net", "load_catalog", "read_labels", "validate_catalog"]

"""Custom Keras layers for Caffe semantics that Keras lacks.

Every layer here is registered serializable under the ``caffe2keras>``
package name, so a saved model reloads with ``safe_mode=True`` once
``caffe2keras`` is imported. Nothing here imports the Caffe side.
"""

from caffe2keras.layers.convolution import GroupedConv2DTranspose
from caffe2keras.layers.detection import DetectionOutput, Normalize, PriorBox
from caffe2keras.layers.elementwise import AbsVal, Clip, Exp, Log, Power, Swish, Threshold
from caffe2keras.layers.initializers import CaffeFiller
from caffe2keras.layers.normalization import LRN
from caffe2keras.layers.pooling import CaffePooling2D, MaxPoolingWithArgmax2D, ROIPooling
from caffe2keras.layers.resampling import BilinearInterp, MaxUnpooling2D
from caffe2keras.layers.tensor import Affine, Crop, Slice, WeightedSum

__all__ = [
    "AbsVal",
    "Affine",
    "BilinearInterp",
    "CaffeFiller",
    "CaffePooling2D",
    "Clip",
    "Crop",
    "DetectionOutput",
    "Exp",
    "GroupedConv2DTranspose",
    "LRN",
    "Log",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "Normalize",
    "Power",
    "PriorBox",
    "ROIPooling",
    "Slice",
    "Swish",
    "Threshold",
    "WeightedSum",
]

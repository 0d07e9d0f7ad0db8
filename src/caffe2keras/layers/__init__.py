"""Custom Keras layers for Caffe semantics that Keras lacks.

Every layer here is registered serializable under the ``caffe2keras>``
package name, so a saved model reloads with ``safe_mode=True`` once
``caffe2keras`` is imported. Nothing here imports the Caffe side.

Every module of this package (but tests) is imported, found by :mod:`pkgutil` in the package's
own directory (never the working directory): a new layer module is registered for loading
without a line here. The names below are the public ones.
"""

import importlib
import pkgutil

from caffe2keras.layers.convolution import GroupedConv2DTranspose
from caffe2keras.layers.detection_output import DetectionOutput
from caffe2keras.layers.elementwise import AbsVal, Clip, Exp, Log, Power, Swish, Threshold
from caffe2keras.layers.initializers import CaffeFiller
from caffe2keras.layers.losses import (
    Accuracy,
    ContrastiveLoss,
    EuclideanLoss,
    HingeLoss,
    InfogainLoss,
    SigmoidCrossEntropyLoss,
    SoftmaxWithLoss,
)
from caffe2keras.layers.normalization import LRN, CaffeBatchNorm, MeanVarianceNormalization
from caffe2keras.layers.normalize import Normalize
from caffe2keras.layers.pooling import CaffePooling2D, MaxPoolingWithArgmax2D, ROIPooling
from caffe2keras.layers.preprocessing import CaffePreprocessing
from caffe2keras.layers.prior_box import PriorBox
from caffe2keras.layers.proposal import Proposal
from caffe2keras.layers.psroi_pooling import PSROIPooling
from caffe2keras.layers.recurrent import CaffeLSTM, CaffeRNN, LSTMUnit
from caffe2keras.layers.reduction import ArgMax, Reduction
from caffe2keras.layers.resampling import BilinearInterp, MaxUnpooling2D
from caffe2keras.layers.solver import CaffeLearningRate, CaffeSolver
from caffe2keras.layers.tensor import (
    Affine,
    BatchReindex,
    BroadcastOperand,
    Crop,
    LearnedTensor,
    Slice,
    Tile,
    Transpose,
    WeightedSum,
)
from caffe2keras.layers.training_model import CaffeTrainingModel

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.endswith("_test") and _module.name != "conftest":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "LRN",
    "AbsVal",
    "Accuracy",
    "Affine",
    "ArgMax",
    "BatchReindex",
    "BilinearInterp",
    "BroadcastOperand",
    "CaffeBatchNorm",
    "CaffeFiller",
    "CaffeLSTM",
    "CaffeLearningRate",
    "CaffePooling2D",
    "CaffePreprocessing",
    "CaffeRNN",
    "CaffeSolver",
    "CaffeTrainingModel",
    "Clip",
    "ContrastiveLoss",
    "Crop",
    "DetectionOutput",
    "EuclideanLoss",
    "Exp",
    "GroupedConv2DTranspose",
    "HingeLoss",
    "InfogainLoss",
    "LSTMUnit",
    "LearnedTensor",
    "Log",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "MeanVarianceNormalization",
    "Normalize",
    "PSROIPooling",
    "Power",
    "PriorBox",
    "Proposal",
    "ROIPooling",
    "Reduction",
    "SigmoidCrossEntropyLoss",
    "Slice",
    "SoftmaxWithLoss",
    "Swish",
    "Threshold",
    "Tile",
    "Transpose",
    "WeightedSum",
]

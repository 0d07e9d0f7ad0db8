"""Upgrade the V1 format (``layers { type: CONVOLUTION }``) to the current one.

V1 layers keep their ``*_param`` messages (same message types), so an upgrade
is a field-by-field copy plus the enum-to-string type mapping Caffe itself
applies (``UpgradeV1LayerParameter``).
"""

from __future__ import annotations

from caffe2keras.caffe.schema import schema
from caffe2keras.errors import ModelFileError

# V1 LayerType enum name -> the type string Caffe registers for that layer.
V1_TYPE_NAMES = {
    "NONE": "",
    "ABSVAL": "AbsVal",
    "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax",
    "BNLL": "BNLL",
    "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution",
    "DATA": "Data",
    "DECONVOLUTION": "Deconvolution",
    "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise",
    "EXP": "Exp",
    "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss",
    "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN",
    "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN",
    "POOLING": "Pooling",
    "POWER": "Power",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split",
    "SLICE": "Slice",
    "TANH": "TanH",
    "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}

# Fields whose meaning is identical in V1LayerParameter and LayerParameter.
_SAME_FIELDS = ("name", "bottom", "top", "include", "exclude", "blobs", "loss_weight")


def upgrade_v1_layer(v1, source) -> object:
    """One ``V1LayerParameter`` as a ``LayerParameter``."""
    if v1.HasField("layer"):
        raise ModelFileError(
            source,
            f"layer {v1.layer.name or v1.name!r} is in the pre-2014 V0 format, which "
            "caffe2keras does not read; upgrade the file with Caffe's "
            "upgrade_net_proto_text / upgrade_net_proto_binary tools first.",
        )
    layer = schema().LayerParameter()
    for name in _SAME_FIELDS:
        value = getattr(v1, name)
        if isinstance(value, str):
            setattr(layer, name, value)
        else:
            getattr(layer, name).extend(value)
    type_enum = v1.DESCRIPTOR.fields_by_name["type"].enum_type
    layer.type = V1_TYPE_NAMES[type_enum.values_by_number[v1.type].name]
    for index, share_name in enumerate(v1.param):
        _param_spec(layer, index).name = share_name
    for index, lr in enumerate(v1.blobs_lr):
        _param_spec(layer, index).lr_mult = lr
    for index, decay in enumerate(v1.weight_decay):
        _param_spec(layer, index).decay_mult = decay
    for field, value in v1.ListFields():
        if field.name.endswith("_param") and field.name != "param":
            getattr(layer, field.name).CopyFrom(value)
    return layer


def _param_spec(layer, index):
    while len(layer.param) <= index:
        layer.param.add()
    return layer.param[index]


def upgrade_net(net, source) -> object:
    """Move V1 ``layers`` into ``layer`` (in place) and return the net."""
    if net.layers:
        if net.layer:
            raise ModelFileError(source, "the net mixes V1 'layers' and current 'layer' entries; use one format.")
        upgraded = [upgrade_v1_layer(v1, source) for v1 in net.layers]
        del net.layers[:]
        net.layer.extend(upgraded)
    return net

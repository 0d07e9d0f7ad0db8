"""Upgrade the V0 (``layers { layer { type: "conv" } }``) and V1 (``layers { type: CONVOLUTION }``)
formats to the current one, as Caffe's own upgrade does.

V1 layers keep their ``*_param`` messages (same message types), so an upgrade
is a field-by-field copy plus the enum-to-string type mapping Caffe itself
applies (``UpgradeV1LayerParameter``). V0 layers are first made V1 layers
(``UpgradeV0Net``): their separate ``padding`` layers are merged into the
convolution or pooling they feed, and their flat fields move into the
``*_param`` messages of their type.
"""

from __future__ import annotations

import warnings

from caffe2keras.caffe.schema import schema
from caffe2keras.errors import ConversionWarning, ModelFileError

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


# V0 type string -> the V1 LayerType enum name Caffe's UpgradeV0LayerType gives it.
V0_TYPE_NAMES = {
    "accuracy": "ACCURACY",
    "bnll": "BNLL",
    "concat": "CONCAT",
    "conv": "CONVOLUTION",
    "data": "DATA",
    "dropout": "DROPOUT",
    "euclidean_loss": "EUCLIDEAN_LOSS",
    "flatten": "FLATTEN",
    "hdf5_data": "HDF5_DATA",
    "hdf5_output": "HDF5_OUTPUT",
    "im2col": "IM2COL",
    "images": "IMAGE_DATA",
    "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT",
    "lrn": "LRN",
    "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS",
    "pool": "POOLING",
    "relu": "RELU",
    "sigmoid": "SIGMOID",
    "softmax": "SOFTMAX",
    "softmax_loss": "SOFTMAX_LOSS",
    "split": "SPLIT",
    "tanh": "TANH",
    "window_data": "WINDOW_DATA",
}

_DATA_TYPES = ("data", "images", "window_data")
# V0 field -> {V0 type: "message.field" it moves to}, as UpgradeV0LayerParameter moves it
# (data transformations straight to transform_param, where the later upgrades put them).
_V0_FIELDS = {
    "num_output": {"conv": "convolution_param.num_output", "innerproduct": "inner_product_param.num_output"},
    "biasterm": {"conv": "convolution_param.bias_term", "innerproduct": "inner_product_param.bias_term"},
    "weight_filler": {"conv": "convolution_param.weight_filler", "innerproduct": "inner_product_param.weight_filler"},
    "bias_filler": {"conv": "convolution_param.bias_filler", "innerproduct": "inner_product_param.bias_filler"},
    "pad": {"conv": "convolution_param.pad", "pool": "pooling_param.pad"},
    "kernelsize": {"conv": "convolution_param.kernel_size", "pool": "pooling_param.kernel_size"},
    "group": {"conv": "convolution_param.group"},
    "stride": {"conv": "convolution_param.stride", "pool": "pooling_param.stride"},
    "pool": {"pool": "pooling_param.pool"},
    "dropout_ratio": {"dropout": "dropout_param.dropout_ratio"},
    "local_size": {"lrn": "lrn_param.local_size"},
    "alpha": {"lrn": "lrn_param.alpha"},
    "beta": {"lrn": "lrn_param.beta"},
    "k": {"lrn": "lrn_param.k"},
    "source": {
        "data": "data_param.source",
        "images": "image_data_param.source",
        "window_data": "window_data_param.source",
        "hdf5_data": "hdf5_data_param.source",
    },
    "scale": dict.fromkeys(_DATA_TYPES, "transform_param.scale"),
    "meanfile": dict.fromkeys(_DATA_TYPES, "transform_param.mean_file"),
    "batchsize": {
        "data": "data_param.batch_size",
        "images": "image_data_param.batch_size",
        "window_data": "window_data_param.batch_size",
        "hdf5_data": "hdf5_data_param.batch_size",
    },
    "cropsize": dict.fromkeys(_DATA_TYPES, "transform_param.crop_size"),
    "mirror": dict.fromkeys(_DATA_TYPES, "transform_param.mirror"),
    "rand_skip": {"data": "data_param.rand_skip", "images": "image_data_param.rand_skip"},
    "shuffle_images": {"images": "image_data_param.shuffle"},
    "new_height": {"images": "image_data_param.new_height"},
    "new_width": {"images": "image_data_param.new_width"},
    "concat_dim": {"concat": "concat_param.concat_dim"},
    "det_fg_threshold": {"window_data": "window_data_param.fg_threshold"},
    "det_bg_threshold": {"window_data": "window_data_param.bg_threshold"},
    "det_fg_fraction": {"window_data": "window_data_param.fg_fraction"},
    "det_context_pad": {"window_data": "window_data_param.context_pad"},
    "det_crop_mode": {"window_data": "window_data_param.crop_mode"},
    "hdf5_output_param": {"hdf5_output": "hdf5_output_param"},
}
# Kept on the V1 layer itself (the weights and their learning rates).
_V0_LAYER_FIELDS = ("name", "blobs", "blobs_lr", "weight_decay")


def upgrade_v0_padding(layers, inputs, source) -> list:
    """Caffe's ``UpgradeV0PaddingLayers``: drop each ``padding`` layer and give its ``pad`` to the
    convolution or pooling that reads its output, reading the padding layer's input instead."""
    last_writer: dict[str, object] = dict.fromkeys(inputs)
    kept = []
    for connection in layers:
        layer_type = connection.layer.type
        upgraded = None
        if layer_type != "padding":
            upgraded = type(connection)()
            upgraded.CopyFrom(connection)
            kept.append(upgraded)
        for index, blob in enumerate(connection.bottom):
            if blob not in last_writer:
                raise ModelFileError(
                    source, f"layer {connection.layer.name!r} reads blob {blob!r}, which no earlier layer writes."
                )
            writer = last_writer[blob]
            if writer is None or writer.layer.type != "padding":
                continue
            if layer_type not in ("conv", "pool") or len(connection.bottom) != 1:
                raise ModelFileError(
                    source,
                    f"padding layer {writer.layer.name!r} feeds layer {connection.layer.name!r} "
                    f"({layer_type!r}); Caffe merges a padding layer only into a one-bottom conv or pool layer.",
                )
            if len(writer.bottom) != 1 or len(writer.top) != 1:
                raise ModelFileError(
                    source, f"padding layer {writer.layer.name!r} must have one bottom and one top, as Caffe requires."
                )
            if upgraded is not None:
                upgraded.layer.pad = writer.layer.pad
                upgraded.bottom[index] = writer.bottom[0]
        for blob in connection.top:
            last_writer[blob] = connection
    return kept


def upgrade_v0_layer(connection, source) -> object:
    """One V0 layer (a ``V1LayerParameter`` holding a ``V0LayerParameter``) as a V1 layer."""
    v0 = connection.layer
    v1 = schema().V1LayerParameter()
    v1.bottom.extend(connection.bottom)
    v1.top.extend(connection.top)
    if v0.HasField("type"):
        if v0.type not in V0_TYPE_NAMES:
            raise ModelFileError(
                source, f"layer {v0.name!r} has the V0 type {v0.type!r}, which Caffe's upgrade does not know."
            )
        v1.type = v1.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_name[V0_TYPE_NAMES[v0.type]].number
    for field, value in v0.ListFields():
        if field.name in ("type",):
            continue
        if field.name in _V0_LAYER_FIELDS:
            if field.name == "name":
                v1.name = value
            else:
                getattr(v1, field.name).extend(value)
            continue
        target = _V0_FIELDS.get(field.name, {}).get(v0.type)
        if target is None:
            # Caffe logs the field as unknown for the type and goes on without it.
            warnings.warn(
                f"{source}: V0 layer {v0.name!r} ({v0.type}) has field {field.name!r}, which Caffe's upgrade "
                "ignores for that type; it is ignored.",
                ConversionWarning,
                stacklevel=2,
            )
            continue
        _set_path(v1, target, value)
    return v1


def _set_path(message, path: str, value) -> None:
    *parents, name = path.split(".")
    for parent in parents:
        message = getattr(message, parent)
    current = getattr(message, name)
    if message.DESCRIPTOR.fields_by_name[name].message_type is not None:
        current.CopyFrom(value)
    elif hasattr(current, "append"):  # a repeated field (kernel_size, pad, stride)
        current.append(value)
    else:
        setattr(message, name, value)


def upgrade_v1_layer(v1, source) -> object:
    """One ``V1LayerParameter`` as a ``LayerParameter``."""
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
    """Move V0 and V1 ``layers`` into ``layer`` (in place) and return the net."""
    if net.layers:
        if net.layer:
            raise ModelFileError(source, "the net mixes V1 'layers' and current 'layer' entries; use one format.")
        if any(connection.HasField("layer") for connection in net.layers):  # Caffe's NetNeedsV0ToV1Upgrade
            v0_layers = upgrade_v0_padding(net.layers, net.input, source)
            v1_layers = [upgrade_v0_layer(connection, source) for connection in v0_layers]
            del net.layers[:]
            net.layers.extend(v1_layers)
        upgraded = [upgrade_v1_layer(v1, source) for v1 in net.layers]
        del net.layers[:]
        net.layer.extend(upgraded)
    return net

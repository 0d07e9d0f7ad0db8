"""The plugin hook: a custom Caffe type with its own parameter message, converted by a user's converter
into a user's serializable Keras layer, saved and reloaded with ``safe_mode=True``."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

import caffe2keras
from caffe2keras import Node, Step
from caffe2keras.caffe.schema import schema
from caffe2keras.converters.base import rule_for
from tests.golden import assert_matches, run
from tests.nets import write_net
from tests.shared import FORMATS

GATE_SCHEMA = """
message ChannelGateParameter {
  optional float gain = 1 [default = 1];
  optional bool invert = 2 [default = false];
}
extend LayerParameter { optional ChannelGateParameter channel_gate_param = 5001; }
"""

NET = """name: "gated"
input: "data"
input_shape { dim: 2 dim: 3 dim: 4 dim: 5 }
layer { name: "gate" type: "ChannelGate" bottom: "data" top: "gated" channel_gate_param { gain: 2.5 invert: true } }
layer { name: "double" type: "Python" bottom: "gated" top: "out"
        python_param { module: "my_layers" layer: "Multiply" param_str: "2" } }
"""


# ---------------------------------------------------------------- what a user writes


@keras.saving.register_keras_serializable(package="caffe2keras_plugin_test")
class ChannelGate(keras.layers.Layer):
    """``x * sigmoid(gain * w)`` per channel, or ``x * (1 - sigmoid(gain * w))`` when inverted."""

    def __init__(self, axis=-1, gain=1.0, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.gain, self.invert = int(axis), float(gain), bool(invert)

    def build(self, input_shape):
        self.logits = self.add_weight(name="logits", shape=(input_shape[self.axis],), initializer="zeros")

    def call(self, inputs):
        gate = ops.sigmoid(self.gain * self.logits)
        if self.invert:
            gate = 1 - gate
        shape = [1] * len(inputs.shape)
        shape[self.axis] = -1
        return inputs * ops.reshape(gate, shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "gain": self.gain, "invert": self.invert}


def convert_channel_gate(node: Node) -> Step:
    p = node.param.channel_gate_param
    channels = node.in_shapes[0][1]
    logits = node.blob(0, (channels,), "bottom_channels", channels)
    return Step(ChannelGate(node.keras_axis(1), p.gain, p.invert), weights=(logits,))


def channel_gate_shapes(op, in_shapes):
    return [in_shapes[0]]


def convert_python(node: Node) -> Step:
    p = node.param.python_param
    if (p.module, p.layer) != ("my_layers", "Multiply"):
        raise node.error("no converter for this Python layer", "python_param.layer", f"{p.module}.{p.layer}")
    return Step(keras.layers.Rescaling(float(p.param_str)))


# ---------------------------------------------------------------- the tests


@pytest.fixture
def clean_registry():
    """Each test registers its own converters and schema additions, and leaves none behind."""
    with caffe2keras.registry_snapshot():
        yield


def install_plugin():
    caffe2keras.extend_schema(GATE_SCHEMA, source="channel_gate.proto")
    caffe2keras.register_converter("ChannelGate", convert_channel_gate, shapes=channel_gate_shapes)
    caffe2keras.register_converter("Python", convert_python)  # no shape rule: read off the Keras layer


@pytest.mark.parametrize("data_format", FORMATS)
def test_custom_type_converts_saves_and_reloads_safely(data_format, clean_registry, tmp_path):
    install_plugin()
    logits = np.array([-1.0, 0.5, 2.0], np.float32)
    prototxt, weights = write_net(tmp_path, NET, [("gate", "ChannelGate", [logits])])
    model = caffe2keras.convert(prototxt, weights, data_format=data_format)
    path = tmp_path / "gated.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(reloaded.get_layer("gate"), ChannelGate)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    gate = 1 - 1 / (1 + np.exp(-2.5 * logits))
    assert_matches(run(reloaded, [x], data_format)[0], 2 * x * gate[None, :, None, None], "plugin")


def test_parameter_shapes_need_a_shape_rule_for_every_type(clean_registry, tmp_path):
    install_plugin()
    prototxt, _ = write_net(tmp_path, NET)
    with pytest.raises(caffe2keras.NetError, match=r"layer 'double' \(Python\) has a converter without a shape rule"):
        caffe2keras.parameter_shapes(prototxt)
    caffe2keras.register_converter("Python", convert_python, channel_gate_shapes, replace=True)
    assert caffe2keras.parameter_shapes(prototxt) == {"gate": [(3,)]}


def test_a_second_registration_is_refused_unless_replacing(clean_registry):
    install_plugin()
    with pytest.raises(
        caffe2keras.RegistryError,
        match=r"'ChannelGate' is already registered "
        r"\(tests\.test_plugins\.convert_channel_gate\); pass replace=True",
    ):
        caffe2keras.register_converter("ChannelGate", convert_channel_gate)
    with pytest.raises(caffe2keras.RegistryError, match="'Convolution' is already registered"):
        caffe2keras.register_converter("Convolution", convert_channel_gate)
    caffe2keras.register_converter("ChannelGate", convert_channel_gate, channel_gate_shapes, replace=True)


@pytest.mark.parametrize(
    "layer_type, role", [("Data", "become the net's inputs"), ("SoftmaxWithLoss", "are dropped at inference")]
)
def test_types_handled_before_conversion_cannot_be_registered(layer_type, role, clean_registry):
    with pytest.raises(caffe2keras.RegistryError, match=role):
        caffe2keras.register_converter(layer_type, convert_channel_gate)


def test_arguments_are_checked(clean_registry):
    with pytest.raises(TypeError, match="Received: layer_type=''"):
        caffe2keras.register_converter("", convert_channel_gate)
    with pytest.raises(TypeError, match="convert must be callable"):
        caffe2keras.register_converter("Thing", "not a function")


def test_extending_the_schema_twice_is_harmless_and_clashes_are_refused(clean_registry):
    caffe2keras.extend_schema(GATE_SCHEMA)
    caffe2keras.extend_schema(GATE_SCHEMA)  # a plugin module imported again
    with pytest.raises(caffe2keras.SchemaError, match="collides with LayerParameter.channel_gate_param"):
        caffe2keras.extend_schema("extend LayerParameter { optional float other_gain = 5001; }")
    layer = caffe2keras.caffe.schema().LayerParameter()
    layer.channel_gate_param.gain = 3
    assert layer.channel_gate_param.gain == 3


def test_an_unconvertible_python_class_names_the_layer(clean_registry, tmp_path):
    install_plugin()
    prototxt, _ = write_net(tmp_path, NET.replace('layer: "Multiply"', 'layer: "Divide"'))
    with pytest.raises(
        caffe2keras.UnsupportedParameterError,
        match=r"Layer 'double' \(Python\): no converter .* Received: python_param.layer='my_layers.Divide'",
    ):
        caffe2keras.convert(prototxt)


def test_a_registry_snapshot_undoes_registrations_and_schema_extensions():
    relu = rule_for("ReLU")
    with caffe2keras.registry_snapshot():
        install_plugin()
        caffe2keras.register_converter("ReLU", convert_python, replace=True)
        assert rule_for("ChannelGate") is not None
    assert rule_for("ChannelGate") is None
    assert rule_for("ReLU") is relu
    with pytest.raises(AttributeError):
        schema().ChannelGateParameter  # noqa: B018

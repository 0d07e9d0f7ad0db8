"""Our at-import-time schema compiler agrees with protoc on caffe.proto, field for field."""

from __future__ import annotations

import subprocess
import sys

import pytest
from google.protobuf import descriptor_pb2, text_format

from caffe2keras.caffe import extend_schema, parse_net_text, schema
from caffe2keras.caffe.schema import PROTO_PATH, compile_schema, enum_name, schema_snapshot
from caffe2keras.errors import ModelFileError, SchemaError

FDP = descriptor_pb2.FieldDescriptorProto


def _protoc_descriptor(tmp_path) -> descriptor_pb2.FileDescriptorProto:
    pytest.importorskip("grpc_tools", reason="grpcio-tools provides protoc")
    out = tmp_path / "caffe.desc"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_PATH.parent}",
            f"--descriptor_set_out={out}",
            PROTO_PATH.name,
        ],
        check=True,
    )
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return descriptor_set.file[0]


def _default(field: FDP):
    if not field.HasField("default_value"):
        return None
    if field.type in (FDP.TYPE_FLOAT, FDP.TYPE_DOUBLE):
        return float(field.default_value)
    return field.default_value


def _field_facts(field: FDP):
    return (
        field.name,
        field.number,
        field.label,
        field.type,
        field.type_name,
        _default(field),
        field.options.packed if field.options.HasField("packed") else None,
    )


def _message_facts(message: descriptor_pb2.DescriptorProto):
    return {
        "fields": sorted(_field_facts(f) for f in message.field),
        "enums": sorted((e.name, tuple((v.name, v.number) for v in e.value)) for e in message.enum_type),
        "nested": sorted((m.name, repr(_message_facts(m))) for m in message.nested_type),
    }


def test_schema_matches_protoc(tmp_path):
    expected = _protoc_descriptor(tmp_path)
    ours = compile_schema(((PROTO_PATH.name, PROTO_PATH.read_text()),))
    assert ours.package == expected.package == "caffe"
    assert [m.name for m in ours.message_type] == [m.name for m in expected.message_type]
    for mine, theirs in zip(ours.message_type, expected.message_type):
        assert _message_facts(mine) == _message_facts(theirs), mine.name
    assert [(e.name, [(v.name, v.number) for v in e.value]) for e in ours.enum_type] == [
        (e.name, [(v.name, v.number) for v in e.value]) for e in expected.enum_type
    ]


def test_defaults_and_enums_reach_the_message_classes():
    pooling = schema().PoolingParameter()
    assert pooling.round_mode == pooling.CEIL and pooling.ceil_mode is True and pooling.stride == 1
    assert schema().BatchNormParameter().eps == pytest.approx(1e-5)
    assert schema().FillerParameter().type == "constant"


def test_enum_fields_read_by_name():
    s = schema()
    assert enum_name(s.PoolingParameter(pool=s.PoolingParameter.AVE), "pool") == "AVE"
    # DetectionOutputParameter's code_type is PriorBoxParameter's enum: the field knows its type.
    output = s.DetectionOutputParameter(code_type=s.PriorBoxParameter.CENTER_SIZE)
    assert enum_name(output, "code_type") == "CENTER_SIZE"
    assert enum_name(s.FillerParameter(), "variance_norm") == "FAN_IN"  # the schema's default


def test_v1_prototxt_is_upgraded():
    net = parse_net_text(
        'layers { name: "c" type: CONVOLUTION bottom: "x" top: "c" blobs_lr: 2 '
        "convolution_param { num_output: 3 kernel_size: 1 } }"
    )
    (layer,) = net.layer
    assert (layer.type, layer.convolution_param.num_output, layer.param[0].lr_mult) == ("Convolution", 3, 2)


def test_unknown_field_error_points_to_extend_schema():
    with pytest.raises(ModelFileError, match="extend_schema"):
        parse_net_text('layer { name: "a" type: "Foo" foo_param { x: 1 } }')


def test_extend_schema_adds_messages_and_fields():
    # Undone on leaving: a later test in the same process (the schema-coverage check) must see
    # the built-in schema only.
    with schema_snapshot():
        extend_schema(
            """
            message TestOnlyParameter { optional float gain = 1 [default = 2.5]; }
            extend LayerParameter { optional TestOnlyParameter test_only_param = 987650; }
            """,
            source="test_schema",
        )
        net = parse_net_text('layer { name: "a" type: "TestOnly" test_only_param { } }')
        assert net.layer[0].test_only_param.gain == pytest.approx(2.5)
        text_format.MessageToString(net)  # the extended message serializes


@pytest.mark.parametrize(
    "text, message",
    [
        ("extend LayerParameter { optional float name = 5000; }", "collides"),
        ("extend LayerParameter { optional float free_name = 1; }", "collides"),
        ("extend NoSuchMessage { optional float x = 1; }", "unknown message"),
        ("message BlobShape { }", "already defined"),
        ("message Broken { optional NoSuchType x = 1; }", "unknown type"),
        ("message Broken { optional float x = 1 }", "expected ';'"),
    ],
)
def test_bad_extensions_are_refused_and_leave_the_schema_intact(text, message):
    with pytest.raises(SchemaError, match=message):
        extend_schema(text, source="bad")
    assert schema().NetParameter  # the previous schema still works

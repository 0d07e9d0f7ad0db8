"""The fast caffemodel reader (wire scanner + mapped file) gives exactly protobuf's result."""

from __future__ import annotations

import gc
import struct

import numpy as np
import pytest

from caffe2keras.caffe import wire
from caffe2keras.caffe.weights import read_binary_weights
from caffe2keras.caffe.writer import _length_delimited, blob_bytes, layer_bytes, varint, write_caffemodel
from caffe2keras.errors import ModelFileError
from tests.shared import SHARED, requires_shared

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = range(6)
# Field numbers of caffe.proto.
NET_LAYER, NET_LAYERS = 100, 2
NAME, TYPE, BLOBS = 1, 2, 7
V1_NAME, V1_TYPE, V1_BLOBS = 4, 5, 6
SHAPE, DIM, DATA, DIFF, DOUBLE_DATA = 7, 1, 5, 6, 8
NUM, CHANNELS, HEIGHT, WIDTH = 1, 2, 3, 4
V1_CONVOLUTION, V1_INNER_PRODUCT = 4, 14


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def varint_field(number: int, value: int) -> bytes:
    return tag(number, VARINT) + varint(value & 0xFFFFFFFFFFFFFFFF)


def text_field(number: int, text: str | bytes) -> bytes:
    return _length_delimited(number, text.encode() if isinstance(text, str) else text)


def unpacked_floats(values, number: int = DATA) -> bytes:
    return b"".join(tag(number, FIXED32) + struct.pack("<f", v) for v in values)


def unpacked_doubles(values) -> bytes:
    return b"".join(tag(DOUBLE_DATA, FIXED64) + struct.pack("<d", v) for v in values)


def packed(number: int, values, fmt: str) -> bytes:
    return _length_delimited(number, struct.pack(f"<{len(values)}{fmt}", *values))


def shape_field(*dims: int) -> bytes:
    return _length_delimited(SHAPE, _length_delimited(DIM, b"".join(varint(d) for d in dims)))


def layer(name: str, layer_type: str, *blobs: bytes, extra: bytes = b"") -> bytes:
    body = text_field(NAME, name) + text_field(TYPE, layer_type) + extra
    return _length_delimited(NET_LAYER, body + b"".join(_length_delimited(BLOBS, b) for b in blobs))


def v1_layer(name: str, type_number: int, *blobs: bytes) -> bytes:
    body = text_field(V1_NAME, name) + varint_field(V1_TYPE, type_number)
    return _length_delimited(NET_LAYERS, body + b"".join(_length_delimited(V1_BLOBS, b) for b in blobs))


def assert_same_weights(fast, plain):
    assert list(fast) == list(plain)
    for name in plain:
        a, b = fast[name], plain[name]
        assert (a.name, a.type, len(a.blobs)) == (b.name, b.type, len(b.blobs)), name
        for x, y in zip(a.blobs, b.blobs):
            assert x.legacy == y.legacy and x.shape == y.shape, name
            assert x.data.dtype == y.data.dtype == np.float32, name
            assert np.array_equal(x.data.view(np.uint32), y.data.view(np.uint32)), name


def both_paths(path):
    """(fast result or its error, plain result or its error)."""
    results = []
    for fast in (True, False):
        try:
            results.append(read_binary_weights(path, fast=fast))
        except ModelFileError as exc:
            results.append(exc)
    return results


def assert_paths_agree(path):
    fast, plain = both_paths(path)
    if isinstance(plain, ModelFileError):
        assert isinstance(fast, ModelFileError), f"protobuf refuses {path} ({plain}) but the scanner read it"
    else:
        assert not isinstance(fast, ModelFileError), f"the scanner refuses {path}: {fast}"
        assert_same_weights(fast, plain)
    return fast


def write_bytes(tmp_path, payload: bytes, name: str = "w.caffemodel"):
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def shared_caffemodels():
    files = sorted(SHARED.glob("golden/*/*/weights.caffemodel")) + sorted(SHARED.glob("caffe/trained/*/*.caffemodel"))
    return [pytest.param(path, id=str(path.relative_to(SHARED))) for path in files] or [
        pytest.param(None, marks=pytest.mark.skip(reason="no shared caffemodels"), id="no-shared")
    ]


@requires_shared
@pytest.mark.parametrize("path", shared_caffemodels())
def test_every_shared_caffemodel_reads_as_protobuf_reads_it(path):
    weights = assert_paths_agree(path)
    assert weights


def test_packed_blobs_are_read_only_views_of_the_file(tmp_path):
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, [("conv", "Convolution", [array, np.ones(2, np.float32)])])
    blob = read_binary_weights(path)["conv"].blobs[0]
    assert np.array_equal(blob.data, array)
    assert not blob.data.flags.writeable and not blob.data.flags.owndata


def test_writer_files_with_legacy_empty_and_scalar_blobs(tmp_path):
    rng = np.random.default_rng(0)
    layers = [
        ("conv", "Convolution", [rng.standard_normal((4, 3, 2, 2)).astype(np.float32), np.arange(4, dtype=np.float32)]),
        ("ip", "InnerProduct", [rng.standard_normal((5, 7)).astype(np.float32)]),
        ("empty", "Scale", [np.zeros((0, 3), np.float32)]),
        ("scalar", "Power", [np.array(2.5, np.float32)]),
        ("no_blobs", "ReLU", []),
    ]
    for legacy in (False, True):
        path = tmp_path / f"legacy{legacy}.caffemodel"
        write_caffemodel(path, layers if not legacy else layers[:2], legacy_shapes=legacy)
        weights = assert_paths_agree(path)
        assert all(b.legacy == legacy for lw in weights.values() for b in lw.blobs)


def test_unpacked_floats_become_one_strided_view(tmp_path):
    values = [1.5, -2.0, 3.25, 0.0, 7.0, -0.5]
    payload = layer("fc", "InnerProduct", shape_field(2, 3) + unpacked_floats(values))
    data = assert_paths_agree(write_bytes(tmp_path, payload))["fc"].blobs[0].data
    assert data.tolist() == [values[:3], values[3:]]
    assert not data.flags.owndata and data.strides == (15, 5)


def test_data_split_across_packed_and_unpacked_fields(tmp_path):
    blob = (
        shape_field(6)
        + packed(DATA, [1, 2], "f")
        + unpacked_floats([3])
        + varint_field(99, 5)
        + unpacked_floats([4, 5])
    )
    blob += packed(DATA, [6], "f")
    weights = assert_paths_agree(write_bytes(tmp_path, layer("x", "Bias", blob)))
    assert weights["x"].blobs[0].data.tolist() == [1, 2, 3, 4, 5, 6]


def test_double_data_packed_and_unpacked(tmp_path):
    values = [0.1, 1e-40, 3e38, -2.5]
    packed_blob = shape_field(4) + packed(DOUBLE_DATA, values, "d")
    unpacked_blob = shape_field(2, 2) + unpacked_doubles(values)
    payload = layer("a", "Scale", packed_blob) + layer("b", "Scale", unpacked_blob)
    weights = assert_paths_agree(write_bytes(tmp_path, payload))
    assert weights["a"].blobs[0].data.dtype == np.float32


def test_float_data_wins_over_double_data(tmp_path):
    blob = shape_field(2) + packed(DOUBLE_DATA, [9.0, 9.0], "d") + packed(DATA, [1.0, 2.0], "f")
    weights = assert_paths_agree(write_bytes(tmp_path, layer("x", "Bias", blob)))
    assert weights["x"].blobs[0].data.tolist() == [1.0, 2.0]


def test_legacy_dims_shape_merging_and_skipped_fields(tmp_path):
    legacy = varint_field(NUM, 1) + varint_field(CHANNELS, 2) + varint_field(HEIGHT, 1) + varint_field(WIDTH, 3)
    legacy_blob = legacy + packed(DATA, range(6), "f") + packed(DIFF, [7.0] * 6, "f")
    # Two shape fields merge (their dims append); unknown fields of every wire type are skipped.
    unknown = varint_field(50, 3) + tag(51, FIXED64) + bytes(8) + tag(52, FIXED32) + bytes(4) + text_field(53, "x")
    merged_blob = shape_field(2) + unknown + shape_field(3) + packed(DATA, range(6), "f")
    layer_param = text_field(3, "bottom") + _length_delimited(106, varint_field(1, 64))  # a nested *_param
    payload = text_field(1, "net") + layer("legacy", "Convolution", legacy_blob, extra=layer_param)
    payload += layer("merged", "InnerProduct", merged_blob)
    weights = assert_paths_agree(write_bytes(tmp_path, payload))
    assert weights["legacy"].blobs[0].shape == (1, 2, 1, 3) and weights["legacy"].blobs[0].legacy
    assert weights["merged"].blobs[0].shape == (2, 3)


def test_empty_data_scalars_and_zero_legacy_dims(tmp_path):
    # No shape message and no legacy field: a scalar (Caffe's Blob::FromProto); a legacy field
    # present, even 0, makes the shape num/channels/height/width.
    zero_dim = shape_field(0, 4)
    scalar = packed(DATA, [2.5], "f")
    zero_legacy = varint_field(NUM, 0)
    payload = layer("a", "Scale", zero_dim) + layer("b", "Power", scalar) + layer("c", "Scale", zero_legacy)
    weights = assert_paths_agree(write_bytes(tmp_path, payload))
    assert weights["a"].blobs[0].shape == (0, 4)
    assert weights["b"].blobs[0].shape == () and not weights["b"].blobs[0].legacy
    assert weights["c"].blobs[0].shape == (0, 0, 0, 0) and weights["c"].blobs[0].legacy


def test_blob_without_fields_is_a_scalar_without_its_value(tmp_path):
    fast, plain = both_paths(write_bytes(tmp_path, layer("x", "Power", b"")))
    assert isinstance(fast, ModelFileError) and isinstance(plain, ModelFileError)


def test_count_mismatch_is_a_model_file_error(tmp_path):
    for blob in (
        shape_field(2, 2) + packed(DATA, [1, 2, 3], "f"),
        shape_field() + packed(DATA, [1, 2], "f"),
        legacy_negative(),
    ):
        path = write_bytes(tmp_path, layer("x", "Scale", blob))
        fast, plain = both_paths(path)
        assert isinstance(fast, ModelFileError) and isinstance(plain, ModelFileError)
        assert "layer 'x'" in str(fast)


def legacy_negative() -> bytes:
    return (
        varint_field(NUM, -1)
        + varint_field(CHANNELS, -1)
        + varint_field(HEIGHT, 1)
        + varint_field(WIDTH, 1)
        + packed(DATA, [1.0], "f")
    )


def test_v1_layers_with_enum_types(tmp_path):
    blob = shape_field(2) + packed(DATA, [1, 2], "f")
    legacy = varint_field(NUM, 1) + varint_field(CHANNELS, 1) + varint_field(HEIGHT, 1) + varint_field(WIDTH, 2)
    payload = v1_layer("conv", V1_CONVOLUTION, blob) + v1_layer(
        "ip", V1_INNER_PRODUCT, legacy + packed(DATA, [3, 4], "f")
    )
    # An unknown enum number keeps the type read before it (a closed proto2 enum).
    odd = text_field(V1_NAME, "odd") + varint_field(V1_TYPE, V1_CONVOLUTION) + varint_field(V1_TYPE, 999)
    payload += _length_delimited(NET_LAYERS, odd) + layer("new", "Bias", blob)
    weights = assert_paths_agree(write_bytes(tmp_path, payload))
    assert [w.type for w in weights.values()] == ["Bias", "Convolution", "InnerProduct", "Convolution"]


def test_duplicate_names_keep_first_position_and_last_value(tmp_path):
    first, second = shape_field(1) + packed(DATA, [1.0], "f"), shape_field(1) + packed(DATA, [2.0], "f")
    payload = layer("a", "Bias", first) + layer("b", "Bias", first) + layer("a", "Scale", second)
    weights = assert_paths_agree(write_bytes(tmp_path, payload))
    assert list(weights) == ["a", "b"] and weights["a"].blobs[0].data.tolist() == [2.0]


@pytest.mark.parametrize(
    "payload",
    [
        # A group (wire types 3/4) around an unknown field.
        layer("g", "Bias", shape_field(1) + packed(DATA, [1.0], "f"), extra=tag(60, START_GROUP) + tag(60, END_GROUP)),
        # A name that is not UTF-8.
        layer("x", "Bias", shape_field(1) + packed(DATA, [1.0], "f"), extra=text_field(NAME, b"\xff\xfe")),
        # A known field with another wire type (protobuf keeps it as an unknown field).
        layer("x", "Bias", shape_field(1) + packed(DATA, [1.0], "f"), extra=varint_field(NAME, 3)),
        b"",
    ],
    ids=["group", "not-utf8", "wire-type", "empty-file"],
)
def test_encodings_left_to_protobuf(tmp_path, payload):
    path = write_bytes(tmp_path, payload)
    fast, plain = both_paths(path)
    assert type(fast) is type(plain)
    if not isinstance(plain, ModelFileError):
        assert_same_weights(fast, plain)


def test_truncated_files_at_every_offset(tmp_path):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((3, 2, 2, 2)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    payload = layer_bytes("conv", "Convolution", arrays) + layer(
        "u", "Bias", shape_field(3) + unpacked_floats([1, 2, 3])
    )
    payload += v1_layer("v1", V1_INNER_PRODUCT, blob_bytes(np.ones((2, 2), np.float32), legacy=True))
    refused = 0
    for size in range(1, len(payload)):
        path = write_bytes(tmp_path, payload[:size])
        fast, _ = both_paths(path)
        assert_paths_agree(path)
        refused += isinstance(fast, ModelFileError)
    assert refused > len(payload) * 0.9


@pytest.mark.parametrize("seed", range(3))
def test_corrupted_bytes_read_as_protobuf_reads_them(tmp_path, seed):
    """Flipped bytes give the weights protobuf's own parser reads, bit for bit, or a ModelFileError
    where protobuf refuses the file too; never another exception."""
    rng = np.random.default_rng(seed)
    payload = bytearray(layer_bytes("conv", "Convolution", [np.ones((2, 2, 3, 3), np.float32)]) * 2)
    read = 0
    for _ in range(200):
        corrupt = bytearray(payload)
        for position in rng.integers(0, len(corrupt), 3):
            corrupt[position] = int(rng.integers(0, 256))
        read += not isinstance(assert_paths_agree(write_bytes(tmp_path, bytes(corrupt))), ModelFileError)
    assert read > 50  # most flips land in float data: the comparison above is not only of refusals


def test_not_a_caffemodel(tmp_path):
    path = write_bytes(tmp_path, b'name: "net"\nlayer { name: "x" }\n')
    fast, plain = both_paths(path)
    assert isinstance(fast, ModelFileError) and isinstance(plain, ModelFileError)
    assert "truncated or corrupt" in str(fast)


def test_views_outlive_the_file_and_released_pages(tmp_path):
    from caffe2keras.arrays import release_pages

    array = np.random.default_rng(2).standard_normal((64, 1024)).astype(np.float32)
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, [("ip", "InnerProduct", [array])])
    weights = read_binary_weights(path)
    path.unlink()  # the mapping keeps the file's pages
    gc.collect()
    data = weights["ip"].blobs[0].data
    release_pages(data)  # resident pages are dropped, values are read back
    assert np.array_equal(data, array)


def test_scanner_refuses_malformed_varints():
    with pytest.raises(wire.WireError):
        wire.scan_net(tag(NET_LAYER, LENGTH) + b"\xff" * 11)
    with pytest.raises(wire.WireError):
        wire.scan_net(tag(NET_LAYER, 7) + b"\x00")

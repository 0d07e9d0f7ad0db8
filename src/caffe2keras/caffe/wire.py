"""A scanner of the protobuf wire format of ``.caffemodel`` files.

protobuf turns every float of a blob into a Python object (VGG16: 138M of
them); this scanner reads only the structure: NetParameter -> each
LayerParameter (current ``layer`` and V1 ``layers``) -> its name, type and
BlobProtos, whose shape fields are decoded and whose float payloads are
located, not read. :func:`blob_values` then gives each payload as a numpy
view of the file's bytes (packed floats: zero copy; unpacked floats: a
strided view; doubles and split payloads: one conversion).

Field numbers come from the schema's descriptors. The scanner gives
protobuf's result or raises: :class:`WireError` for bytes protobuf would
refuse too (truncated, malformed), :class:`Unhandled` for valid encodings it
does not decode (groups, a known field with an unexpected wire type, names
that are not UTF-8), where the caller uses protobuf itself. Fields it does not
need (layer parameters, ``diff``) are skipped by their length, unparsed: a file
whose only flaw is inside them is read, where protobuf refuses it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from caffe2keras.caffe.limits import MAX_BLOB_AXES
from caffe2keras.caffe.schema import schema

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = range(6)
MAX_VARINT_BYTES = 10
# Far beyond any real net, and a bound on the work a file of tiny hostile entries can cause.
MAX_LAYERS = 100_000


class WireError(Exception):
    """Bytes that are not a valid protobuf encoding."""


class Unhandled(Exception):
    """A valid encoding this scanner leaves to protobuf."""


@dataclass(frozen=True)
class Run:
    """``count`` little-endian values from byte ``offset`` on, ``stride`` bytes apart (0 for a single one)."""

    offset: int
    count: int
    stride: int


@dataclass
class BlobRecord:
    dims: list[int] = field(default_factory=list)  # BlobShape.dim
    legacy_dims: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # num, channels, height, width
    legacy_present: bool = False  # any of the legacy fields is on the wire
    floats: list[Run] = field(default_factory=list)
    doubles: list[Run] = field(default_factory=list)


@dataclass
class LayerRecord:
    name: str = ""
    type: str | int = ""  # a V1 layer's type is its enum number
    blobs: list[BlobRecord] = field(default_factory=list)
    v1: bool = False


def read_varint(buffer, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(MAX_VARINT_BYTES):
        if pos >= end:
            raise WireError(f"a varint is cut off at byte {pos}")
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    raise WireError(f"a varint at byte {pos - MAX_VARINT_BYTES} is longer than {MAX_VARINT_BYTES} bytes")


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def fields(buffer, pos: int, end: int):
    """Yield ``(field number, wire type, value)`` for each field in ``buffer[pos:end]``.

    ``value`` is the integer of a varint, or the ``(start, stop)`` of a
    length-delimited or fixed-size field's bytes.
    """
    while pos < end:
        tag, pos = read_varint(buffer, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise WireError(f"field number 0 at byte {pos}")
        if wire == VARINT:
            value, pos = read_varint(buffer, pos, end)
            yield number, wire, value
            continue
        if wire == LENGTH:
            size, pos = read_varint(buffer, pos, end)
        elif wire == FIXED32:
            size = 4
        elif wire == FIXED64:
            size = 8
        elif wire in (START_GROUP, END_GROUP):
            raise Unhandled(f"a group (field {number}) at byte {pos}")
        else:
            raise WireError(f"invalid wire type {wire} (field {number}) at byte {pos}")
        if size > end - pos:
            raise WireError(f"field {number} at byte {pos} needs {size} bytes; {end - pos} remain")
        yield number, wire, (pos, pos + size)
        pos += size


def _expect(wire: int, expected: int, what: str) -> None:
    if wire != expected:
        raise Unhandled(f"{what} with wire type {wire}")


@dataclass(frozen=True)
class _Numbers:
    """The field numbers the scanner needs, read from the schema."""

    net_layer: int
    net_layers: int
    name: int
    type: int
    blobs: int
    v1_name: int
    v1_type: int
    v1_blobs: int
    v1_types: frozenset
    shape: int
    dim: int
    data: int
    double_data: int
    legacy: tuple[int, int, int, int]

    @classmethod
    def from_schema(cls) -> _Numbers:
        s = schema()

        def number(message, name):
            return message.DESCRIPTOR.fields_by_name[name].number

        v1 = s.V1LayerParameter
        blob = s.BlobProto
        return cls(
            net_layer=number(s.NetParameter, "layer"),
            net_layers=number(s.NetParameter, "layers"),
            name=number(s.LayerParameter, "name"),
            type=number(s.LayerParameter, "type"),
            blobs=number(s.LayerParameter, "blobs"),
            v1_name=number(v1, "name"),
            v1_type=number(v1, "type"),
            v1_blobs=number(v1, "blobs"),
            v1_types=frozenset(v1.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_number),
            shape=number(blob, "shape"),
            dim=number(s.BlobShape, "dim"),
            data=number(blob, "data"),
            double_data=number(blob, "double_data"),
            legacy=tuple(number(blob, n) for n in ("num", "channels", "height", "width")),
        )


def scan_net(buffer, wanted: Collection[str] | None = None) -> tuple[list[LayerRecord], int]:
    """The layers of a binary NetParameter named in ``wanted`` (None: every one), the current
    ``layer`` entries, then the V1 ``layers``; and how many layers the file holds in all.

    The blobs of a layer not wanted are not decoded (as Caffe reads only the net's layers' blobs).
    """
    numbers = _Numbers.from_schema()
    current, v1, count = [], [], 0
    for number, wire, value in fields(buffer, 0, len(buffer)):
        if number not in (numbers.net_layer, numbers.net_layers):
            continue
        is_v1 = number == numbers.net_layers
        _expect(wire, LENGTH, "NetParameter.layers" if is_v1 else "NetParameter.layer")
        count += 1
        if count > MAX_LAYERS:
            raise WireError(f"the file holds more than {MAX_LAYERS:,} layers")
        layer = _scan_layer(buffer, *value, numbers, v1=is_v1, wanted=wanted)
        if layer is not None:
            (v1 if is_v1 else current).append(layer)
    return current + v1, count


def _scan_layer(
    buffer, start: int, stop: int, numbers: _Numbers, v1: bool, wanted: Collection[str] | None
) -> LayerRecord | None:
    layer = LayerRecord(type=0 if v1 else "", v1=v1)
    name_number, type_number, blobs_number = (
        (numbers.v1_name, numbers.v1_type, numbers.v1_blobs) if v1 else (numbers.name, numbers.type, numbers.blobs)
    )
    blob_spans = []
    for number, wire, value in fields(buffer, start, stop):
        if number == name_number:
            _expect(wire, LENGTH, "a layer name")
            layer.name = _text(buffer, value)
        elif number == type_number:
            if v1:
                _expect(wire, VARINT, "a V1 layer type")
                enum_value = _signed(value, 32)
                # A closed proto2 enum keeps its previous value when it reads an unknown number.
                if enum_value in numbers.v1_types:
                    layer.type = enum_value
            else:
                _expect(wire, LENGTH, "a layer type")
                layer.type = _text(buffer, value)
        elif number == blobs_number:
            _expect(wire, LENGTH, "a layer blob")
            blob_spans.append(value)
    if wanted is not None and layer.name not in wanted:
        return None
    layer.blobs = [_scan_blob(buffer, *span, numbers) for span in blob_spans]
    return layer


def _text(buffer, span: tuple[int, int]) -> str:
    try:
        return bytes(buffer[span[0] : span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise Unhandled(f"a string at byte {span[0]} that is not UTF-8") from None


def _scan_blob(buffer, start: int, stop: int, numbers: _Numbers) -> BlobRecord:
    blob = BlobRecord()
    for number, wire, value in fields(buffer, start, stop):
        if number == numbers.data:
            _add_values(blob.floats, wire, value, FIXED32, 4, "BlobProto.data")
        elif number == numbers.double_data:
            _add_values(blob.doubles, wire, value, FIXED64, 8, "BlobProto.double_data")
        elif number == numbers.shape:
            _expect(wire, LENGTH, "BlobProto.shape")
            # Repeated occurrences of a message field merge: their dims append.
            blob.dims += _scan_dims(buffer, *value, numbers.dim)
            if len(blob.dims) > MAX_BLOB_AXES:
                raise WireError(f"a blob at byte {start} declares more than {MAX_BLOB_AXES} axes (Caffe's limit)")
        elif number in numbers.legacy:
            _expect(wire, VARINT, "a legacy blob dimension")
            blob.legacy_dims[numbers.legacy.index(number)] = _signed(value, 32)
            blob.legacy_present = True
    return blob


def _add_values(runs: list[Run], wire: int, value, single_wire: int, itemsize: int, what: str) -> None:
    """Append one field's values: a packed array, or one unpacked value (consecutive ones join a strided run)."""
    if wire == LENGTH:
        start, stop = value
        if (stop - start) % itemsize:
            raise WireError(f"{what} at byte {start} holds {stop - start} bytes, not a multiple of {itemsize}")
        if stop > start:
            runs.append(Run(start, (stop - start) // itemsize, itemsize))
        return
    _expect(wire, single_wire, what)
    start, _ = value
    if runs:
        last = runs[-1]
        if last.count == 1 and last.stride == 0:
            runs[-1] = Run(last.offset, 2, start - last.offset)
            return
        if last.stride and start == last.offset + last.count * last.stride:
            runs[-1] = Run(last.offset, last.count + 1, last.stride)
            return
    runs.append(Run(start, 1, 0))


def _scan_dims(buffer, start: int, stop: int, dim_number: int) -> list[int]:
    dims = []
    for number, wire, value in fields(buffer, start, stop):
        if number != dim_number:
            continue
        if wire == VARINT:
            dims.append(_signed(value, 64))
            if len(dims) > MAX_BLOB_AXES:
                raise WireError(f"a blob shape at byte {start} declares more than {MAX_BLOB_AXES} axes (Caffe's limit)")
        elif wire == LENGTH:
            pos, packed_end = value
            if packed_end - pos > MAX_VARINT_BYTES * MAX_BLOB_AXES:  # more varints than Caffe allows axes
                raise WireError(f"a blob shape at byte {pos} declares more than {MAX_BLOB_AXES} axes (Caffe's limit)")
            while pos < packed_end:
                dim, pos = read_varint(buffer, pos, packed_end)
                dims.append(_signed(dim, 64))
        else:
            raise Unhandled(f"BlobShape.dim with wire type {wire}")
    return dims


def blob_values(array: np.ndarray, blob: BlobRecord) -> np.ndarray:
    """A blob's values as protobuf gives them (``data``, or ``double_data`` when ``data`` is empty), as float32.

    ``array`` is the file as a uint8 array; packed floats come back as a view of it.
    """
    runs, dtype = (blob.floats, "<f4") if blob.floats else (blob.doubles, "<f8")
    parts = [
        np.ndarray((run.count,), dtype, buffer=array, offset=run.offset, strides=(run.stride or 4,)) for run in runs
    ]
    values = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.empty(0, dtype)
    return values if dtype == "<f4" else values.astype(np.float32)

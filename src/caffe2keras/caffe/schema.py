"""The Caffe schema, compiled from ``caffe.proto`` at import time.

protoc's generated Python code pins the protobuf runtime to the version that
generated it, which would fight with whatever protobuf TensorFlow or other
packages need. The schema uses a small, fixed part of proto2 (messages,
enums, scalar and message fields, ``default`` and ``packed`` options), so this
module compiles that part itself into a ``FileDescriptorProto`` and lets the
installed protobuf runtime build the message classes. Plugins add fields to
any message with proto2 ``extend`` blocks (see :func:`extend_schema`); they are
merged into the message as ordinary fields, the way Caffe forks edit
``caffe.proto``.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from caffe2keras.errors import SchemaError

PROTO_PATH = Path(__file__).with_name("caffe.proto")
PACKAGE = "caffe"

_FDP = descriptor_pb2.FieldDescriptorProto
SCALAR_TYPES = {
    "double": _FDP.TYPE_DOUBLE,
    "float": _FDP.TYPE_FLOAT,
    "int64": _FDP.TYPE_INT64,
    "uint64": _FDP.TYPE_UINT64,
    "int32": _FDP.TYPE_INT32,
    "uint32": _FDP.TYPE_UINT32,
    "fixed64": _FDP.TYPE_FIXED64,
    "fixed32": _FDP.TYPE_FIXED32,
    "sfixed32": _FDP.TYPE_SFIXED32,
    "sfixed64": _FDP.TYPE_SFIXED64,
    "sint32": _FDP.TYPE_SINT32,
    "sint64": _FDP.TYPE_SINT64,
    "bool": _FDP.TYPE_BOOL,
    "string": _FDP.TYPE_STRING,
    "bytes": _FDP.TYPE_BYTES,
}
LABELS = {
    "optional": _FDP.LABEL_OPTIONAL,
    "required": _FDP.LABEL_REQUIRED,
    "repeated": _FDP.LABEL_REPEATED,
}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_]))
  | (?P<word>[-+]?[A-Za-z0-9_.]+)
  | (?P<symbol>[{}\[\]=;,<>()])
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokenize(text: str, source: str) -> list[tuple[str, int]]:
    tokens = []
    pos, line = 0, 1  # the line is counted as the tokens pass: counting from the start each time is quadratic
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SchemaError(f"{source}:{line}: unexpected character {text[pos]!r} in the schema.")
        if match.lastgroup != "space":
            tokens.append((match.group(), line))
        line += text.count("\n", pos, match.end())
        pos = match.end()
    return tokens


class _Parser:
    """Recursive-descent parser for the proto2 subset the Caffe schema uses."""

    def __init__(self, text: str, source: str):
        self.tokens = _tokenize(text, source)
        self.source = source
        self.pos = 0

    def _fail(self, message: str):
        line = self.tokens[min(self.pos, len(self.tokens) - 1)][1] if self.tokens else 0
        raise SchemaError(f"{self.source}:{line}: {message}")

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None:
            self._fail(f"unexpected end of file, expected {expected or 'more'}.")
        if expected is not None and token != expected:
            self._fail(f"expected {expected!r}, found {token!r}.")
        self.pos += 1
        return token

    def parse_file(self) -> _File:
        parsed = _File()
        while self.peek() is not None:
            keyword = self.take()
            if keyword == "syntax":
                self.take("=")
                syntax = self.take().strip("'\"")
                if syntax != "proto2":
                    self._fail(f"only proto2 is supported, found syntax {syntax!r}.")
                self.take(";")
            elif keyword == "package":
                package = self.take()
                if package != PACKAGE:
                    self._fail(f"the package must be {PACKAGE!r}, found {package!r}.")
                self.take(";")
            elif keyword == "option":
                while self.take() != ";":
                    pass
            elif keyword == "message":
                parsed.messages.append(self.parse_message())
            elif keyword == "enum":
                parsed.enums.append(self.parse_enum())
            elif keyword == "extend":
                target = self.take()
                parsed.extensions.append((target, self.parse_fields_block()))
            else:
                self._fail(f"unsupported statement {keyword!r}.")
        return parsed

    def parse_message(self) -> descriptor_pb2.DescriptorProto:
        message = descriptor_pb2.DescriptorProto(name=self.take())
        self.take("{")
        while self.peek() != "}":
            keyword = self.peek()
            if keyword == "message":
                self.take()
                message.nested_type.append(self.parse_message())
            elif keyword == "enum":
                self.take()
                message.enum_type.append(self.parse_enum())
            elif keyword == "reserved":
                while self.take() != ";":
                    pass
            else:
                message.field.append(self.parse_field())
        self.take("}")
        return message

    def parse_fields_block(self) -> list[descriptor_pb2.FieldDescriptorProto]:
        self.take("{")
        fields = []
        while self.peek() != "}":
            fields.append(self.parse_field())
        self.take("}")
        return fields

    def parse_enum(self) -> descriptor_pb2.EnumDescriptorProto:
        enum = descriptor_pb2.EnumDescriptorProto(name=self.take())
        self.take("{")
        while self.peek() != "}":
            name = self.take()
            self.take("=")
            enum.value.add(name=name, number=int(self.take()))
            self.take(";")
        self.take("}")
        return enum

    def parse_field(self) -> descriptor_pb2.FieldDescriptorProto:
        label = self.take()
        if label not in LABELS:
            self._fail(f"expected a field label (optional, required, repeated), found {label!r}.")
        type_name = self.take()
        proto = _FDP(name=self.take(), label=LABELS[label])
        self.take("=")
        proto.number = int(self.take())
        if type_name in SCALAR_TYPES:
            proto.type = SCALAR_TYPES[type_name]
        else:
            proto.type_name = type_name  # resolved once every type is known
        if self.peek() == "[":
            self.take("[")
            while True:
                option = self.take()
                self.take("=")
                value = self.take()
                if option == "default":
                    if value[:1] in "'\"":
                        value = value[1:-1].encode().decode("unicode_escape")
                    proto.default_value = value
                elif option == "packed":
                    proto.options.packed = value == "true"
                else:
                    self._fail(f"unsupported field option {option!r}.")
                if self.peek() != ",":
                    break
                self.take(",")
            self.take("]")
        self.take(";")
        return proto


@dataclass
class _File:
    messages: list = field(default_factory=list)
    enums: list = field(default_factory=list)
    extensions: list = field(default_factory=list)


def _declared_types(file: descriptor_pb2.FileDescriptorProto) -> dict[str, str]:
    """Fully qualified name -> "message" or "enum"."""
    kinds: dict[str, str] = {}

    def visit(message, scope):
        name = f"{scope}.{message.name}"
        kinds[name] = "message"
        for enum in message.enum_type:
            kinds[f"{name}.{enum.name}"] = "enum"
        for nested in message.nested_type:
            visit(nested, name)

    for enum in file.enum_type:
        kinds[f".{PACKAGE}.{enum.name}"] = "enum"
    for message in file.message_type:
        visit(message, f".{PACKAGE}")
    return kinds


def _resolve_types(file: descriptor_pb2.FileDescriptorProto) -> None:
    kinds = _declared_types(file)

    def resolve(field_proto, scope):
        if not field_proto.type_name or field_proto.type_name.startswith("."):
            return
        # proto scoping: innermost enclosing scope first.
        parts = scope.split(".")
        for depth in range(len(parts), 1, -1):
            candidate = ".".join(parts[:depth]) + "." + field_proto.type_name
            if candidate in kinds:
                field_proto.type_name = candidate
                field_proto.type = _FDP.TYPE_ENUM if kinds[candidate] == "enum" else _FDP.TYPE_MESSAGE
                return
        raise SchemaError(f"field {scope[1:]}.{field_proto.name}: unknown type {field_proto.type_name!r}.")

    def visit(message, scope):
        name = f"{scope}.{message.name}"
        for field_proto in message.field:
            resolve(field_proto, name)
        for nested in message.nested_type:
            visit(nested, name)

    for message in file.message_type:
        visit(message, f".{PACKAGE}")


def _find_message(file, dotted: str) -> descriptor_pb2.DescriptorProto | None:
    candidates = file.message_type
    found = None
    for part in dotted.removeprefix(f"{PACKAGE}.").split("."):
        found = next((m for m in candidates if m.name == part), None)
        if found is None:
            return None
        candidates = found.nested_type
    return found


def compile_schema(texts: tuple[tuple[str, str], ...]) -> descriptor_pb2.FileDescriptorProto:
    """Compile ``(source_name, proto_text)`` pairs into one file descriptor.

    The first text is the base schema; later ones may add messages and enums
    and ``extend`` existing messages with new fields.
    """
    file = descriptor_pb2.FileDescriptorProto(name="caffe.proto", package=PACKAGE, syntax="proto2")
    extensions = []
    for source, text in texts:
        parsed = _Parser(text, source).parse_file()
        known = {m.name for m in file.message_type} | {e.name for e in file.enum_type}
        for declared in parsed.messages + parsed.enums:
            if declared.name in known:
                raise SchemaError(f"{source}: {declared.name!r} is already defined in the schema.")
        file.message_type.extend(parsed.messages)
        file.enum_type.extend(parsed.enums)
        extensions.extend((source, target, fields) for target, fields in parsed.extensions)
    for source, target, fields in extensions:
        message = _find_message(file, target)
        if message is None:
            raise SchemaError(f"{source}: cannot extend unknown message {target!r}.")
        for new in fields:
            for existing in message.field:
                if new.name == existing.name or new.number == existing.number:
                    raise SchemaError(
                        f"{source}: field {new.name} = {new.number} collides with "
                        f"{target}.{existing.name} = {existing.number}."
                    )
            message.field.append(new)
    _resolve_types(file)
    return file


class Schema:
    """The message classes of one compiled schema, as attributes (``schema.NetParameter``)."""

    def __init__(self, file_proto: descriptor_pb2.FileDescriptorProto):
        self.file_proto = file_proto
        self.pool = descriptor_pool.DescriptorPool()
        try:
            self.pool.Add(file_proto)
        except Exception as exc:  # the runtime's own validation: collisions, bad defaults
            raise SchemaError(f"the Caffe schema does not compile: {exc}") from exc
        self._classes: dict[str, type] = {}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._classes:
            try:
                descriptor = self.pool.FindMessageTypeByName(f"{PACKAGE}.{name}")
            except KeyError:
                raise AttributeError(f"the Caffe schema has no message {name!r}") from None
            self._classes[name] = message_factory.GetMessageClass(descriptor)
        return self._classes[name]


def enum_name(message, field: str) -> str:
    """The schema's name for the value of enum field ``field`` (``"MAX"`` for ``pool: MAX``, not ``0``)."""
    return message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[getattr(message, field)].name


_extra_texts: list[tuple[str, str]] = []


@functools.lru_cache(maxsize=1)
def _compiled(texts: tuple[tuple[str, str], ...]) -> Schema:
    return Schema(compile_schema(texts))


@functools.cache
def _base_text() -> tuple[str, str]:
    return (PROTO_PATH.name, PROTO_PATH.read_text())


def schema() -> Schema:
    """The current schema: ``caffe.proto`` plus every registered extension."""
    return _compiled((_base_text(), *_extra_texts))


def extend_schema(proto_text: str, source: str = "<extension>") -> None:
    """Add messages, enums and fields to the Caffe schema, as a fork's ``caffe.proto`` does.

    ``proto_text`` is proto2 text in package ``caffe``: new ``message`` and
    ``enum`` definitions, and ``extend`` blocks that add fields to existing
    messages, for example::

        message ChannelGateParameter { optional float gain = 1 [default = 1]; }
        extend LayerParameter { optional ChannelGateParameter channel_gate_param = 5001; }

    The new fields are then read from prototxt and caffemodel files like
    Caffe's own (``channel_gate_param { gain: 2 }``; a V1 ``layers {}`` net needs
    the field on ``V1LayerParameter`` too) and reach converters as
    ``node.param.channel_gate_param``. Use the field number the fork uses, so
    its binary files read correctly. Adding the same text again does nothing,
    so a plugin module may call this at import.

    Raises:
        SchemaError: the text does not parse, or clashes with the schema
            (a name or field number already taken). The schema is left unchanged.
    """
    if any(text == proto_text for _, text in _extra_texts):
        return
    candidate = (_base_text(), *_extra_texts, (source, proto_text))
    _compiled.cache_clear()
    try:
        _compiled(candidate)
    except SchemaError:
        _compiled.cache_clear()
        raise
    _extra_texts.append((source, proto_text))


@contextlib.contextmanager
def schema_snapshot() -> Iterator[None]:
    """Remove, on leaving the block, every extension :func:`extend_schema` added inside it."""
    texts = list(_extra_texts)
    try:
        yield
    finally:
        _extra_texts[:] = texts

"""Read a net definition (``.prototxt``) into a current-format NetParameter."""

from __future__ import annotations

import os
import re

from google.protobuf import text_format

from caffe2keras.caffe.schema import schema
from caffe2keras.caffe.upgrade import upgrade_net
from caffe2keras.errors import ModelFileError

_UNKNOWN_FIELD = re.compile(r'Message type "caffe\.(\w+)" has no field named "(\w+)"')


def _parse_error_hint(message: str) -> str:
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown is None:
        return ""
    message_type, name = unknown.groups()
    if message_type != "NetParameter" and name in schema().NetParameter.DESCRIPTOR.fields_by_name:
        # A net-level field ("layer", "input"...) inside a layer: the previous block is unclosed.
        return " A closing '}' is probably missing before this line."
    return (
        " The field may belong to a Caffe fork that caffe2keras does not know; add it with caffe2keras.extend_schema()."
    )


def parse_net_text(text: str, source: str = "<prototxt>"):
    """Parse prototxt text (current or V1 format) into a current-format NetParameter."""
    net = schema().NetParameter()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as exc:
        message = re.sub(r"^\d+:\d+ : ", "", str(exc)).rstrip(".")
        where = f"line {exc.GetLine()}, column {exc.GetColumn()}: " if exc.GetLine() else ""
        raise ModelFileError(
            source, f"not a valid Caffe prototxt: {where}{message}.{_parse_error_hint(message)}"
        ) from None
    return upgrade_net(net, source)


def read_text(path: str | os.PathLike, not_text: str) -> str:
    """A UTF-8 text file; ``not_text`` says what the file should have been when it is not text."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise ModelFileError(path, "no such file.") from None
    except UnicodeDecodeError:
        raise ModelFileError(path, f"not a text file; {not_text}") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot read the file: {exc.strerror}.") from None


def read_net(path: str | os.PathLike):
    """Read a ``.prototxt`` file into a current-format NetParameter."""
    text = read_text(path, "a net definition is a .prototxt (weights go second).")
    return parse_net_text(text, str(path))

"""Read a net definition (``.prototxt``) into a current-format NetParameter."""

from __future__ import annotations

import os

from google.protobuf import text_format

from caffe2keras.caffe.schema import schema
from caffe2keras.caffe.upgrade import upgrade_net
from caffe2keras.errors import ModelFileError


def parse_net_text(text: str, source: str = "<prototxt>"):
    """Parse prototxt text (current or V1 format) into a current-format NetParameter."""
    net = schema().NetParameter()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as exc:
        hint = ""
        if "has no field named" in str(exc):
            hint = (
                " The field may belong to a Caffe fork that caffe2keras does not know; "
                "add it with caffe2keras.extend_schema()."
            )
        raise ModelFileError(source, f"not a valid Caffe prototxt: {exc}.{hint}") from None
    return upgrade_net(net, source)


def read_net(path: str | os.PathLike):
    """Read a ``.prototxt`` file into a current-format NetParameter."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ModelFileError(path, "no such file.") from None
    except UnicodeDecodeError:
        raise ModelFileError(
            path, "not a text file; a net definition is a .prototxt (weights go second)."
        ) from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot read the file: {exc.strerror}.") from None
    return parse_net_text(text, str(path))

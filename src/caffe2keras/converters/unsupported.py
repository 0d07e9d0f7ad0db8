"""Caffe types that caffe2keras deliberately does not convert, and why.

They are reported with every other unconvertible type before anything is
built. A converter registered for one of them (``register_converter``) wins.
"""

from __future__ import annotations

from caffe2keras.converters.base import LayerDoc, declare_unsupported


def _python_class(op) -> str:
    p = op.param.python_param
    return f"{p.module or '?'}.{p.layer or '?'}"


declare_unsupported(
    "Python",
    "caffe2keras never imports or runs a Python layer's code; register a converter for type 'Python' "
    "that builds what the layer computes (node.param.python_param gives module, layer and param_str)",
    detail=_python_class,
    doc=LayerDoc(
        "—",
        "**unsupported** unless you register a converter: its code is never imported or run (see [Custom layers](guide/custom-layers.md))",
    ),
)
declare_unsupported(
    "Filter",
    "its output's batch size is the number of non-zero selectors, known only from the data, which a "
    "compiled Keras graph (JAX, TensorFlow XLA) cannot express",
    doc=LayerDoc(
        "—",
        "**unsupported**: the output's batch size is the number of non-zero selectors, known only from the data, which a compiled Keras graph (JAX, XLA) cannot express",
    ),
)

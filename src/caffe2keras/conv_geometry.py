"""Caffe's convolution geometry (kernel, stride, pad, dilation, group), read and checked as Caffe's
set-up checks it: one rule for the Keras converters and the ONNX writer, without Keras."""

from __future__ import annotations

from dataclasses import dataclass

from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op, Shape
from caffe2keras.node import require


@dataclass(frozen=True)
class ConvGeometry:
    num_output: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pad: tuple[int, ...]
    dilation: tuple[int, ...]
    group: int
    bias_term: bool

    @property
    def extent(self) -> tuple[int, ...]:
        """The dilated kernel's span per axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))


def _per_axis(op: Op, spatial: int, name: str, repeated, h_name: str | None, default: int | None):
    """Caffe's rule: ``<name>_h``/``<name>_w`` (2-D only), else one value or one per axis."""
    p = op.param.convolution_param
    if h_name is not None and (p.HasField(f"{h_name}_h") or p.HasField(f"{h_name}_w")):
        require(
            spatial == 2,
            op,
            f"{h_name}_h/{h_name}_w apply to 2-D convolutions only",
            f"convolution_param.{h_name}_h",
            getattr(p, f"{h_name}_h"),
        )
        require(
            len(repeated) == 0,
            op,
            f"give either {name} or {h_name}_h/{h_name}_w, not both",
            f"convolution_param.{name}",
            list(repeated),
        )
        return (getattr(p, f"{h_name}_h"), getattr(p, f"{h_name}_w"))
    require(
        len(repeated) in ((1, spatial) if default is None else (0, 1, spatial)),
        op,
        f"{name} must be given once or once per spatial axis ({spatial})",
        f"convolution_param.{name}",
        list(repeated),
    )
    if not repeated:
        return (default,) * spatial
    return tuple(repeated) if len(repeated) == spatial else (repeated[0],) * spatial


def conv_geometry(op: Op, input_shape: Shape) -> ConvGeometry:
    p = op.param.convolution_param
    axis = p.axis % len(input_shape)
    require(
        axis == 1,
        op,
        "only convolutions over channel axis 1 are supported",
        "convolution_param.axis",
        p.axis,
        kind=UnsupportedParameterError,
    )
    spatial = len(input_shape) - 2
    require(
        spatial in (1, 2, 3),
        op,
        "convolutions need 1 to 3 spatial axes (input rank 3 to 5)",
        "bottom_shape",
        tuple(input_shape),
    )
    channels = input_shape[1]
    num_output, group = p.num_output, p.group
    if op.type == "ConvolutionDepthwise":
        require(
            spatial == 2, op, "ConvolutionDepthwise takes 4-D (N, C, H, W) inputs", "bottom_shape", tuple(input_shape)
        )
        num_output = group = channels
    geometry = ConvGeometry(
        num_output=num_output,
        kernel=_per_axis(op, spatial, "kernel_size", p.kernel_size, "kernel", None),
        stride=_per_axis(op, spatial, "stride", p.stride, "stride", 1),
        pad=_per_axis(op, spatial, "pad", p.pad, "pad", 0),
        dilation=_per_axis(op, spatial, "dilation", p.dilation, None, 1),
        group=group,
        bias_term=p.bias_term,
    )
    require(geometry.num_output > 0, op, "num_output must be positive", "convolution_param.num_output", p.num_output)
    for field, values in (
        ("kernel_size", geometry.kernel),
        ("stride", geometry.stride),
        ("dilation", geometry.dilation),
    ):
        require(all(v > 0 for v in values), op, f"{field} must be positive", f"convolution_param.{field}", values)
    require(
        geometry.group > 0 and channels % geometry.group == 0 and geometry.num_output % geometry.group == 0,
        op,
        f"group must divide the input channels ({channels}) and num_output ({geometry.num_output})",
        "convolution_param.group",
        geometry.group,
    )
    return geometry

"""The benchmark's nets, written as deploy prototxts by this project's own code.

VGG16 (Simonyan & Zisserman, configuration D) and ResNet-50 (He et al., the
original Caffe layout: every convolution followed by BatchNorm, an in-place
Scale and ReLU; the stride of a down-sampling block on its first 1x1
convolution), both on a 1x3x224x224 input and ending in Softmax.
"""

from __future__ import annotations

from collections.abc import Iterator


def _layer(name: str, kind: str, bottoms: list[str], tops: list[str], body: str = "") -> str:
    lines = [f'  name: "{name}"', f'  type: "{kind}"']
    lines += [f'  bottom: "{b}"' for b in bottoms] + [f'  top: "{t}"' for t in tops]
    if body:
        lines.append(f"  {body}")
    return "layer {\n" + "\n".join(lines) + "\n}\n"


def _input(name: str, shape: tuple[int, ...]) -> str:
    dims = " ".join(f"dim: {d}" for d in shape)
    return _layer(name, "Input", [], [name], f"input_param {{ shape {{ {dims} }} }}")


def _conv(name: str, bottom: str, outputs: int, kernel: int, stride: int = 1, pad: int = 0, bias: bool = True) -> str:
    params = f"num_output: {outputs} kernel_size: {kernel} stride: {stride} pad: {pad}"
    if not bias:
        params += " bias_term: false"
    return _layer(name, "Convolution", [bottom], [name], f"convolution_param {{ {params} }}")


def _in_place(name: str, kind: str, blob: str, body: str = "") -> str:
    return _layer(name, kind, [blob], [blob], body)


def _pool(name: str, bottom: str, method: str, kernel: int, stride: int) -> str:
    return _layer(
        name, "Pooling", [bottom], [name], f"pooling_param {{ pool: {method} kernel_size: {kernel} stride: {stride} }}"
    )


def _fc(name: str, bottom: str, outputs: int) -> str:
    return _layer(name, "InnerProduct", [bottom], [name], f"inner_product_param {{ num_output: {outputs} }}")


def vgg16_prototxt() -> str:
    parts = ['name: "VGG16"\n', _input("data", (1, 3, 224, 224))]
    blob = "data"
    for stage, (convs, channels) in enumerate(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), start=1):
        for index in range(1, convs + 1):
            name = f"conv{stage}_{index}"
            parts += [_conv(name, blob, channels, 3, pad=1), _in_place(f"relu{stage}_{index}", "ReLU", name)]
            blob = name
        parts.append(_pool(f"pool{stage}", blob, "MAX", 2, 2))
        blob = f"pool{stage}"
    for name, outputs in (("fc6", 4096), ("fc7", 4096)):
        parts += [
            _fc(name, blob, outputs),
            _in_place(f"relu{name[2:]}", "ReLU", name),
            _in_place(f"drop{name[2:]}", "Dropout", name, "dropout_param { dropout_ratio: 0.5 }"),
        ]
        blob = name
    parts += [_fc("fc8", blob, 1000), _layer("prob", "Softmax", ["fc8"], ["prob"])]
    return "".join(parts)


def _conv_bn(
    name: str, bottom: str, outputs: int, kernel: int, stride: int = 1, pad: int = 0, relu: bool = True
) -> Iterator[str]:
    """Convolution, BatchNorm and Scale in place, then ReLU: ``bn<name>``, ``scale<name>`` as in ResNet's Caffe files."""
    yield _conv(name, bottom, outputs, kernel, stride, pad, bias=False)
    yield _in_place(f"bn{name}", "BatchNorm", name, "batch_norm_param { use_global_stats: true }")
    yield _in_place(f"scale{name}", "Scale", name, "scale_param { bias_term: true }")
    if relu:
        yield _in_place(f"{name}_relu", "ReLU", name)


def resnet50_prototxt() -> str:
    parts = ['name: "ResNet-50"\n', _input("data", (1, 3, 224, 224))]
    parts += _conv_bn("conv1", "data", 64, 7, stride=2, pad=3)
    parts.append(_pool("pool1", "conv1", "MAX", 3, 2))
    blob = "pool1"
    for stage, (blocks, width) in enumerate(((3, 64), (4, 128), (6, 256), (3, 512)), start=2):
        for index in range(blocks):
            block = f"{stage}{chr(ord('a') + index)}"
            stride = 2 if index == 0 and stage > 2 else 1
            if index == 0:
                parts += _conv_bn(f"res{block}_branch1", blob, 4 * width, 1, stride, relu=False)
                shortcut = f"res{block}_branch1"
            else:
                shortcut = blob
            parts += _conv_bn(f"res{block}_branch2a", blob, width, 1, stride)
            parts += _conv_bn(f"res{block}_branch2b", f"res{block}_branch2a", width, 3, pad=1)
            parts += _conv_bn(f"res{block}_branch2c", f"res{block}_branch2b", 4 * width, 1, relu=False)
            parts.append(_layer(f"res{block}", "Eltwise", [shortcut, f"res{block}_branch2c"], [f"res{block}"]))
            parts.append(_in_place(f"res{block}_relu", "ReLU", f"res{block}"))
            blob = f"res{block}"
    parts.append(_pool("pool5", blob, "AVE", 7, 1))
    parts += [_fc("fc1000", "pool5", 1000), _layer("prob", "Softmax", ["fc1000"], ["prob"])]
    return "".join(parts)


NETS = {"vgg16": vgg16_prototxt, "resnet50": resnet50_prototxt}

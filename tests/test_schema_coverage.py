"""Every field of the Caffe schema is read by the code that converts it, or is listed here with
the reason it changes nothing a converted model computes: a field parsed and ignored would be a
silent wrong answer (OpenCV's DetectionOutput ``clip`` once was one).

"Read" is checked in the source: some function mentions the field that holds the message (for
``nms_param.top_k``: ``nms_param``; for ``detection_output_param.clip``: ``detection_output_param``)
and the field's own name (an attribute or a word of a string such as the error's
``"detection_output_param.clip"``). A field added to caffe.proto with no converter reading it fails
here until a converter reads or refuses it, or it is listed below with its reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from caffe2keras.caffe.schema import schema

SOURCE = Path(__file__).resolve().parents[1] / "src" / "caffe2keras"

# Messages of layers that a deploy net drops (losses, accuracy, evaluation, outputs to files) or
# whose tops become the model's inputs (data layers), and of training-time data augmentation.
NOT_CONVERTED_MESSAGES = {
    "LossParameter": "losses are dropped",
    "AccuracyParameter": "Accuracy is dropped",
    "ContrastiveLossParameter": "losses are dropped",
    "HingeLossParameter": "losses are dropped",
    "InfogainLossParameter": "losses are dropped",
    "MultiBoxLossParameter": "losses are dropped",
    "DetectionEvaluateParameter": "DetectionEvaluate is dropped",
    "HDF5OutputParameter": "HDF5Output is dropped",
    "DataParameter": "a data layer's top becomes an input",
    "HDF5DataParameter": "a data layer's top becomes an input",
    "WindowDataParameter": "a data layer's top becomes an input",
    "VideoDataParameter": "a data layer's top becomes an input",
    "AnnotatedDataParameter": "a data layer's top becomes an input",
    "BatchSampler": "SSD's training-time sampling",
    "Sampler": "SSD's training-time sampling",
    "SampleConstraint": "SSD's training-time sampling",
    "ResizeParameter": "SSD's training-time augmentation and evaluation output",
    "NoiseParameter": "SSD's training-time augmentation",
    "SaltPepperParameter": "SSD's training-time augmentation",
    "EmitConstraint": "SSD's training-time augmentation",
    "DistortionParameter": "SSD's training-time augmentation",
    "ExpansionParameter": "SSD's training-time augmentation",
    "SaveOutputParameter": "DetectionOutput writing result files: the blob does not change",
}

NOT_CONVERTED_FIELDS = {
    "LayerParameter.loss_weight": "weights a loss in training",
    "LayerParameter.propagate_down": "controls the backward pass",
    "LayerParameter.loss_param": NOT_CONVERTED_MESSAGES["LossParameter"],
    "LayerParameter.accuracy_param": NOT_CONVERTED_MESSAGES["AccuracyParameter"],
    "LayerParameter.contrastive_loss_param": "losses are dropped",
    "LayerParameter.hinge_loss_param": "losses are dropped",
    "LayerParameter.infogain_loss_param": "losses are dropped",
    "LayerParameter.multibox_loss_param": "losses are dropped",
    "LayerParameter.detection_evaluate_param": "DetectionEvaluate is dropped",
    "LayerParameter.hdf5_output_param": "HDF5Output is dropped",
    "LayerParameter.data_param": "a data layer's top becomes an input",
    "LayerParameter.hdf5_data_param": "a data layer's top becomes an input",
    "LayerParameter.window_data_param": "a data layer's top becomes an input",
    "LayerParameter.video_data_param": "a data layer's top becomes an input",
    "LayerParameter.annotated_data_param": "a data layer's top becomes an input",
    "LayerParameter.sigmoid_param": "holds only engine",
    "LayerParameter.tanh_param": "holds only engine",
    "TransformationParameter.mirror": "a random flip in training (preprocessing.py says so)",
    "TransformationParameter.force_color": "how a data layer decodes files, not the net's input blob",
    "TransformationParameter.force_gray": "how a data layer decodes files, not the net's input blob",
    "TransformationParameter.resize_param": "SSD's training-time augmentation",
    "TransformationParameter.noise_param": "SSD's training-time augmentation",
    "TransformationParameter.emit_constraint": "SSD's training-time augmentation",
    "TransformationParameter.distort_param": "SSD's training-time augmentation",
    "TransformationParameter.expand_param": "SSD's training-time augmentation",
    "TransformationParameter.crop_h": "SSD's training-time random crop",
    "TransformationParameter.crop_w": "SSD's training-time random crop",
    "ImageDataParameter.source": "a data layer's file list",
    "ImageDataParameter.scale": "read by the V1 upgrade into transform_param",
    "ImageDataParameter.mean_file": "read by the V1 upgrade into transform_param",
    "ImageDataParameter.mirror": "read by the V1 upgrade into transform_param",
    "ImageDataParameter.rand_skip": "a data layer's file reading",
    "ImageDataParameter.shuffle": "a data layer's file reading",
    "ImageDataParameter.root_folder": "a data layer's file reading",
    "DummyDataParameter.data_filler": "DummyData's top becomes an input",
    "DenseImageDataParameter.source": "SegNet's data layer: its top becomes an input",
    "DenseImageDataParameter.rand_skip": "SegNet's data layer: file reading",
    "DenseImageDataParameter.shuffle": "SegNet's data layer: file reading",
    "DenseImageDataParameter.root_folder": "SegNet's data layer: file reading",
    "DenseImageDataParameter.mirror": "SegNet's data layer: a random flip in training",
    "ConvolutionParameter.engine": "picks Caffe's or cuDNN's code; same numbers",
    "ConvolutionParameter.force_nd_im2col": "picks Caffe's code path; same numbers",
    "LRNParameter.engine": "picks Caffe's or cuDNN's code; same numbers",
    "PoolingParameter.engine": "picks Caffe's or cuDNN's code; same numbers",
    "ReLUParameter.engine": "picks Caffe's or cuDNN's code; same numbers",
    "SigmoidParameter.engine": "picks Caffe's or cuDNN's code; same numbers",
    "SoftmaxParameter.engine": "picks Caffe's or cuDNN's code; same numbers",
    "TanHParameter.engine": "picks Caffe's or cuDNN's code; same numbers",
    "SPPParameter.engine": "picks Caffe's or cuDNN's code; same numbers",
    "BNParameter.engine": "picks the fork's or cuDNN's code; same numbers",
    "EltwiseParameter.stable_prod_grad": "the backward pass of PROD",
    "RecurrentParameter.debug_info": "logging",
    "PythonParameter.share_in_parallel": "multi-GPU training",
    "DetectionOutputParameter.save_output_param": NOT_CONVERTED_MESSAGES["SaveOutputParameter"],
    "DetectionOutputParameter.visualize": "draws the detections: the blob does not change",
    "DetectionOutputParameter.visualize_threshold": "draws the detections: the blob does not change",
    "DetectionOutputParameter.save_file": "writes the detections: the blob does not change",
}

# Read under a name this check cannot see (built with an f-string, or through a variable).
READ_INDIRECTLY = {
    "ConvolutionParameter.pad_h": "convolution.py's geometry helper: getattr(p, f'{name}_h')",
    "ConvolutionParameter.pad_w": "convolution.py's geometry helper",
    "ConvolutionParameter.kernel_h": "convolution.py's geometry helper",
    "ConvolutionParameter.kernel_w": "convolution.py's geometry helper",
    "ConvolutionParameter.stride_h": "convolution.py's geometry helper",
    "ConvolutionParameter.stride_w": "convolution.py's geometry helper",
    "PoolingParameter.pad_h": "pooling.py's geometry helper: getattr(p, f'{name}_h')",
    "PoolingParameter.pad_w": "pooling.py's geometry helper",
    "PoolingParameter.stride_h": "pooling.py's geometry helper",
    "PoolingParameter.stride_w": "pooling.py's geometry helper",
    "BiasParameter.axis": "arithmetic.py's operand_span: getattr(op.param, 'bias_param').axis",
    "NetStateRule.min_level": "graph.py's layer_is_kept",
    "NetStateRule.max_level": "graph.py's layer_is_kept",
    "NetStateRule.stage": "graph.py's layer_is_kept",
    "NetStateRule.not_stage": "graph.py's layer_is_kept",
    "PythonParameter.param_str": "given to a user's converter through node.param.python_param",
}


def _function_words() -> list[set[str]]:
    """Per function of the package: the attribute names, names and words of strings it uses (not
    keyword names: ``clip=False`` passes a value, it reads nothing)."""
    functions = []
    for path in SOURCE.rglob("*.py"):
        if path.name.endswith("_test.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            words = set()
            for sub in ast.walk(node):
                if isinstance(sub, ast.Attribute):
                    words.add(sub.attr)
                elif isinstance(sub, ast.Name):
                    words.add(sub.id)
                elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    words.update(re.findall(r"[A-Za-z_]\w*", sub.value))
            functions.append(words)
    return functions


def _layer_fields():
    """(message name, field, name of the field holding the message) for LayerParameter and every
    message under it."""
    seen = set()

    def visit(message, holder):
        if message.full_name in seen:
            return
        seen.add(message.full_name)
        for field in message.fields:
            yield message.name, field, holder
            if field.message_type is not None and field.message_type.name not in ("BlobProto", "LayerParameter"):
                yield from visit(field.message_type, field.name)

    yield from visit(schema().pool.FindMessageTypeByName("caffe.LayerParameter"), None)


def test_every_layer_field_is_read_or_explained():
    functions = _function_words()
    explained = NOT_CONVERTED_FIELDS | READ_INDIRECTLY
    unread = []
    for message, field, holder in _layer_fields():
        key = f"{message}.{field.name}"
        if message in NOT_CONVERTED_MESSAGES or key in explained:
            continue
        if not any(field.name in words and (holder is None or holder in words) for words in functions):
            unread.append(key)
    assert not unread, (
        "these schema fields are parsed but no converter reads or refuses them (read them, refuse a "
        f"value caffe2keras does not compute with node.error, or explain them here): {unread}"
    )


def test_the_explanations_name_real_fields():
    fields = {f"{message}.{field.name}" for message, field, _ in _layer_fields()}
    messages = {message for message, _, _ in _layer_fields()}
    assert not (set(NOT_CONVERTED_FIELDS) | set(READ_INDIRECTLY)) - fields
    assert not set(NOT_CONVERTED_MESSAGES) - messages

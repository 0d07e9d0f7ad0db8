"""Caffe's input transformation as a model's first step: channel order, mean, scale."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from caffe2keras.layers.common import PACKAGE, channel_axis, check_data_format

CHANNEL_ORDERS = ("bgr", "rgb")
# Files saved before channel_order existed name the order of the model's input instead; each old
# value is read as the channel_order that computes the same.
CHANNEL_ORDER_OF_INPUT_ORDER = {"rgb": "bgr", "bgr": "rgb", None: None}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CaffePreprocessing(keras.layers.Layer):
    """What a Caffe data layer did to an image at TEST time: ``(x - mean) * scale``, in the net's order.

    With a ``channel_order`` the layer takes RGB images, as Keras users hold them, and reverses
    them first when the net was trained on BGR.

    Args:
        mean_shape: shape of the mean, broadcast against one image in ``data_format``: ``(C,)``
            (``(C, 1, 1)`` channels_first) for one value per channel, or a whole mean image
            ``(H, W, C)`` (``(C, H, W)``). Its values are the layer's non-trainable weight ``mean``,
            in Caffe's channel order. None: nothing is subtracted.
        scale: multiplies the difference (Caffe's ``transform_param.scale``).
        channel_order: the order the net was trained on. ``"bgr"`` (Caffe's image tools, the
            BVLC/ImageNet nets): the RGB input's 3 channels are reversed first; ``"rgb"``
            (CIFAR-10, MTCNN): they are taken as they come; None (inputs that are not 3-channel
            colour images, or a step that only carries labels): the input is the net's blob as is.
        data_format: ``"channels_last"`` or ``"channels_first"``, the layout of the input.
        labels: the class names of the model's output, one per class, kept with the model for
            ``caffe2keras predict`` and ``decode_predictions``; they take no part in the computation.
        mean: the mean's values (shape ``mean_shape``), set when the layer is built. They are
            saved with the weights, not in the config.
        min_size: the smallest (height, width) the net takes, for an input of free size: below
            it a strided layer of the net has no pixels left. A smaller input is refused.
        input_order: read from files saved by earlier versions (the order of the model's input,
            ``"rgb"`` reversed, ``"bgr"`` not) and turned into the ``channel_order`` that computes
            the same.
    """

    def __init__(
        self,
        mean_shape: Sequence[int] | None = None,
        scale: float = 1.0,
        channel_order: str | None = "bgr",
        data_format: str = "channels_last",
        labels: Sequence[str] | None = None,
        mean=None,
        min_size: Sequence[int] | None = None,
        **kwargs,
    ):
        if "input_order" in kwargs:
            input_order = kwargs.pop("input_order")
            if input_order not in CHANNEL_ORDER_OF_INPUT_ORDER:
                raise ValueError(f"input_order must be 'rgb', 'bgr' or None. Received: input_order={input_order!r}")
            channel_order = CHANNEL_ORDER_OF_INPUT_ORDER[input_order]
        super().__init__(**kwargs)
        if channel_order is not None and channel_order not in CHANNEL_ORDERS:
            raise ValueError(
                f"channel_order must be one of {CHANNEL_ORDERS} or None. Received: channel_order={channel_order!r}"
            )
        self.mean_shape = None if mean_shape is None else tuple(int(d) for d in mean_shape)
        if mean is not None and np.shape(mean) != self.mean_shape:
            raise ValueError(
                f"the mean's values must have shape mean_shape={self.mean_shape}. Received: mean.shape={np.shape(mean)}"
            )
        self.scale = float(scale)
        if not np.isfinite(self.scale):
            raise ValueError(f"scale must be a finite number. Received: scale={scale}")
        self.min_size = None if min_size is None else tuple(int(d) for d in min_size)
        self.channel_order = channel_order
        self.data_format = check_data_format(data_format)
        self.labels = None if labels is None else [str(label) for label in labels]
        self._initial_mean = mean
        self.mean = None

    def build(self, input_shape):
        axis = channel_axis(len(input_shape), self.data_format)
        if self.channel_order == "bgr" and input_shape[axis] != 3:
            raise ValueError(
                "channel_order='bgr' reverses 3 colour channels; this input has "
                f"{input_shape[axis]}. Received: input_shape={tuple(input_shape)}"
            )
        if self.mean_shape is not None:
            image_shape = tuple(input_shape[1:])
            try:
                np.broadcast_shapes(tuple(1 if d is None else d for d in image_shape), self.mean_shape)
            except ValueError:
                raise ValueError(
                    f"a mean of shape {self.mean_shape} does not fit inputs of shape {image_shape} "
                    f"({self.data_format}). Received: mean_shape={self.mean_shape}"
                ) from None
            self.mean = self.add_weight(name="mean", shape=self.mean_shape, initializer="zeros", trainable=False)
            if self._initial_mean is not None:
                self.mean.assign(np.asarray(self._initial_mean, dtype=self.mean.dtype))
                self._initial_mean = None

    def call(self, inputs):
        self._check_size(inputs.shape)
        x = ops.cast(inputs, self.compute_dtype)
        if self.channel_order == "bgr":
            x = ops.flip(x, axis=channel_axis(len(x.shape), self.data_format))
        if self.mean is not None:
            x = x - ops.cast(self.mean, x.dtype)
        if self.scale != 1.0:
            x = x * self.scale
        return x

    def _check_size(self, shape):
        if self.min_size is None:
            return
        size = tuple(shape[1:3] if self.data_format == "channels_last" else shape[2:4])
        if any(s is not None and s < m for s, m in zip(size, self.min_size)):
            raise ValueError(
                f"the input is {size[0]}x{size[1]}, smaller than the {self.min_size[0]}x{self.min_size[1]} the "
                f"net needs (below it, a strided layer has no pixels left). Received: input size={size}"
            )

    def compute_output_shape(self, input_shape):
        self._check_size(input_shape)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            mean_shape=None if self.mean_shape is None else list(self.mean_shape),
            scale=self.scale,
            channel_order=self.channel_order,
            data_format=self.data_format,
            labels=self.labels,
            min_size=None if self.min_size is None else list(self.min_size),
        )
        return config

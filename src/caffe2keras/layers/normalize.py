"""SSD's Normalize (weiliu89/caffe): L2 normalization across channels or the whole item, then a learned scale."""

from __future__ import annotations

from keras import initializers, layers, ops, saving

from caffe2keras.layers.common import PACKAGE, channel_axis, check_data_format


@saving.register_keras_serializable(package=PACKAGE)
class Normalize(layers.Layer):
    """L2 normalization with a learned scale, as SSD's Normalize computes it.

    ``across_spatial``: ``y = x / sqrt(sum(x^2 over C, H, W) + eps)``, one norm per image;
    otherwise ``y = x / sqrt(sum(x^2 over C) + eps)``, one norm per position. Then
    ``y *= scale``: one value (``channel_shared``) or one per channel. ``eps`` is
    added under the root, as Caffe does.

    Args:
        across_spatial: one norm per image (True) or per position (False).
        channel_shared: one learned scale for all channels (a scalar variable).
        eps: added to the sum of squares.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        scale_initializer: the scale's initializer (SSD's default: ones).
    """

    def __init__(
        self,
        across_spatial=True,
        channel_shared=True,
        eps=1e-10,
        data_format="channels_last",
        scale_initializer="ones",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.across_spatial = bool(across_spatial)
        self.channel_shared = bool(channel_shared)
        self.eps = float(eps)
        self.data_format = check_data_format(data_format)
        self.scale_initializer = initializers.get(scale_initializer)

    def build(self, input_shape):
        rank = len(input_shape)
        if rank < 2:
            raise ValueError(f"Normalize needs inputs of rank 2 or more. Received: input_shape={input_shape}")
        channels = input_shape[channel_axis(rank, self.data_format)]
        shape = () if self.channel_shared else (channels,)
        self.scale = self.add_weight(name="scale", shape=shape, initializer=self.scale_initializer)

    def call(self, inputs):
        rank = len(inputs.shape)
        axis = channel_axis(rank, self.data_format)
        squares = ops.square(inputs)
        if self.across_spatial:
            norm = ops.sqrt(ops.sum(squares, axis=tuple(range(1, rank)), keepdims=True) + self.eps)
            y = inputs * (1.0 / norm)  # Caffe scales by the reciprocal here, and divides per position
        else:
            y = inputs / ops.sqrt(ops.sum(squares, axis=axis, keepdims=True) + self.eps)
        if self.channel_shared:
            return y * self.scale
        shape = [1] * rank
        shape[axis] = -1
        return y * ops.reshape(self.scale, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            across_spatial=self.across_spatial,
            channel_shared=self.channel_shared,
            eps=self.eps,
            data_format=self.data_format,
            scale_initializer=initializers.serialize(self.scale_initializer),
        )
        return config

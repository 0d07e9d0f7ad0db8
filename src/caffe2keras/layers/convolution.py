"""Transposed convolution with groups (Caffe's grouped Deconvolution)."""

from __future__ import annotations

from keras import initializers, layers, ops, saving

from caffe2keras.layers.common import PACKAGE, channel_axis, check_data_format


@saving.register_keras_serializable(package=PACKAGE)
class GroupedConv2DTranspose(layers.Layer):
    """2-D transposed convolution split into ``groups`` independent channel groups.

    Keras' ``Conv2DTranspose`` has no ``groups`` and refuses ``strides > 1``
    with ``dilation_rate > 1``; Caffe's Deconvolution allows both. Padding is
    always ``"valid"``: the output is the full ``(n - 1) * stride + dilated kernel``
    per spatial axis, as Caffe's before its pad crops it.

    The kernel has shape ``(kh, kw, filters // groups, input_channels)``: input
    channel ``c`` feeds the outputs of group ``c // (input_channels // groups)``.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        dilation_rate=(1, 1),
        groups=1,
        use_bias=True,
        padding="valid",
        data_format="channels_last",
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding != "valid":
            raise ValueError(f"GroupedConv2DTranspose only supports padding='valid'. Received: padding={padding!r}")
        self.filters = int(filters)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        self.dilation_rate = tuple(int(d) for d in dilation_rate)
        self.groups = int(groups)
        self.use_bias = bool(use_bias)
        self.padding = padding
        self.data_format = check_data_format(data_format)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        if self.filters % self.groups:
            raise ValueError(f"groups must divide filters. Received: filters={filters}, groups={groups}")

    def build(self, input_shape):
        channels = input_shape[channel_axis(4, self.data_format)]
        if channels % self.groups:
            raise ValueError(
                f"groups must divide the input channels. Received: channels={channels}, groups={self.groups}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, self.filters // self.groups, channels),
            initializer=self.kernel_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)

    def call(self, inputs):
        axis = channel_axis(4, self.data_format)
        channels = inputs.shape[axis]
        per_group = channels // self.groups
        outputs = []
        for g in range(self.groups):
            index = [slice(None)] * 4
            index[axis] = slice(g * per_group, (g + 1) * per_group)
            outputs.append(
                ops.conv_transpose(
                    inputs[tuple(index)],
                    self.kernel[..., g * per_group : (g + 1) * per_group],
                    strides=self.strides,
                    padding="valid",
                    data_format=self.data_format,
                    dilation_rate=self.dilation_rate,
                )
            )
        y = outputs[0] if self.groups == 1 else ops.concatenate(outputs, axis=axis)
        # Keras' "valid" transposed convolution is n * s + max(k - s, 0) long: when the kernel
        # is shorter than the stride, it ends in zeros that the full output does not have.
        full = [slice(None)] * 4
        spatial = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for a, n, k, s, d in zip(
            spatial, (inputs.shape[i] for i in spatial), self.kernel_size, self.strides, self.dilation_rate
        ):
            full[a] = slice(0, (n - 1) * s + d * (k - 1) + 1)
        y = y[tuple(full)]
        if self.use_bias:
            shape = [1, 1, 1, 1]
            shape[axis] = self.filters
            y = y + ops.reshape(self.bias, shape)
        return y

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            dilation_rate=self.dilation_rate,
            groups=self.groups,
            use_bias=self.use_bias,
            padding=self.padding,
            data_format=self.data_format,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
        )
        return config

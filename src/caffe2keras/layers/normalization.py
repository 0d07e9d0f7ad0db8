"""Caffe's normalization layers that Keras has no twin for."""

from __future__ import annotations

from keras import layers, ops, saving

from caffe2keras.layers.common import PACKAGE, channel_axis, check_data_format, spatial_axes

NORM_REGIONS = ("across_channels", "within_channel")


@saving.register_keras_serializable(package=PACKAGE)
class LRN(layers.Layer):
    """Local response normalization as Caffe computes it (4-D inputs).

    ``across_channels``: ``y = x * (k + alpha / n * sum(x^2 over n channels)) ^ -beta``,
    the window centred on the channel and zero-padded.
    ``within_channel``: ``y = x * (1 + alpha * mean(x^2 over an n x n window)) ^ -beta``,
    the window zero-padded and always divided by ``n * n`` (``k`` is not used,
    as in Caffe).

    Args:
        size: the window length ``n`` (odd).
        alpha, beta, k: the formula's constants.
        norm_region: ``"across_channels"`` or ``"within_channel"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.
    """

    def __init__(
        self, size=5, alpha=1.0, beta=0.75, k=1.0, norm_region="across_channels", data_format="channels_last", **kwargs
    ):
        super().__init__(**kwargs)
        if int(size) % 2 != 1:
            raise ValueError(f"size must be odd. Received: size={size}")
        if norm_region not in NORM_REGIONS:
            raise ValueError(f"norm_region must be one of {NORM_REGIONS}. Received: norm_region={norm_region!r}")
        self.size = int(size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)
        self.norm_region = norm_region
        self.data_format = check_data_format(data_format)

    def call(self, inputs):
        half = (self.size - 1) // 2
        squares = ops.square(inputs)
        pad_width = [[0, 0]] * 4
        if self.norm_region == "across_channels":
            axis = channel_axis(4, self.data_format)
            pad_width[axis] = [half, half]
            padded = ops.pad(squares, pad_width)
            channels = inputs.shape[axis]
            window_sum = _take(padded, axis, 0, channels)
            for offset in range(1, self.size):
                window_sum = window_sum + _take(padded, axis, offset, channels)
            scale = self.k + (self.alpha / self.size) * window_sum
        else:
            for axis in spatial_axes(4, self.data_format):
                pad_width[axis] = [half, half]
            padded = ops.pad(squares, pad_width)
            mean = ops.average_pool(padded, self.size, strides=1, padding="valid", data_format=self.data_format)
            scale = 1.0 + self.alpha * mean
        return inputs * ops.power(scale, -self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            size=self.size,
            alpha=self.alpha,
            beta=self.beta,
            k=self.k,
            norm_region=self.norm_region,
            data_format=self.data_format,
        )
        return config


def _take(x, axis, start, length):
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, start + length)
    return x[tuple(index)]


@saving.register_keras_serializable(package=PACKAGE)
class MeanVarianceNormalization(layers.Layer):
    """Subtract the mean over ``axes`` and, optionally, divide by the standard deviation.

    Caffe's MVN adds ``epsilon`` to the standard deviation:
    ``y = (x - mean) / (sqrt(var) + epsilon)``; its BatchNorm with the batch's
    own statistics adds it to the variance: ``y = (x - mean) / sqrt(var + epsilon)``
    (``epsilon_on="variance"``). ``var`` is the mean squared deviation. The
    statistics are those of each call's inputs: ``axes`` may include the batch
    axis 0, and then the result depends on the whole batch.

    Args:
        axes: the axes the statistics are taken over (empty: every value is its own mean).
        normalize_variance: divide by the standard deviation.
        epsilon: the constant that keeps the division finite.
        epsilon_on: ``"stddev"`` (Caffe's MVN) or ``"variance"`` (Caffe's BatchNorm).
    """

    EPSILON_ON = ("stddev", "variance")

    def __init__(self, axes=(-1,), normalize_variance=True, epsilon=1e-9, epsilon_on="stddev", **kwargs):
        super().__init__(**kwargs)
        if epsilon_on not in self.EPSILON_ON:
            raise ValueError(f"epsilon_on must be one of {self.EPSILON_ON}. Received: epsilon_on={epsilon_on!r}")
        self.axes = tuple(int(a) for a in axes)
        self.normalize_variance = bool(normalize_variance)
        self.epsilon = float(epsilon)
        self.epsilon_on = epsilon_on

    def _mean(self, x):
        return ops.mean(x, axis=self.axes, keepdims=True) if self.axes else x

    def call(self, inputs):
        centred = inputs - self._mean(inputs)
        if not self.normalize_variance:
            return centred
        variance = self._mean(ops.square(centred))
        if self.epsilon_on == "stddev":
            return centred / (ops.sqrt(variance) + self.epsilon)
        return centred / ops.sqrt(variance + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            axes=self.axes, normalize_variance=self.normalize_variance, epsilon=self.epsilon, epsilon_on=self.epsilon_on
        )
        return config


@saving.register_keras_serializable(package=PACKAGE)
class CaffeBatchNorm(layers.Layer):
    """Caffe's BatchNorm with its three blobs as they are: un-normalised sums of the batch means
    and variances, and the scale factor they are divided by.

    In training (unless ``use_global_stats``) each call normalises with the batch's mean and
    biased variance over every axis but ``axis``, and updates the blobs as Caffe does:
    ``factor = f * factor + 1``, ``mean = f * mean + batch_mean``,
    ``variance = f * variance + m / (m - 1) * batch_variance`` (f: ``moving_average_fraction``,
    m: values per channel). Otherwise it normalises with ``blob / factor`` (0 when factor is 0).
    The blobs are not trainable: Caffe forces their ``lr_mult`` to 0.

    Args:
        axis: the channel axis.
        epsilon: added to the variance.
        moving_average_fraction: f above.
        use_global_stats: None (batch statistics in training only), True or False (always).
    """

    def __init__(self, axis=-1, epsilon=1e-5, moving_average_fraction=0.999, use_global_stats=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.epsilon = float(epsilon)
        self.moving_average_fraction = float(moving_average_fraction)
        self.use_global_stats = None if use_global_stats is None else bool(use_global_stats)

    def build(self, input_shape):
        channels = (input_shape[self.axis],)
        self.mean = self.add_weight(shape=channels, initializer="zeros", trainable=False, name="mean")
        self.variance = self.add_weight(shape=channels, initializer="zeros", trainable=False, name="variance")
        self.factor = self.add_weight(shape=(1,), initializer="zeros", trainable=False, name="factor")

    def call(self, inputs, training=None):
        rank = len(inputs.shape)
        axis = self.axis % rank
        reduced = tuple(a for a in range(rank) if a != axis)
        shape = [1] * rank
        shape[axis] = inputs.shape[axis]
        use_global = self.use_global_stats if self.use_global_stats is not None else not training
        if use_global:
            factor = ops.convert_to_tensor(self.factor)
            scale = ops.where(factor == 0, 0.0, 1.0 / ops.where(factor == 0, 1.0, factor))
            mean, variance = ops.convert_to_tensor(self.mean) * scale, ops.convert_to_tensor(self.variance) * scale
        else:
            mean = ops.mean(inputs, axis=reduced)
            variance = ops.mean(ops.square(inputs - ops.reshape(mean, shape)), axis=reduced)
            if training:
                self._update_statistics(inputs, reduced, mean, variance)
        centred = inputs - ops.reshape(mean, shape)
        return centred / ops.sqrt(ops.reshape(variance, shape) + self.epsilon)

    def _update_statistics(self, inputs, reduced, mean, variance):
        count = 1
        for a in reduced:
            count = count * ops.shape(inputs)[a]
        count = ops.cast(count, "float32")
        correction = ops.where(count > 1, count / ops.maximum(count - 1.0, 1.0), 1.0)
        fraction = self.moving_average_fraction
        self.factor.assign(self.factor * fraction + 1.0)
        self.mean.assign(self.mean * fraction + ops.stop_gradient(mean))
        self.variance.assign(self.variance * fraction + correction * ops.stop_gradient(variance))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            axis=self.axis,
            epsilon=self.epsilon,
            moving_average_fraction=self.moving_average_fraction,
            use_global_stats=self.use_global_stats,
        )
        return config

"""Tensor plumbing and affine layers that Keras has no twin for."""

from __future__ import annotations

import itertools

from keras import initializers, layers, ops, saving

from caffe2keras.layers.common import PACKAGE, checked_shape


@saving.register_keras_serializable(package=PACKAGE)
class Affine(layers.Layer):
    """``y = x * gamma + beta`` with learned ``gamma``/``beta`` broadcast over the input.

    Caffe's Scale (``use_scale``, optionally ``use_bias``) and Bias
    (``use_bias`` only) layers.

    Args:
        param_shape: shape of ``gamma``/``beta`` without the batch axis, broadcastable
            to the input's (e.g. ``(1, 1, C)`` for per-channel NHWC).
        use_scale: learn ``gamma`` (initialized to ones).
        use_bias: learn ``beta`` (initialized to zeros).
        gamma_initializer, beta_initializer: their initializers.
    """

    def __init__(
        self,
        param_shape=(),
        use_scale=True,
        use_bias=False,
        gamma_initializer="ones",
        beta_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not (use_scale or use_bias):
            raise ValueError("Affine needs use_scale or use_bias. Received: use_scale=False, use_bias=False")
        self.param_shape = checked_shape("param_shape", param_shape, minimum=1)
        self.use_scale = bool(use_scale)
        self.use_bias = bool(use_bias)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_initializer = initializers.get(beta_initializer)

    def build(self, input_shape):
        if self.use_scale:
            self.gamma = self.add_weight(name="gamma", shape=self.param_shape, initializer=self.gamma_initializer)
        if self.use_bias:
            self.beta = self.add_weight(name="beta", shape=self.param_shape, initializer=self.beta_initializer)

    def call(self, inputs):
        x = inputs * self.gamma if self.use_scale else inputs
        return x + self.beta if self.use_bias else x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            param_shape=self.param_shape,
            use_scale=self.use_scale,
            use_bias=self.use_bias,
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            beta_initializer=initializers.serialize(self.beta_initializer),
        )
        return config


@saving.register_keras_serializable(package=PACKAGE)
class WeightedSum(layers.Layer):
    """``y = sum(c_i * x_i)`` over a list of same-shaped inputs (Caffe's Eltwise SUM with coeff)."""

    def __init__(self, coefficients, **kwargs):
        super().__init__(**kwargs)
        self.coefficients = tuple(float(c) for c in coefficients)

    def call(self, inputs):
        if len(inputs) != len(self.coefficients):
            raise ValueError(
                f"WeightedSum needs one input per coefficient ({len(self.coefficients)}). "
                f"Received: {len(inputs)} inputs"
            )
        total = inputs[0] * self.coefficients[0]
        for x, c in zip(inputs[1:], self.coefficients[1:]):
            total = total + x * c
        return total

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(coefficients=self.coefficients)
        return config


@saving.register_keras_serializable(package=PACKAGE)
class Slice(layers.Layer):
    """Split one input along ``axis`` at ``points`` into ``len(points) + 1`` outputs."""

    def __init__(self, axis, points, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.points = tuple(int(p) for p in points)
        if not self.points or any(a >= b for a, b in zip((0, *self.points), self.points)):
            raise ValueError(f"points must be positive and strictly increasing. Received: points={self.points}")

    def _bounds(self, size):
        edges = (0, *self.points, size)
        return list(itertools.pairwise(edges))

    def call(self, inputs):
        outputs = []
        for start, stop in self._bounds(inputs.shape[self.axis]):
            index = [slice(None)] * len(inputs.shape)
            index[self.axis] = slice(start, stop)
            outputs.append(inputs[tuple(index)])
        return outputs

    def compute_output_shape(self, input_shape):
        shapes = []
        for start, stop in self._bounds(input_shape[self.axis]):
            shape = list(input_shape)
            shape[self.axis] = stop - start
            shapes.append(tuple(shape))
        return shapes

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, points=self.points)
        return config


@saving.register_keras_serializable(package=PACKAGE)
class Crop(layers.Layer):
    """Take ``size[i]`` elements from ``begin[i]`` on every non-batch axis ``i + 1``.

    Called on ``[x, reference]`` it crops ``x`` and ignores the reference's values: Caffe's Crop
    takes the blob whose shape it matches as a second bottom, and keeping it an input keeps it
    connected in the Keras graph.

    A ``size`` of None is read when the layer runs: the reference's size on that axis, or,
    without a reference, what is left of ``x`` once ``end_trim[i]`` elements are dropped from
    the end (for models converted with free input sizes).
    """

    def __init__(self, begin, size, end_trim=None, **kwargs):
        super().__init__(**kwargs)
        self.begin = tuple(int(b) for b in begin)
        self.size = tuple(None if s is None else int(s) for s in size)
        self.end_trim = tuple(int(t) for t in (end_trim or (0,) * len(self.begin)))
        known = [s for s in self.size if s is not None]
        if (
            len(self.begin) != len(self.size)
            or len(self.end_trim) != len(self.begin)
            or min(self.begin, default=0) < 0
            or min(self.end_trim, default=0) < 0
            or min(known, default=1) < 1
        ):
            raise ValueError(
                "begin, size and end_trim need one value per non-batch axis, begin >= 0, end_trim >= 0 and "
                f"size >= 1 or None. Received: begin={self.begin}, size={self.size}, end_trim={self.end_trim}"
            )
        checked_shape("size", [s for s in self.size if s is not None], minimum=1)

    def _sizes(self, shape, reference_shape):
        """Per non-batch axis, the cropped size (None where it is not known yet)."""
        sizes = []
        for axis, (b, s, t) in enumerate(zip(self.begin, self.size, self.end_trim), start=1):
            if s is None:
                if reference_shape is not None:
                    s = reference_shape[axis]
                elif shape[axis] is not None:
                    s = shape[axis] - b - t
            sizes.append(s)
        return sizes

    def call(self, inputs):
        x, reference = inputs if isinstance(inputs, (list, tuple)) else (inputs, None)
        sizes = self._sizes(x.shape, None if reference is None else reference.shape)
        index = (slice(None), *(slice(b, b + s) for b, s in zip(self.begin, sizes)))
        return x[index]

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape[0], (list, tuple)):
            shape, reference_shape = input_shape
        else:
            shape, reference_shape = input_shape, None
        return (shape[0], *self._sizes(shape, reference_shape))

    def get_config(self):
        config = super().get_config()
        config.update(begin=self.begin, size=self.size, end_trim=self.end_trim)
        return config


@saving.register_keras_serializable(package=PACKAGE)
class Tile(layers.Layer):
    """Repeat the input ``tiles`` times along ``axis`` (Caffe's Tile: whole copies, one after another)."""

    def __init__(self, axis, tiles, **kwargs):
        super().__init__(**kwargs)
        if int(tiles) < 1:
            raise ValueError(f"tiles must be positive. Received: tiles={tiles}")
        self.axis = int(axis)
        self.tiles = int(tiles)

    def build(self, input_shape):
        checked_shape("the tiled output shape", [d for d in self.compute_output_shape(input_shape)[1:] if d])

    def call(self, inputs):
        repeats = [1] * len(inputs.shape)
        repeats[self.axis] = self.tiles
        return ops.tile(inputs, repeats)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        axis = self.axis % len(shape)
        shape[axis] = None if shape[axis] is None else shape[axis] * self.tiles
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, tiles=self.tiles)
        return config


@saving.register_keras_serializable(package=PACKAGE)
class BatchReindex(layers.Layer):
    """``y[i] = x[indices[i]]`` along the batch axis (Caffe's BatchReindex).

    Called on ``[x, indices]``; ``indices`` is a 1-D float tensor of whole
    numbers, as Caffe reads them, and sets the output's batch size.
    """

    def call(self, inputs):
        data, indices = inputs
        return ops.take(data, ops.cast(indices, "int32"), axis=0)

    def compute_output_shape(self, input_shape):
        data_shape, indices_shape = input_shape
        return (indices_shape[0], *data_shape[1:])


@saving.register_keras_serializable(package=PACKAGE)
class Transpose(layers.Layer):
    """Permute every axis, the batch axis included (Caffe's Permute where it moves axis 0, as
    CRNN's nets do to turn (N, C, T) features into (T, N, C) sequences).

    Args:
        axes: output axis ``k`` is input axis ``axes[k]``; a permutation of all the axes.
        batch_size: the input's batch size where the net fixes it (Caffe's shapes do): Keras
            leaves a model's batch free, and the moved batch axis is then known.
    """

    def __init__(self, axes, batch_size=None, **kwargs):
        super().__init__(**kwargs)
        self.axes = tuple(int(a) for a in axes)
        if sorted(self.axes) != list(range(len(self.axes))):
            raise ValueError(f"axes must be a permutation of 0..rank-1. Received: axes={axes}")
        self.batch_size = None if batch_size is None else int(batch_size)

    def call(self, inputs):
        return ops.transpose(inputs, self.axes)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if shape[0] is None:
            shape[0] = self.batch_size
        return tuple(shape[a] for a in self.axes)

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "batch_size": self.batch_size}


@saving.register_keras_serializable(package=PACKAGE)
class LearnedTensor(layers.Layer):
    """A learned tensor of a fixed ``value_shape`` as the output (Caffe's Parameter layer).

    The input only places the layer in a functional graph; its values are
    ignored. The output's first axis is the tensor's own axis 0, not a batch.
    """

    def __init__(self, value_shape, **kwargs):
        super().__init__(**kwargs)
        self.value_shape = checked_shape("value_shape", value_shape)

    def build(self, input_shape):
        self.value = self.add_weight(name="value", shape=self.value_shape, initializer=initializers.Zeros())

    def call(self, inputs):
        return ops.convert_to_tensor(self.value)

    def compute_output_shape(self, input_shape):
        return self.value_shape

    def get_config(self):
        config = super().get_config()
        config.update(value_shape=self.value_shape)
        return config


@saving.register_keras_serializable(package=PACKAGE)
class BroadcastOperand(layers.Layer):
    """A tensor whose first axis is not a batch, reshaped whole to ``target_shape`` and then
    transposed by ``perm`` (None: not at all).

    Caffe's two-bottom Scale and Bias take a second blob covering axes ``axis..`` of the first,
    such as (C,) or (C, H) at axis 1. In Keras that blob's first axis sits where a batch would;
    this layer gives it the rank of the first blob with a leading 1 that broadcasts over the batch.
    """

    def __init__(self, target_shape, perm=None, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = checked_shape("target_shape", target_shape)
        self.perm = None if perm is None else tuple(int(a) for a in perm)
        if self.perm is not None and sorted(self.perm) != list(range(len(self.target_shape))):
            raise ValueError(
                f"perm must order the {len(self.target_shape)} axes of target_shape. Received: perm={perm}"
            )

    def call(self, inputs):
        value = ops.reshape(inputs, self.target_shape)
        return value if self.perm is None else ops.transpose(value, self.perm)

    def compute_output_shape(self, input_shape):
        if self.perm is None:
            return self.target_shape
        return tuple(self.target_shape[a] for a in self.perm)

    def get_config(self):
        config = super().get_config()
        config.update(target_shape=self.target_shape, perm=self.perm)
        return config

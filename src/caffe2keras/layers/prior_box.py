"""SSD's PriorBox (weiliu89/caffe): the default boxes of a feature map, as the fork's CPU code computes them."""

from __future__ import annotations

import numpy as np
from keras import layers, ops, saving

from caffe2keras.layers.common import MAX_TENSOR_SIZE, PACKAGE, check_data_format, spatial_axes
from caffe2keras.ssd_boxes import MAX_SIZES, prior_box_sizes, prior_boxes


@saving.register_keras_serializable(package=PACKAGE)
class PriorBox(layers.Layer):
    """SSD's prior (default) boxes of a feature map: a constant of the input shapes.

    Called on ``[feature_map, image]`` (4-D); only their spatial sizes are used: those known
    when the layer is built, or, for free sizes, those it runs at.
    The output has Caffe's shape ``(1, 2, H * W * num_priors * 4)`` per image: row 0 the
    normalized ``[xmin, ymin, xmax, ymax]`` of every prior, row 1 their variances
    (``channels_last``: the last two axes swapped). Caffe's blob has batch 1; here it is
    repeated for every image of the batch.

    Args:
        min_sizes, max_sizes: box sizes in pixels (truncated to integers, as Caffe does);
            ``max_sizes`` empty or one per min size.
        aspect_ratios: extra ratios (``flip`` adds their inverses); ratio 1 is implied.
        clip: clip the corners to [0, 1].
        variances: one value, or four (per coordinate).
        image_size: ``(height, width)`` in pixels; None: the image input's size.
        step: ``(step_h, step_w)`` between cell centres in pixels; None: image size / feature size.
        offset: the centre's offset inside a cell, in cells.
        data_format: ``"channels_last"`` or ``"channels_first"``.
    """

    def __init__(
        self,
        min_sizes,
        max_sizes=(),
        aspect_ratios=(),
        flip=True,
        clip=False,
        variances=(0.1,),
        image_size=None,
        step=None,
        offset=0.5,
        data_format="channels_last",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.min_sizes = tuple(float(s) for s in min_sizes)
        self.max_sizes = tuple(float(s) for s in max_sizes)
        self.aspect_ratios = tuple(float(r) for r in aspect_ratios)
        self.flip = bool(flip)
        self.clip = bool(clip)
        self.variances = tuple(float(v) for v in variances)
        self.image_size = None if image_size is None else tuple(int(s) for s in image_size)
        self.step = None if step is None else tuple(float(s) for s in step)
        self.offset = float(offset)
        self.data_format = check_data_format(data_format)
        if not self.min_sizes:
            raise ValueError("PriorBox needs at least one min size. Received: min_sizes=()")
        if self.max_sizes and len(self.max_sizes) != len(self.min_sizes):
            raise ValueError(
                f"PriorBox needs one max size per min size. Received: min_sizes={self.min_sizes}, "
                f"max_sizes={self.max_sizes}"
            )
        if len(self.variances) not in (1, 4):
            raise ValueError(f"PriorBox takes one variance or four. Received: variances={self.variances}")
        for name in ("min_sizes", "aspect_ratios"):
            values = getattr(self, name)
            if len(values) > MAX_SIZES or not all(v > 0 for v in values):  # also refuses NaN
                shown = values if len(values) <= 8 else f"({len(values)} values)"
                raise ValueError(f"PriorBox takes at most {MAX_SIZES} positive {name}. Received: {name}={shown}")
        if not all(v > 0 for v in (*(self.image_size or ()), *(self.step or ()))):
            raise ValueError(f"image_size and step must be positive. Received: image_size={image_size}, step={step}")
        self.sizes = prior_box_sizes(self.min_sizes, self.max_sizes, self.aspect_ratios, self.flip)

    def _spatial(self, shape) -> tuple[int | None, int | None]:
        if len(shape) != 4:
            raise ValueError(f"PriorBox takes 4-D inputs. Received: input_shape={shape}")
        return tuple(None if shape[a] is None else int(shape[a]) for a in spatial_axes(4, self.data_format))

    def _length(self, feature_shape) -> int | None:
        height, width = self._spatial(feature_shape)
        return None if None in (height, width) else height * width * len(self.sizes) * 4

    def _priors(self, feature_shape, image_shape) -> np.ndarray | None:
        """The boxes in this layout, or None while a size they depend on is free."""
        feature_size = self._spatial(feature_shape)
        image_size = self.image_size or self._spatial(image_shape)
        if None in feature_size or None in image_size:
            return None
        if self._length(feature_shape) * 2 > MAX_TENSOR_SIZE:
            raise ValueError(
                f"PriorBox would make more than {MAX_TENSOR_SIZE:,} values. Received: input_shape={feature_shape}"
            )
        priors = prior_boxes(feature_size, image_size, self.step, self.sizes, self.offset, self.clip, self.variances)
        return priors.T.copy() if self.data_format == "channels_last" else priors

    def build(self, input_shape):
        self.priors = self._priors(*input_shape)

    def call(self, inputs):
        feature, image = inputs
        # Built for free sizes, the boxes are computed for the sizes the model runs at.
        priors = self.priors if self.priors is not None else self._priors(feature.shape, image.shape)
        priors = ops.convert_to_tensor(priors, dtype=self.compute_dtype)
        return ops.broadcast_to(priors, (ops.shape(feature)[0], *priors.shape))

    def compute_output_shape(self, input_shape):
        length = self._length(input_shape[0])
        return (input_shape[0][0], length, 2) if self.data_format == "channels_last" else (input_shape[0][0], 2, length)

    def get_config(self):
        config = super().get_config()
        config.update(
            min_sizes=self.min_sizes,
            max_sizes=self.max_sizes,
            aspect_ratios=self.aspect_ratios,
            flip=self.flip,
            clip=self.clip,
            variances=self.variances,
            image_size=self.image_size,
            step=self.step,
            offset=self.offset,
            data_format=self.data_format,
        )
        return config

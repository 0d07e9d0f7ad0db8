"""SSD's PriorBox (weiliu89/caffe): the default boxes of a feature map, as the fork's CPU code computes them."""

from __future__ import annotations

import math

import numpy as np
from keras import layers, ops, saving

from caffe2keras.layers.common import MAX_TENSOR_SIZE, PACKAGE, check_data_format, spatial_axes

# Real nets give a handful; the bound keeps a hostile config from taking minutes (the list is
# deduplicated pairwise, as SSD does).
MAX_SIZES = 1024


def prior_aspect_ratios(aspect_ratios, flip: bool) -> list[float]:
    """SSD's list: 1 first, then each new ratio (within 1e-6), and 1/ratio after it if ``flip``."""
    ratios = [1.0]
    for ratio in (float(np.float32(r)) for r in aspect_ratios):
        if any(abs(ratio - known) < 1e-6 for known in ratios):
            continue
        ratios.append(ratio)
        if flip:
            ratios.append(float(np.float32(1.0 / ratio)))  # stored in a float vector
    return ratios


def prior_box_sizes(min_sizes, max_sizes, aspect_ratios, flip: bool) -> list[tuple[float, float]]:
    """(width, height) of each prior of a cell, in Caffe's order.

    Caffe reads each size into an ``int`` (so 60.7 counts as 60), then per min size emits
    the square box, the sqrt(min * max) box, and one box per aspect ratio other than 1.
    """
    sizes = []
    for index, min_float in enumerate(min_sizes):
        min_size = int(min_float)
        sizes.append((float(min_size), float(min_size)))
        if max_sizes:
            side = float(np.float32(math.sqrt(min_size * int(max_sizes[index]))))
            sizes.append((side, side))
        for ratio in prior_aspect_ratios(aspect_ratios, flip):
            if abs(ratio - 1.0) < 1e-6:
                continue
            root = math.sqrt(ratio)
            sizes.append((float(np.float32(min_size * root)), float(np.float32(min_size / root))))
    return sizes


def prior_boxes(feature_size, image_size, step, sizes, offset: float, clip: bool, variances) -> np.ndarray:
    """SSD's PriorBox blob without the batch axis: ``(2, H * W * len(sizes) * 4)``.

    Row 0 holds ``[xmin, ymin, xmax, ymax]`` per cell and prior, normalized by the image
    size; row 1 the variances. Centres are float32 as in Caffe; the corners are computed
    in double and stored as float32, as Caffe's ``(center - size / 2.) / image`` does.
    """
    height, width = feature_size
    image_h, image_w = image_size
    step_h, step_w = (
        step
        if step is not None
        else (np.float32(image_h) / np.float32(height), np.float32(image_w) / np.float32(width))
    )
    center_y = ((np.arange(height, dtype=np.float32) + np.float32(offset)) * np.float32(step_h)).astype(np.float64)
    center_x = ((np.arange(width, dtype=np.float32) + np.float32(offset)) * np.float32(step_w)).astype(np.float64)
    box_w = np.array([w for w, _ in sizes], np.float64)
    box_h = np.array([h for _, h in sizes], np.float64)
    cx = center_x[None, :, None]
    cy = center_y[:, None, None]
    corners = np.stack(
        np.broadcast_arrays(
            (cx - box_w / 2.0) / image_w,
            (cy - box_h / 2.0) / image_h,
            (cx + box_w / 2.0) / image_w,
            (cy + box_h / 2.0) / image_h,
        ),
        axis=-1,
    ).astype(np.float32)
    if clip:
        corners = np.clip(corners, 0.0, 1.0)
    variance = np.resize(np.asarray(variances, np.float32), 4)  # one value repeats; four are per coordinate
    return np.stack([corners.reshape(-1), np.tile(variance, corners.size // 4)])


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

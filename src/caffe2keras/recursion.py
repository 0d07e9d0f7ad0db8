"""Room on Python's stack for Keras' recursive walks over deep functional graphs.

Keras maps a functional model's graph (on construction, serialization and loading)
with a recursion about one frame deep per layer, so a chain of 2,000 layers exceeds
Python's default limit of 1,000 frames. Since Python 3.11 such pure-Python recursion
no longer uses the C stack, so the limit can be raised safely, for the duration of
the walk; it is bounded by :data:`MAX_DEPTH` all the same.
"""

from __future__ import annotations

import contextlib
import sys

from caffe2keras.errors import NetError

FRAMES_PER_LAYER = 2
SPARE_FRAMES = 1_000
MAX_DEPTH = 100_000  # layers; beyond it a net is refused rather than risk the interpreter's stack


@contextlib.contextmanager
def recursion_room(layers: int):
    """Raise the recursion limit for a graph of ``layers`` layers while the block runs; a
    :class:`RecursionError` inside becomes a :class:`NetError`."""
    if layers > MAX_DEPTH:
        raise NetError(
            f"the net has {layers:,} layers; caffe2keras builds at most {MAX_DEPTH:,}. Received: layers={layers}"
        )
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, FRAMES_PER_LAYER * layers + SPARE_FRAMES))
    try:
        yield
    except RecursionError:
        raise NetError(
            f"the net's graph of {layers:,} layers is too deep for Keras to walk. Received: layers={layers}"
        ) from None
    finally:
        sys.setrecursionlimit(previous)

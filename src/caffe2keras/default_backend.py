"""The conversion side's default Keras backend, on the ground floor: imported before Keras loads."""

import os


def use_default_backend() -> None:
    """JAX, unless the user set ``KERAS_BACKEND``; takes effect only before Keras is imported."""
    os.environ.setdefault("KERAS_BACKEND", "jax")

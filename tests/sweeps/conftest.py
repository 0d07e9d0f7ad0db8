"""Fixtures of the layer sweeps: one net per family, written once per module, and quick compiles."""

from __future__ import annotations

import pytest

from tests.shared import FORMATS
from tests.sweep import Family, check_family

try:
    import cv2
except ImportError:  # the test extra installs it; without it only Caffe's formulas judge
    cv2 = None


@pytest.fixture(autouse=True, scope="module")
def quick_jax_compiles():
    """Compile JAX programs without XLA's optimization passes while the sweeps run.

    Hundreds of small distinct layers cost one XLA compile each (when Keras initializes a reloaded
    layer's variables, and on the first call); unoptimized compiles are ~7x faster. Results are the
    same computation, within float rounding far below the tolerance.
    """
    import keras

    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(scope="module")
def written_families(tmp_path_factory):
    """Each family written once per module, with OpenCV's outputs (they do not depend on the format)."""
    built = {}

    def get(cases) -> tuple[Family, dict]:
        if cases not in built:
            name = cases.__name__.removesuffix("_cases")
            family = Family.write(name, cases(), tmp_path_factory.mktemp(name))
            built[cases] = family, family.opencv_outputs() if cv2 else {}
        return built[cases]

    return get


@pytest.fixture(params=FORMATS)
def data_format(request) -> str:
    return request.param


@pytest.fixture
def check_sweep(written_families, data_format, tmp_path):
    """``check_sweep(cases)``: the family ``cases()`` converted in each data format, saved,
    reloaded and compared blob by blob with Caffe's formulas and OpenCV."""

    def check(cases) -> None:
        family, opencv = written_families(cases)
        check_family(family, data_format, tmp_path, opencv)

    return check

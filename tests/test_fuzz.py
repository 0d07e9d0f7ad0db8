"""Short fuzzing runs (tools/fuzzing/): each family's hostile inputs, each a clean refusal or a
correct result, under 2 GiB and a time limit, nothing written outside its place. The long run
is ``python tools/fuzz.py``; its figures are in docs/errors.md (model files) and
docs/robustness.md (the other surfaces)."""

from __future__ import annotations

import pytest

from tools import fuzzing


@pytest.mark.slow
def test_a_short_fuzzing_run_of_the_model_files_finds_no_bug():
    pytest.importorskip("hypothesis")
    report = fuzzing.run(fuzzing.generate(60, seed=13), batch=60)
    assert report.tried == 60
    assert report.failures == []
    assert report.outcomes["refused"] + report.outcomes["converted"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "family",
    [
        "image",
        "mean",
        "array",
        "free-size",
        "labels",
        "catalog",
        "http",
        "weights",
    ],
)
def test_a_short_fuzzing_run_of_each_new_surface_finds_no_bug(family):
    pytest.importorskip("hypothesis")
    pytest.importorskip("cv2")
    report = fuzzing.run(fuzzing.generate(12, seed=7, chosen=(family,)), batch=12)
    assert report.tried == 12
    assert report.failures == []

"""A short fuzzing run (tests/fuzzing.py): mutated prototxts, caffemodels, HDF5 files and .keras
configs, each a clean refusal or a correct conversion, under 2 GiB and a time limit, nothing left
behind. The long run is ``python tools/fuzz.py``; its figures are in docs/errors.md."""

from __future__ import annotations

import pytest

from tests import fuzzing


@pytest.mark.slow
def test_a_short_fuzzing_run_finds_no_bug():
    pytest.importorskip("hypothesis")
    report = fuzzing.run(fuzzing.generate(60, seed=13), batch=60)
    assert report.tried == 60
    assert report.failures == []
    assert report.outcomes["refused"] + report.outcomes["converted"] > 0

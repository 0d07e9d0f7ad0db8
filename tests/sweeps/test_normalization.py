"""Sweeps of LRN and BatchNorm against Caffe's formulas (tests/oracle.py) and OpenCV (see tests/sweep.py)."""

from __future__ import annotations

import numpy as np

from tests import oracle
from tests.sweep import Case, Maker

# OpenCV's across-channel LRN does not apply k as Caffe does; real Caffe's blobs of
# golden/rand1022 (k: 2) agree with the formula (test_oracle_matches_real_caffe).
OPENCV_LRN_K = "OpenCV mishandles LRN's k != 1 across channels"
# Caffe's default alpha is 1; OpenCV uses another value when the prototxt leaves it out.
OPENCV_LRN_DEFAULT_ALPHA = "OpenCV's LRN has a different default alpha"


def lrn_cases() -> list[Case]:
    m = Maker(5)
    cases = []
    for size in (1, 3, 5):
        for alpha, beta, k in ((1e-4, 0.75, 1.0), (0.5, 0.75, 2.0), (2.0, 1.5, 0.5), (0.7, 0.5, 1.0)):
            tag = f"{size}_{alpha:g}_{beta:g}_{k:g}".replace(".", "p")
            across = {"local_size": size, "alpha": alpha, "beta": beta, "k": k}
            cases.append(
                m.single(
                    f"across_{tag}",
                    "LRN",
                    (2, 7, 4, 5),
                    {"lrn_param": across},
                    lambda x, a=across: oracle.lrn_across_channels(x, a["local_size"], a["alpha"], a["beta"], a["k"]),
                    opencv=OPENCV_LRN_K if k != 1 else None,
                )
            )
            within = {**across, "norm_region": "WITHIN_CHANNEL"}
            cases.append(
                m.single(
                    f"within_{tag}",
                    "LRN",
                    (2, 3, 6, 7),
                    {"lrn_param": within},
                    lambda x, a=within: oracle.lrn_within_channel(x, a["local_size"], a["alpha"], a["beta"]),
                )
            )
    # A window wider than the channels (5 over 3), and the defaults (size 5, alpha 1, beta 0.75, k 1).
    cases.append(
        m.single(
            "across_wider_than_channels",
            "LRN",
            (2, 3, 4, 4),
            {"lrn_param": {"local_size": 5}},
            lambda x: oracle.lrn_across_channels(x, 5, 1.0, 0.75, 1.0),
            opencv=OPENCV_LRN_DEFAULT_ALPHA,
        )
    )
    cases.append(
        m.single(
            "within_defaults",
            "LRN",
            (2, 2, 5, 5),
            {"lrn_param": {"norm_region": "WITHIN_CHANNEL"}},
            lambda x: oracle.lrn_within_channel(x, 5, 1.0, 0.75),
            opencv=OPENCV_LRN_DEFAULT_ALPHA,
        )
    )
    cases.append(
        m.single(
            "across_wider_than_channels_alpha",
            "LRN",
            (2, 3, 4, 4),
            {"lrn_param": {"local_size": 5, "alpha": 1.0}},
            lambda x: oracle.lrn_across_channels(x, 5, 1.0, 0.75, 1.0),
        )
    )
    return cases


def batch_norm_cases() -> list[Case]:
    m = Maker(6)
    cases = []
    for name, shape, factor, eps in (
        ("factor_1", (2, 4, 5, 3), 1.0, None),
        ("factor_999", (2, 4, 5, 3), 999.98, None),
        ("factor_0", (2, 3, 4, 4), 0.0, None),
        ("factor_0p5_eps_1e-3", (2, 3, 4, 4), 0.5, 1e-3),
        ("eps_0p1", (2, 3, 4, 4), 1.0, 0.1),
        ("bottom_2d", (2, 6), 2.0, None),
        ("bottom_3d", (2, 4, 5), 1.0, 1e-4),
    ):
        channels = shape[1]
        blobs = [
            m.array(channels) * factor,
            (m.array(channels, low=0.2, high=2.0) * factor).astype(np.float32),
            np.array([factor], np.float32),
        ]
        params = {"batch_norm_param": {"use_global_stats": True, **({"eps": eps} if eps is not None else {})}}
        cases.append(
            m.single(
                f"bn_{name}",
                "BatchNorm",
                shape,
                params,
                lambda x, mean, var, f, e=eps: oracle.batch_norm(x, mean, var, f, 1e-5 if e is None else e),
                blobs,
            )
        )
    return cases


def test_lrn(check_sweep):
    check_sweep(lrn_cases)


def test_batch_norm(check_sweep):
    check_sweep(batch_norm_cases)

"""Metrics: the AlexNet table and hand-computed CE, mCE, relative mCE and accuracy."""

from __future__ import annotations

import pytest
import torch

from augrobust.corruptions import CORRUPTION_ORDER
from augrobust.errors import AugrobustValueError
from augrobust.metrics import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    accuracy,
    ce,
    corruption_error,
    mce,
    relative_ce,
    relative_mce,
)

# The "Average" column of the README table (imagenet_c.md 5.2), i.e. AugMix's ALEXNET_ERR.
ALEXNET_AVERAGE = {
    "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640, "defocus_blur": 0.819880,
    "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360, "snow": 0.866816,
    "frost": 0.826572, "fog": 0.819324, "brightness": 0.564592, "contrast": 0.853204,
    "elastic_transform": 0.646056, "pixelate": 0.717840, "jpeg_compression": 0.606500,
    "speckle_noise": 0.845388, "gaussian_blur": 0.787108, "spatter": 0.717512, "saturate": 0.658248,
}  # fmt: skip


def test_alexnet_table_covers_all_19_corruptions_and_matches_the_published_averages():
    assert list(ALEXNET_ERRORS) == list(CORRUPTION_ORDER)
    for name, errs in ALEXNET_ERRORS.items():
        assert len(errs) == 5 and all(0 < e < 1 for e in errs)
        assert corruption_error(errs) == pytest.approx(ALEXNET_AVERAGE[name], abs=5e-7), name
    assert ALEXNET_CLEAN_ERROR == pytest.approx(0.435, abs=1e-3)


def test_corruption_error_is_the_mean_over_severities():
    assert corruption_error([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(0.3)
    assert corruption_error(torch.tensor([0.5, 0.7])) == pytest.approx(0.6)


def test_ce_is_ratio_of_sums():
    # (0.1 + 0.2 + 0.3 + 0.4 + 0.5) / (0.5 + 0.5 + 0.5 + 0.5 + 0.5) = 1.5 / 2.5
    assert ce([0.1, 0.2, 0.3, 0.4, 0.5], [0.5] * 5) == pytest.approx(0.6)
    # Not the mean of per-severity ratios (which would be (0.1/0.2 + 0.5/0.5) / 2 = 0.75).
    assert ce([0.1, 0.5], [0.2, 0.5]) == pytest.approx(0.6 / 0.7)


def test_mce_defaults_to_alexnet_and_averages_over_the_corruptions_given():
    assert mce(ALEXNET_ERRORS) == pytest.approx(1.0)
    half = {name: [e / 2 for e in errs] for name, errs in ALEXNET_ERRORS.items()}
    assert mce(half) == pytest.approx(0.5)
    # Hand computation against AlexNet: fog CE = 2.0 / sum(fog) ; brightness CE = 1.0 / sum(brightness).
    model = {"fog": [0.4] * 5, "brightness": [0.2] * 5}
    expected = (2.0 / 4.09662 + 1.0 / 2.82296) / 2
    assert mce(model) == pytest.approx(expected, rel=1e-9)
    # Custom baseline.
    assert mce({"a": [0.2, 0.2], "b": [0.3, 0.3]}, {"a": [0.4, 0.4], "b": [0.3, 0.3]}) == pytest.approx(0.75)


def test_relative_mce_subtracts_clean_errors():
    # Model: sum (E - 0.1) = 0.2 + 0.4 = 0.6 ; baseline: sum (B - 0.4) = 0.2 + 0.4 = 0.6 -> 1.0
    assert relative_ce([0.3, 0.5], 0.1, [0.6, 0.8], 0.4) == pytest.approx(1.0)
    assert relative_mce({"fog": [0.3, 0.5], "snow": [0.1, 0.4]}, 0.1, {"fog": [0.6, 0.8], "snow": [0.5, 0.7]}, 0.4) \
        == pytest.approx((1.0 + 0.3 / 0.4) / 2)  # fmt: skip
    assert relative_mce(ALEXNET_ERRORS, ALEXNET_CLEAN_ERROR) == pytest.approx(1.0)
    # Default AlexNet baseline and clean error, by hand for one corruption.
    fog = ALEXNET_ERRORS["fog"]
    model = [0.5] * 5
    expected = (2.5 - 5 * 0.2) / (sum(fog) - 5 * ALEXNET_CLEAN_ERROR)
    assert relative_mce({"fog": model}, 0.2) == pytest.approx(expected)


def test_metric_errors():
    with pytest.raises(AugrobustValueError, match="severities"):
        ce([0.1, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(AugrobustValueError, match="no baseline errors"):
        mce({"not_a_corruption": [0.1] * 5})
    with pytest.raises(AugrobustValueError, match="baseline_clean"):
        relative_mce({"a": [0.1]}, 0.0, baseline={"a": [0.5]})
    with pytest.raises(AugrobustValueError, match=r"\[0, 1\]"):
        corruption_error([0.5, 50.0])
    with pytest.raises(AugrobustValueError):
        mce({})
    with pytest.raises(AugrobustValueError, match="sum to 0"):
        ce([0.1], [0.0])


def test_accuracy_top1_and_topk():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 2.0], [0.0, 1.0, 5.0]])
    labels = torch.tensor([0, 1, 1, 0])
    assert accuracy(logits, labels) == pytest.approx(0.5)
    # Top-2 gains nothing: sample 2 ranks [2, 0] (label 1 missing), sample 3 ranks [2, 1] (label 0 missing).
    assert accuracy(logits, labels, topk=2) == pytest.approx(0.5)
    assert accuracy(logits, labels, topk=3) == pytest.approx(1.0)
    assert accuracy(logits, torch.tensor([0, 1, 2, 2])) == pytest.approx(1.0)
    with pytest.raises(AugrobustValueError):
        accuracy(logits, labels[:3])


def test_report_with_an_undefined_relative_mce_still_summarises_and_saves(tmp_path):
    # A baseline whose corrupted errors equal its clean error (a chance-level model on a small test set): CE and
    # mCE are defined, relative mCE is not. The report says so instead of failing (it failed in to_markdown and
    # save_json, i.e. at the end of `augrobust eval --baseline`, after all the work).
    from augrobust.report import Baseline, CorruptionReport

    base = Baseline("chance", {"fog": [0.9] * 5}, clean_error=0.9)
    r = CorruptionReport(clean_error=0.5, errors={"fog": [0.6, 0.7, 0.8, 0.9, 0.9]}, baseline=base)
    with pytest.raises(AugrobustValueError, match="undefined"):
        r.relative_mce()  # asked for directly, it stays an error
    assert r.mce() == pytest.approx(3.9 / 4.5)
    entry = r.means()["benchmark"]
    assert entry["mce"] == pytest.approx(3.9 / 4.5) and entry["relative_mce"] is None
    assert "relative mCE undefined" in r.to_markdown()
    assert CorruptionReport.load_json(r.save_json(tmp_path / "report.json")).mce() == pytest.approx(3.9 / 4.5)

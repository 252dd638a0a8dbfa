"""ImageNet-P metrics: hand-computed cases and a float64 NumPy transcription of ImageNet-P/test.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.metrics import (
    flip_probability,
    flip_probability_per_video,
    flip_rate,
    mean_flip_rate,
    mean_top5_distance,
    p_rule,
    top5_distance,
    top5_distance_per_video,
    zipf_distance_per_video,
)

# ----------------------------------------------------------------------------- transcription of test.py
# The reference walks each video with a step (1 for noise sequences, else the difficulty); for each start
# offset it compares successive frames of the strided slice (noise: always against the slice's first frame).


def ref_flip_prob(videos: list[np.ndarray], noise: bool, difficulty: int) -> float:
    step = 1 if noise else difficulty
    total = 0.0
    for preds in videos:
        flags = []
        for start in range(step):
            anchor = preds[start]
            for current in preds[start::step][1:]:
                flags.append(int(anchor != current))
                if not noise:
                    anchor = current
        total += np.mean(flags) / len(videos)
    return total


def ref_rank_distance(videos: list[np.ndarray], noise: bool, difficulty: int, mode: str) -> float:
    n_classes = videos[0].shape[-1]
    capped = np.cumsum(np.asarray([0] + [1] * 5 + [0] * (n_classes - 6)))
    recip = 1.0 / np.arange(1, n_classes + 1)

    def distance(sigma: np.ndarray) -> float:
        if mode == "top5":
            return float(np.sum(np.abs(capped[:5] - capped[sigma - 1][:5])))
        return float(np.sum(np.abs(recip - recip[sigma - 1]) * recip))

    step = 1 if noise else difficulty
    total = 0.0
    for scores in videos:
        ranks = [rankdata(-frame, method="ordinal").astype(np.int64) for frame in scores]
        values = []
        for start in range(step):
            first = ranks[start]
            first_inv = np.argsort(first)
            for second in ranks[start::step][1:]:
                values.append(distance(second[first_inv]))
                if not noise:
                    first, first_inv = second, np.argsort(second)
        total += np.mean(values) / len(videos)
    return total


# ----------------------------------------------------------------------------- hand-computed cases


def test_flip_probability_hand_cases():
    preds = torch.tensor([[0, 1, 1, 0, 0], [2, 2, 2, 2, 2]])
    # consecutive, stride 1: pairs (0,1)(1,2)(2,3)(3,4) -> 1,0,1,0 = 0.5 ; second video 0
    assert flip_probability_per_video(preds, rule="consecutive").tolist() == [0.5, 0.0]
    # noise: frames 1..4 against frame 0 -> 1,1,0,0 = 0.5
    assert flip_probability_per_video(preds, rule="noise").tolist() == [0.5, 0.0]
    # stride 2: pairs (0,2)(1,3)(2,4) -> 1,1,1 = 1.0
    assert flip_probability_per_video(preds, rule="consecutive", stride=2).tolist() == [1.0, 0.0]
    # stride 3: pairs (0,3)(1,4) -> 0,1
    assert flip_probability(preds, rule="consecutive", stride=3) == pytest.approx(0.25)


def test_top5_distance_hand_cases():
    base = torch.arange(10, 0, -1).double()  # class c has rank c
    # moving class 0 to rank 7: previous top-5 classes 0..4 now at ranks 7,0,1,2,3 -> |0-5|+1+1+1+1 = 9
    moved = base.clone()
    moved[0] = 2.5  # between classes 7 (score 3) and 8 (score 2)
    v = torch.stack([base, moved])[None]
    assert top5_distance_per_video(v, rule="consecutive").tolist() == [9.0]
    # a change below the top 5 does not count
    low = base.clone()
    low[[7, 9]] = low[[9, 7]]
    assert top5_distance(torch.stack([base, low])[None], rule="consecutive") == 0.0
    # ties rank the lower class index first, as rankdata(..., method="ordinal")
    tied = torch.zeros(1, 2, 6)
    tied[0, 1, 3] = 1.0  # class 3 jumps from rank 3 to rank 0: ranks 1,2,3,0,4 -> 1+1+1+3+0
    assert top5_distance(tied, rule="noise") == 6.0


def test_ratios_and_means():
    assert flip_rate(0.3, 0.6) == 0.5
    assert mean_flip_rate({"a": 0.1, "b": 0.4}, {"a": 0.2, "b": 0.2, "c": 1.0}) == pytest.approx(1.25)
    assert mean_top5_distance({"a": 1.0}, {"a": 2.0}) == 0.5
    with pytest.raises(AugrobustValueError, match="no value for"):
        mean_flip_rate({"a": 0.1, "x": 0.2}, {"a": 0.2})
    with pytest.raises(AugrobustValueError, match="> 0"):
        flip_rate(0.1, 0.0)


def test_constant_prediction_has_zero_flips():
    logits = torch.randn(1, 1, 10).expand(4, 31, 10)
    preds = logits.argmax(-1)
    for rule, stride in (("noise", 1), ("consecutive", 1), ("consecutive", 3)):
        assert flip_probability(preds, rule=rule, stride=stride) == 0.0
        assert top5_distance(logits, rule=rule, stride=stride) == 0.0


def test_bad_inputs():
    with pytest.raises(AugrobustValueError, match="rule"):
        flip_probability(torch.zeros(2, 5, dtype=torch.long), rule="other")
    with pytest.raises(AugrobustValueError, match="no stride"):
        flip_probability(torch.zeros(2, 5, dtype=torch.long), rule="noise", stride=2)
    with pytest.raises(AugrobustTypeError, match="integer"):
        flip_probability(torch.zeros(2, 5), rule="noise")
    with pytest.raises(AugrobustValueError, match="no pair"):
        flip_probability(torch.zeros(2, 3, dtype=torch.long), rule="consecutive", stride=3)
    with pytest.raises(AugrobustValueError, match="at least 5 classes"):
        top5_distance(torch.zeros(2, 3, 4), rule="noise")


# ----------------------------------------------------------------------------- against the transcription


@pytest.mark.parametrize("name", ["gaussian_noise", "rotate", "translate"])
@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_against_transcription_random_predictions(name, difficulty):
    rng = np.random.default_rng(difficulty * 31 + len(name))
    frames = 41 if name == "translate" else 31
    # few distinct values -> frequent ties and frequent flips, the cases a mis-ordering would show
    scores = rng.integers(0, 4, size=(7, frames, 12)).astype(np.float64) + rng.integers(0, 2, size=(7, frames, 1))
    noise = p_rule(name) == "noise"
    stride = 1 if noise else difficulty
    rule = p_rule(name)
    logits = torch.from_numpy(scores)
    videos = list(scores)
    preds = [np.argmax(v, axis=1) for v in videos]
    assert flip_probability(logits.argmax(-1), rule=rule, stride=stride) == pytest.approx(
        ref_flip_prob(preds, noise, difficulty), abs=1e-12
    )
    assert top5_distance(logits, rule=rule, stride=stride) == pytest.approx(
        ref_rank_distance(videos, noise, difficulty, "top5"), abs=1e-12
    )
    zipf = float(zipf_distance_per_video(logits, rule=rule, stride=stride).mean())
    assert zipf == pytest.approx(ref_rank_distance(videos, noise, difficulty, "zipf"), abs=1e-12)


def test_against_transcription_continuous_1000_classes():
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((3, 31, 1000)).astype(np.float32)
    scores += np.linspace(0, 2, 31, dtype=np.float32)[None, :, None] * rng.standard_normal((3, 1, 1000)).astype(
        np.float32
    )
    logits = torch.from_numpy(scores)
    videos = list(scores)
    for difficulty in (1, 2):
        assert top5_distance(logits, rule="consecutive", stride=difficulty) == pytest.approx(
            ref_rank_distance(videos, False, difficulty, "top5"), abs=1e-12
        )

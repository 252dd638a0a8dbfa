"""Corruption-robustness metrics: accuracy, corruption error (CE), mCE and relative mCE.

Definitions (Hendrycks & Dietterich, ICLR 2019; imagenet_c.md section 5.1), with ``E[c][s]`` the top-1 error
on corruption ``c`` at severity ``s``:

* ``CE_c = sum_s E^f[c][s] / sum_s E^base[c][s]`` (the baseline is AlexNet by default);
* ``mCE`` = mean of ``CE_c`` over the corruptions given (the benchmark uses the 15 "common" ones);
* relative ``CE_c = sum_s (E^f[c][s] - E^f_clean) / sum_s (E^base[c][s] - E^base_clean)``, relative mCE its mean.

Values are fractions (0.25 = 25 %); multiply by 100 for the percentages of papers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from augrobust.errors import AugrobustTypeError, AugrobustValueError

__all__ = [
    "ALEXNET_CLEAN_ERROR",
    "ALEXNET_ERRORS",
    "ECE_BINS",
    "accuracy",
    "ce",
    "corruption_error",
    "ece_bin_stats",
    "ece_from_bins",
    "mce",
    "relative_ce",
    "relative_mce",
]

#: Top-1 error of AlexNet on ImageNet-C per corruption, severities 1..5 (hendrycks/robustness README,
#: commit 76d9393; imagenet_c.md 5.2). Their mean is the ``ALEXNET_ERR`` constant of AugMix's imagenet.py.
ALEXNET_ERRORS: dict[str, list[float]] = {
    "gaussian_noise": [0.69528, 0.82542, 0.93554, 0.98138, 0.99452],
    "shot_noise": [0.71224, 0.85108, 0.93574, 0.98182, 0.99146],
    "impulse_noise": [0.78374, 0.89808, 0.94870, 0.98720, 0.99548],
    "defocus_blur": [0.65624, 0.73202, 0.85036, 0.91364, 0.94714],
    "glass_blur": [0.64308, 0.75054, 0.88806, 0.91622, 0.93344],
    "motion_blur": [0.58430, 0.70048, 0.82108, 0.89750, 0.92638],
    "zoom_blur": [0.70008, 0.76992, 0.80784, 0.84198, 0.87198],
    "snow": [0.71726, 0.88392, 0.86468, 0.91870, 0.94952],
    "frost": [0.61390, 0.79734, 0.88790, 0.89942, 0.93430],
    "fog": [0.67474, 0.76050, 0.84378, 0.87260, 0.94500],
    "brightness": [0.45140, 0.48502, 0.54048, 0.62166, 0.72440],
    "contrast": [0.64548, 0.76150, 0.88874, 0.97760, 0.99270],
    "elastic_transform": [0.52596, 0.70116, 0.55686, 0.64076, 0.80554],
    "pixelate": [0.52218, 0.54620, 0.73728, 0.87092, 0.91262],
    "jpeg_compression": [0.51002, 0.54718, 0.57294, 0.65458, 0.74778],
    "speckle_noise": [0.66192, 0.74440, 0.90246, 0.94548, 0.97268],
    "gaussian_blur": [0.54732, 0.70444, 0.82574, 0.89864, 0.95940],
    "spatter": [0.47196, 0.62194, 0.75052, 0.84132, 0.90182],
    "saturate": [0.59342, 0.65514, 0.51174, 0.70834, 0.82260],
}

#: AlexNet's clean top-1 error on ImageNet validation, the baseline of relative mCE. The paper's Table 1
#: prints 43.5 %; 0.4345 is the value third-party code uses (imagenet_c.md 5.1 marks it unverified).
ALEXNET_CLEAN_ERROR: float = 0.4345


def _errors(values: object, what: str) -> list[float]:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().reshape(-1).tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        try:
            values = list(values)  # type: ignore[call-overload]
        except TypeError:
            raise AugrobustTypeError(f"{what} must be a sequence of errors, got {type(values).__name__}.") from None
    out = [float(v) for v in values]
    if not out:
        raise AugrobustValueError(f"{what} is empty; give one error per severity.")
    if any(not 0.0 <= v <= 1.0 for v in out):
        raise AugrobustValueError(f"{what} must be error rates in [0, 1], got {out}.")
    return out


def corruption_error(errors_by_severity: Sequence[float]) -> float:
    """Mean error over severities (the unnormalised corruption error).

    Example:
        >>> corruption_error([0.1, 0.2, 0.3, 0.4, 0.5])
        0.3
    """
    errs = _errors(errors_by_severity, "errors_by_severity")
    return sum(errs) / len(errs)


def ce(model_errors: Sequence[float], baseline_errors: Sequence[float]) -> float:
    """Corruption Error: sum over severities of the model's errors over the sum of the baseline's.

    Example:
        >>> round(ce([0.2, 0.4], [0.4, 0.8]), 6)
        0.5
    """
    m, b = _errors(model_errors, "model_errors"), _errors(baseline_errors, "baseline_errors")
    if len(m) != len(b):
        raise AugrobustValueError(f"model has {len(m)} severities but the baseline {len(b)}; they must match.")
    denom = sum(b)
    if denom <= 0:
        raise AugrobustValueError("the baseline's errors sum to 0; CE is undefined.")
    return sum(m) / denom


def relative_ce(
    model_errors: Sequence[float], model_clean: float, baseline_errors: Sequence[float], baseline_clean: float
) -> float:
    """Relative Corruption Error: ``sum_s (E_s - E_clean) / sum_s (B_s - B_clean)``.

    Example:
        >>> round(relative_ce([0.3, 0.5], 0.1, [0.6, 0.8], 0.4), 6)
        1.0
    """
    m, b = _errors(model_errors, "model_errors"), _errors(baseline_errors, "baseline_errors")
    if len(m) != len(b):
        raise AugrobustValueError(f"model has {len(m)} severities but the baseline {len(b)}; they must match.")
    denom = sum(v - float(baseline_clean) for v in b)
    if denom == 0:
        raise AugrobustValueError("the baseline's corrupted and clean errors are equal; relative CE is undefined.")
    return sum(v - float(model_clean) for v in m) / denom


def _baseline_for(name: str, n: int, baseline: Mapping[str, Sequence[float]] | None) -> Sequence[float]:
    table = ALEXNET_ERRORS if baseline is None else baseline
    if name not in table:
        raise AugrobustValueError(
            f"no baseline errors for corruption {name!r}; the baseline has: {', '.join(table)}."
        )
    errs = table[name]
    if len(errs) != n:
        raise AugrobustValueError(
            f"corruption {name!r}: the model has {n} severities but the baseline {len(errs)}. To use a subset of "
            "severities, pass baseline errors for the same severities."
        )
    return errs


def _check_model(model: Mapping[str, Sequence[float]]) -> None:
    if not isinstance(model, Mapping):
        raise AugrobustTypeError(f"model errors must be a dict {{corruption: [e1..e5]}}, got {type(model).__name__}.")
    if not model:
        raise AugrobustValueError("model errors are empty; give at least one corruption.")


def mce(
    model: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]] | None = None
) -> float:
    """Mean Corruption Error over the corruptions in ``model``.

    Args:
        model: ``{corruption: [error at severity 1, ..., 5]}``.
        baseline: the same for the baseline; ``None`` uses :data:`ALEXNET_ERRORS`.

    For the ImageNet-C benchmark number, give the 15 ``get_corruption_names("common")`` corruptions.

    Example:
        >>> mce({"fog": [0.5, 0.5], "snow": [0.1, 0.1]}, {"fog": [1.0, 1.0], "snow": [0.4, 0.4]})
        0.375
    """
    _check_model(model)
    return sum(ce(errs, _baseline_for(name, len(errs), baseline)) for name, errs in model.items()) / len(model)


def relative_mce(
    model: Mapping[str, Sequence[float]],
    model_clean: float,
    baseline: Mapping[str, Sequence[float]] | None = None,
    baseline_clean: float | None = None,
) -> float:
    """Relative mCE: mean relative CE over the corruptions in ``model``.

    Args:
        model: ``{corruption: [e1..e5]}``.
        model_clean: the model's clean error.
        baseline: baseline errors; ``None`` uses AlexNet's (:data:`ALEXNET_ERRORS`).
        baseline_clean: the baseline's clean error; ``None`` with the AlexNet baseline uses
            :data:`ALEXNET_CLEAN_ERROR` and is required with a custom baseline.

    Example:
        >>> relative_mce({"fog": [0.3, 0.5]}, 0.1, {"fog": [0.6, 0.8]}, 0.4)
        1.0
    """
    _check_model(model)
    if baseline_clean is None:
        if baseline is not None:
            raise AugrobustValueError("a custom baseline needs its clean error: pass baseline_clean.")
        baseline_clean = ALEXNET_CLEAN_ERROR
    total = sum(
        relative_ce(errs, model_clean, _baseline_for(name, len(errs), baseline), baseline_clean)
        for name, errs in model.items()
    )
    return total / len(model)


#: Confidence bins of the expected calibration error: 15 equal-width bins on [0, 1] and one for a confidence
#: of exactly 1.0, as torchmetrics' ``MulticlassCalibrationError(n_bins=15)`` bins them.
ECE_BINS = 15


def ece_bin_stats(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS) -> torch.Tensor:
    """Per confidence bin: ``[count, sum of confidences, number correct]``, a ``(3, n_bins + 1)`` float64
    tensor on the logits' device (no host sync). The statistics of several batches add up, so ECE over a
    whole (possibly resumed) evaluation is :func:`ece_from_bins` of their sum.

    Example:
        >>> import torch
        >>> s = ece_bin_stats(torch.tensor([[4.0, 0.0], [0.0, 0.0]]), torch.tensor([0, 1]))
        >>> s.shape, int(s[0].sum())
        (torch.Size([3, 16]), 2)
    """
    probs = logits.detach().float().softmax(dim=1)
    conf, pred = probs.max(dim=1)
    edges = torch.linspace(0, 1, n_bins + 1, device=conf.device, dtype=conf.dtype)
    idx = torch.bucketize(conf, edges, right=True) - 1  # b[i] <= c < b[i+1]; c == 1 gets bin n_bins
    out = torch.zeros(3, n_bins + 1, dtype=torch.float64, device=conf.device)
    out[0].scatter_add_(0, idx, torch.ones_like(conf, dtype=torch.float64))
    out[1].scatter_add_(0, idx, conf.double())
    out[2].scatter_add_(0, idx, (pred == labels.to(pred.device)).double())
    return out


def ece_from_bins(stats: torch.Tensor | Sequence[Sequence[float]]) -> float:
    """Expected calibration error (L1) from :func:`ece_bin_stats`: ``sum_b |acc_b - conf_b| * n_b / n``.

    Example:
        >>> round(ece_from_bins([[2, 0], [1.8, 0], [1, 0]]), 6)  # 2 images at confidence 0.9, one correct
        0.4
    """
    s = torch.as_tensor(stats, dtype=torch.float64)
    count, conf, correct = s[0], s[1], s[2]
    total = float(count.sum())
    if total <= 0:
        raise AugrobustValueError("ECE of no images is undefined.")
    return float((correct - conf).abs().sum()) / total


def accuracy(logits: torch.Tensor, labels: torch.Tensor, *, topk: int = 1) -> float:
    """Top-``k`` accuracy of ``(N, num_classes)`` logits against ``(N,)`` integer labels, as a Python float.

    Example:
        >>> import torch
        >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), torch.tensor([0, 1, 1]))
        0.6666666666666666
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise AugrobustValueError(
            f"logits must be (N, num_classes) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}."
        )
    if logits.shape[0] == 0:
        raise AugrobustValueError("accuracy of an empty batch is undefined.")
    if not 1 <= topk <= logits.shape[1]:
        raise AugrobustValueError(f"topk must be in 1..{logits.shape[1]}, got {topk}.")
    top = logits.topk(topk, dim=1).indices
    hits = (top == labels.to(top.device).view(-1, 1)).any(dim=1)
    return float(hits.double().mean())


# ======================================================================================================
# ImageNet-P / CIFAR-10-P stability metrics (flip probability, flip rate, top-5 distance)
# ======================================================================================================
#
# As ``ImageNet-P/test.py`` of hendrycks/robustness computes them (``cifar-p-eval.py`` is the same):
#
# * noise sequences (gaussian_noise, shot_noise, speckle_noise: every name containing "noise"): each frame
#   j >= 1 is compared with the clean first frame 0; the difficulty only selects the data set, the stride is 1;
# * the other sequences: with stride d = the difficulty, frame j is compared with frame j - d for j >= d
#   (the script walks ``preds[i::d]`` for each offset i < d; both visit the same T - d pairs);
# * a video's value is the mean over its pairs, the data set's value the mean over videos.
#
# Top-5 distance of a pair: with the previous frame's classes ranked 0, 1, 2, ... and r_k the rank (0-based,
# ties broken by the lower class index, as ``rankdata(-logits, method="ordinal")``) that the previous frame's
# k-th class takes in the next frame, ``sum_{k<5} |k - min(r_k, 5)|``. The Zipf distance is the script's
# second ranking distance, ``sum_k |1/(k+1) - 1/(r_k+1)| / (k+1)`` over all classes.
#
# No AlexNet constants are shipped for these metrics: the published AlexNet FP / uT5D values are not in the
# reference code (imagenet_p.md), so flip rate and T5D are only computed against a baseline the caller gives.

__all__ += [
    "P_RULES",
    "flip_probability",
    "flip_probability_per_video",
    "flip_rate",
    "is_noise_perturbation",
    "mean_flip_rate",
    "mean_top5_distance",
    "p_rule",
    "top5_distance",
    "top5_distance_per_video",
    "zipf_distance_per_video",
]

#: The two comparison rules of the reference test script.
P_RULES: tuple[str, ...] = ("noise", "consecutive")


def is_noise_perturbation(name: str) -> bool:
    """Whether ``name`` is compared against its first frame (the script's ``'noise' in perturbation``).

    Example:
        >>> is_noise_perturbation("speckle_noise"), is_noise_perturbation("rotate")
        (True, False)
    """
    return "noise" in name


def p_rule(name: str) -> str:
    """The comparison rule of perturbation ``name``: ``"noise"`` or ``"consecutive"``.

    Example:
        >>> p_rule("shot_noise"), p_rule("translate")
        ('noise', 'consecutive')
    """
    return "noise" if is_noise_perturbation(name) else "consecutive"


def _check_rule(rule: object, stride: object) -> int:
    if rule not in P_RULES:
        raise AugrobustValueError(
            f"unknown rule {rule!r}; valid: {list(P_RULES)} (p_rule(name) gives a perturbation's rule)."
        )
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise AugrobustValueError(f"stride must be an int >= 1 (the difficulty), got {stride!r}.")
    if rule == "noise" and stride != 1:
        raise AugrobustValueError(
            f"the noise rule compares every frame with frame 0 and has no stride, got stride={stride}; "
            "pass stride=1 (the difficulty of a noise sequence only selects its noise level)."
        )
    return stride


def _pairs(frames: int, rule: str, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (previous, next) of the compared frames."""
    if frames <= stride:
        raise AugrobustValueError(f"a sequence of {frames} frames has no pair at stride {stride}; need > {stride}.")
    nxt = torch.arange(stride if rule == "consecutive" else 1, frames)
    prev = nxt - stride if rule == "consecutive" else torch.zeros_like(nxt)
    return prev, nxt


def flip_probability_per_video(predictions: torch.Tensor, *, rule: str, stride: int = 1) -> torch.Tensor:
    """Flip probability of each video: ``(V, T)`` top-1 labels -> ``(V,)`` float64.

    Args:
        predictions: integer top-1 predictions, one row per video, one column per frame.
        rule: ``"noise"`` (compare with frame 0) or ``"consecutive"`` (frame j with j - stride).
        stride: the difficulty for the consecutive rule; 1 for the noise rule.

    Example:
        >>> import torch
        >>> flip_probability_per_video(torch.tensor([[0, 0, 1, 1, 0]]), rule="consecutive")
        tensor([0.5000], dtype=torch.float64)
        >>> flip_probability_per_video(torch.tensor([[0, 0, 1, 1, 0]]), rule="noise")
        tensor([0.5000], dtype=torch.float64)
    """
    stride = _check_rule(rule, stride)
    if not isinstance(predictions, torch.Tensor) or predictions.ndim != 2:
        raise AugrobustValueError(
            f"predictions must be a (videos, frames) tensor of labels, got {getattr(predictions, 'shape', predictions)!r}."
        )
    if predictions.is_floating_point() or predictions.is_complex():
        raise AugrobustTypeError(
            f"predictions must hold integer labels, got {predictions.dtype}; pass logits.argmax(-1)."
        )
    prev, nxt = _pairs(predictions.shape[1], rule, stride)
    prev, nxt = prev.to(predictions.device), nxt.to(predictions.device)
    return (predictions[:, nxt] != predictions[:, prev]).double().mean(dim=1)


def flip_probability(predictions: torch.Tensor, *, rule: str, stride: int = 1) -> float:
    """Flip probability (FP) of a set of videos: the mean over videos of :func:`flip_probability_per_video`.

    Example:
        >>> import torch
        >>> flip_probability(torch.tensor([[3, 3, 3], [3, 1, 3]]), rule="consecutive")
        0.5
    """
    values = flip_probability_per_video(predictions, rule=rule, stride=stride)
    if values.numel() == 0:
        raise AugrobustValueError("the flip probability of zero videos is undefined.")
    return float(values.mean())


def _check_scores(logits: object) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 3:
        raise AugrobustValueError(
            f"logits must be a (videos, frames, classes) tensor, got {getattr(logits, 'shape', logits)!r}."
        )
    if not logits.is_floating_point():
        raise AugrobustTypeError(f"logits must be floating point, got {logits.dtype}.")
    return logits


def _ranks_of(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Class order (best first) and the 0-based rank of each class, ties to the lower class index."""
    order = torch.argsort(-logits, dim=-1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(logits.shape[-1], device=logits.device).expand_as(order))
    return order, ranks


def _moved_ranks(logits: torch.Tensor, rule: str, stride: int) -> torch.Tensor:
    """For each compared pair: the next frame's 0-based rank of the previous frame's k-th class, (V, P, K)."""
    stride = _check_rule(rule, stride)
    logits = _check_scores(logits)
    prev, nxt = _pairs(logits.shape[1], rule, stride)
    order, ranks = _ranks_of(logits)
    prev, nxt = prev.to(logits.device), nxt.to(logits.device)
    return torch.gather(ranks[:, nxt], -1, order[:, prev])


def top5_distance_per_video(logits: torch.Tensor, *, rule: str, stride: int = 1) -> torch.Tensor:
    """Top-5 distance of each video: ``(V, T, K)`` scores -> ``(V,)`` float64 (mean over its compared pairs).

    Example:
        >>> import torch
        >>> a = torch.tensor([9.0, 8, 7, 6, 5, 4, 3])  # classes ranked 0, 1, ..., 6
        >>> b = torch.tensor([8.0, 9, 7, 6, 5, 4, 3])  # the first two swap
        >>> top5_distance_per_video(torch.stack([a, b])[None], rule="consecutive")
        tensor([2.], dtype=torch.float64)
    """
    if isinstance(logits, torch.Tensor) and logits.ndim == 3 and logits.shape[-1] < 5:
        raise AugrobustValueError(f"the top-5 distance needs at least 5 classes, got {logits.shape[-1]}.")
    moved = _moved_ranks(logits, rule, stride)[..., :5]
    position = torch.arange(5, device=moved.device)
    per_pair = (position - moved.clamp(max=5)).abs().sum(-1)
    return per_pair.double().mean(dim=1)


def zipf_distance_per_video(logits: torch.Tensor, *, rule: str, stride: int = 1) -> torch.Tensor:
    """The script's Zipf ranking distance of each video, ``(V, T, K)`` -> ``(V,)`` float64.

    Example:
        >>> import torch
        >>> x = torch.tensor([[[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]]])
        >>> zipf_distance_per_video(x, rule="consecutive")
        tensor([0.], dtype=torch.float64)
    """
    moved = _moved_ranks(logits, rule, stride)
    recip = 1.0 / torch.arange(1, moved.shape[-1] + 1, device=moved.device, dtype=torch.float64)
    per_pair = ((recip - recip[moved]).abs() * recip).sum(-1)
    return per_pair.mean(dim=1)


def top5_distance(logits: torch.Tensor, *, rule: str, stride: int = 1) -> float:
    """Unnormalised top-5 distance (uT5D) of a set of videos: the mean over videos.

    Example:
        >>> import torch
        >>> top5_distance(torch.zeros(2, 4, 10), rule="noise")
        0.0
    """
    values = top5_distance_per_video(logits, rule=rule, stride=stride)
    if values.numel() == 0:
        raise AugrobustValueError("the top-5 distance of zero videos is undefined.")
    return float(values.mean())


def flip_rate(value: float, baseline: float) -> float:
    """Flip rate (or T5D): a model's FP (or uT5D) over the baseline model's on the same perturbation.

    Example:
        >>> flip_rate(0.02, 0.08)
        0.25
    """
    value, baseline = float(value), float(baseline)
    if not value >= 0.0:
        raise AugrobustValueError(f"the model's value must be a number >= 0, got {value}.")
    if not baseline > 0.0:
        raise AugrobustValueError(
            f"the baseline value must be > 0, got {baseline}; a baseline that never flips cannot normalise."
        )
    return value / baseline


def _mean_ratio(model: Mapping[str, float], baseline: Mapping[str, float], what: str) -> float:
    if not isinstance(model, Mapping) or not model:
        raise AugrobustValueError(f"{what} needs a non-empty mapping perturbation -> value, got {model!r}.")
    if not isinstance(baseline, Mapping):
        raise AugrobustTypeError(f"baseline must be a mapping perturbation -> value, got {type(baseline).__name__}.")
    missing = sorted(set(model) - set(baseline))
    if missing:
        raise AugrobustValueError(
            f"the baseline has no value for {missing}; it covers {sorted(baseline)}. "
            "Evaluate the baseline model on the same perturbations."
        )
    return sum(flip_rate(model[name], baseline[name]) for name in model) / len(model)


def mean_flip_rate(model: Mapping[str, float], baseline: Mapping[str, float]) -> float:
    """mFR: the mean over the model's perturbations of FP / baseline FP (no built-in AlexNet values).

    Example:
        >>> mean_flip_rate({"rotate": 0.1, "scale": 0.3}, {"rotate": 0.2, "scale": 0.3})
        0.75
    """
    return _mean_ratio(model, baseline, "mFR")


def mean_top5_distance(model: Mapping[str, float], baseline: Mapping[str, float]) -> float:
    """mT5D: the mean over the model's perturbations of uT5D / baseline uT5D.

    Example:
        >>> mean_top5_distance({"tilt": 1.0}, {"tilt": 4.0})
        0.25
    """
    return _mean_ratio(model, baseline, "mT5D")

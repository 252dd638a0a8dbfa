"""evaluate_perturbations: on-the-fly sequences, metrics equal to the metric functions, report round trip."""

from __future__ import annotations

import pytest
import torch

from augrobust.errors import AugrobustValueError
from augrobust.metrics import flip_probability, top5_distance
from augrobust.perturbation_eval import PerturbationReport, evaluate_perturbations
from augrobust.perturbations import perturb, perturbation_generators


class PixelModel(torch.nn.Module):
    """A fixed random linear classifier on 4x4-pooled pixels: sensitive to small changes, deterministic."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(3 * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1) * 20)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, generator=g)


def test_constant_model_has_zero_flips(images):
    model = lambda x: torch.arange(10.0).expand(x.shape[0], 10)  # noqa: E731
    report = evaluate_perturbations(model, images, perturbations=["gaussian_noise", "rotate"], variant="cifar")
    assert report.fp() == {"gaussian_noise": 0.0, "rotate": 0.0}
    assert report.ut5d() == {"gaussian_noise": 0.0, "rotate": 0.0}


def test_equals_the_metric_functions_and_does_not_depend_on_batch_size(images):
    model = PixelModel().eval()
    names = ["shot_noise", "translate", "brightness"]
    a = evaluate_perturbations(model, images, perturbations=names, variant="cifar", batch_size=2, seed=3)
    b = evaluate_perturbations(model, images, perturbations=names, variant="cifar", batch_size=5, seed=3)
    for name in names:
        for d in ("1", "2", "3"):
            assert a.results[name][d]["fp"] == pytest.approx(b.results[name][d]["fp"], abs=1e-12)
    for name in names:
        for d in (1, 2, 3):
            make_d = d if "noise" in name else 1
            gens = perturbation_generators(name, make_d, range(5), seed=3)
            frames = perturb(images, name, make_d, variant="cifar", generator=gens)
            with torch.no_grad():
                logits = model(frames.flatten(0, 1).float() / 255).view(5, frames.shape[1], -1)
            rule, stride = ("noise", 1) if "noise" in name else ("consecutive", d)
            assert a.results[name][str(d)]["fp"] == pytest.approx(
                flip_probability(logits.argmax(-1), rule=rule, stride=stride)
            )
            assert a.results[name][str(d)]["ut5d"] == pytest.approx(top5_distance(logits, rule=rule, stride=stride))
    assert any(a.results[n]["1"]["fp"] > 0 for n in names)  # the check above is not vacuous


def test_report_round_trip_and_baseline(images, tmp_path):
    model = PixelModel().eval()
    report = evaluate_perturbations(model, images, perturbations=["translate"], difficulties=[1, 2], variant="cifar")
    path = report.save_json(tmp_path / "p.json")
    again = PerturbationReport.load_json(path)
    assert again.results == report.results
    assert again.mean_flip_rate(report) == pytest.approx(1.0)
    assert report.fp()["translate"] > 0
    assert "| translate | 2 |" in report.to_markdown(baseline=again)
    other = evaluate_perturbations(model, images, perturbations=["translate"], difficulties=[1], variant="cifar")
    with pytest.raises(AugrobustValueError, match="baseline lacks"):
        report.mean_flip_rate(other)


def test_bad_arguments(images):
    with pytest.raises(AugrobustValueError, match="unknown perturbation"):
        evaluate_perturbations(lambda x: x, images, perturbations=["fog"], variant="cifar")
    with pytest.raises(AugrobustValueError, match="difficulties"):
        evaluate_perturbations(lambda x: x, images, difficulties=[4], variant="cifar")

"""The perceptual path length (`ganzoo eval --metrics ppl,ppl-w`): its protocol on generators whose answer is known in
closed form, and that it ranks generators as a person would: one whose digit flips back and forth as z moves scores
far higher than one that morphs slowly, and one that never changes scores 0."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

import ganzoo
from ganzoo.cli import cli
from ganzoo.data import load_dataset
from ganzoo.errors import GanzooUsageError
from ganzoo.interfaces import Generator
from ganzoo.metrics import evaluate, get_extractor, higher_is_better
from ganzoo.metrics.ppl import perceptual_path_length, slerp_on_sphere
from ganzoo.testing import tiny_config

DIM = 16


class Linear(Generator):
    """z (or w = z) laid out as a 1 x 4 x 4 image: the image moves exactly as the latent does."""

    def __init__(self) -> None:
        super().__init__(DIM, (1, 4, 4))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesize(z)

    def style_latents(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return z

    def synthesize(self, ws: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return ws.view(-1, 1, 4, 4)


def pixels(images: torch.Tensor) -> torch.Tensor:
    return images.flatten(1)


def test_slerp_stays_on_the_sphere_and_runs_from_one_direction_to_the_other():
    a, b = torch.randn(5, DIM, dtype=torch.float64), torch.randn(5, DIM, dtype=torch.float64)
    radius = math.sqrt(DIM)
    for t in (0.0, 0.3, 1.0):
        assert torch.allclose(slerp_on_sphere(a, b, torch.full((5,), t)).norm(dim=1),
                              torch.full((5,), radius, dtype=torch.float64))
    assert torch.allclose(slerp_on_sphere(a, b, torch.zeros(5)), a / a.norm(dim=1, keepdim=True) * radius)
    assert torch.allclose(slerp_on_sphere(a, b, torch.ones(5)), b / b.norm(dim=1, keepdim=True) * radius)


def test_the_protocols_on_a_generator_that_is_its_latent():
    """With images = latent and pixels as features, a path's value is its speed squared: in W, lerp from w0 to w1,
    ||w1 - w0||^2, whose mean is 2 * dim; in Z, slerp on the sphere of radius sqrt(dim), (angle * sqrt(dim))^2,
    about (pi / 2)^2 * dim for random directions. Trimming 1 % at each end moves the means by little."""
    G = Linear()
    ppl_w, raw_w = perceptual_path_length(G, pixels, 4000, protocol="ppl-w", batch_size=500)
    assert ppl_w == pytest.approx(2 * DIM, rel=0.05)
    assert raw_w.shape == (4000,) and ppl_w < raw_w.mean().item()  # the top 1 % of a skewed law was dropped
    ppl_z, _ = perceptual_path_length(G, pixels, 4000, protocol="ppl", batch_size=500)
    assert ppl_z == pytest.approx((math.pi / 2) ** 2 * DIM, rel=0.08)
    again, _ = perceptual_path_length(G, pixels, 4000, protocol="ppl", batch_size=300)  # batching changes nothing
    assert again == pytest.approx(ppl_z, rel=1e-6)


class Morph(Generator):
    """Two real digits blended by s(z) = sigmoid(sharpness * sin(frequency * z . u)): a slow morph at low frequency
    and sharpness, a digit that flips abruptly back and forth at high ones, one fixed digit at sharpness 0 and
    frequency 0."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, frequency: float, sharpness: float) -> None:
        super().__init__(DIM, tuple(a.shape))
        self.register_buffer("a", a)
        self.register_buffer("b", b)
        self.register_buffer("u", torch.ones(DIM) / math.sqrt(DIM))
        self.frequency, self.sharpness = frequency, sharpness

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.frequency == 0:
            return self.a.expand(len(z), -1, -1, -1)
        s = torch.sigmoid(self.sharpness * torch.sin(self.frequency * (z @ self.u)))
        return torch.lerp(self.a, self.b, s.view(-1, 1, 1, 1))


def test_a_generator_that_jumps_has_a_longer_path_than_a_smooth_one_and_a_constant_none():
    data = load_dataset("mnist-5k", img_size=28, channels=1)
    digits = data.images.float().div(127.5).sub(1.0)
    a, b = digits[(data.labels == 1).nonzero()[0, 0]], digits[(data.labels == 8).nonzero()[0, 0]]
    features = get_extractor("digits").float_features
    scores = {name: perceptual_path_length(Morph(a, b, f, k), features, 400)[0]
              for name, f, k in (("constant", 0.0, 0.0), ("smooth", 0.5, 1.0), ("jumpy", 20.0, 20.0))}
    assert scores["constant"] == 0.0
    assert scores["smooth"] > 0 and scores["jumpy"] > 20 * scores["smooth"], scores


def test_ppl_is_a_metric_of_ganzoo_eval(tmp_path):
    gan = ganzoo.create("stylegan-lite", seed=0, **tiny_config("stylegan-lite"))
    gan.generator.train()
    result = evaluate(gan, "mnist-5k", ["ppl", "ppl-w"], num_samples=40)
    assert gan.generator.training  # measured in eval mode (fixed noise, no mixing), and the mode put back
    assert set(result.values) == {"ppl", "ppl_w"} and all(v > 0 for v in result.values.values())
    assert not higher_is_better("ppl") and not higher_is_better("ppl_w")
    prov = result.provenance
    assert prov["ppl_epsilon"] == 1e-4 and prov["ppl_paths"] == 40 and "not LPIPS" in prov["ppl_distance"]
    assert prov["ppl_protocol"]["ppl"].startswith("slerp in Z") and prov["ppl_protocol"]["ppl-w"].startswith("lerp")
    folder = gan.save_pretrained(tmp_path / "model", samples=False)
    out = CliRunner().invoke(cli, ["eval", str(folder), "--metrics", "ppl", "-n", "40", "--device", "cpu",
                                   "--no-save"])
    assert out.exit_code == 0, out.output
    line = next(line for line in out.output.splitlines() if line.strip().startswith("ppl"))
    assert float(line.split()[1]) == pytest.approx(result.values["ppl"], rel=1e-4)


def test_ppl_w_needs_a_w_space_and_ppl_needs_unrounded_features():
    gan = ganzoo.create("dcgan", seed=0, **tiny_config("dcgan"))
    with pytest.raises(GanzooUsageError, match="ppl-w walks the intermediate latent space W, and .* has none"):
        evaluate(gan, "mnist-5k", ["ppl-w"], num_samples=10)
    assert evaluate(gan, "mnist-5k", ["ppl"], num_samples=10).values["ppl"] > 0  # Z paths: every generator
    with pytest.raises(GanzooUsageError, match="torch-fidelity's Inception reads 8-bit ones only"):
        evaluate(gan, "mnist-5k", ["ppl"], extractor="inception", num_samples=10)

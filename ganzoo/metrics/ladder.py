"""The ladder: fixed image sets of known order that a feature space must rank as a person would.

Every set is built from mnist-5k (`ganzoo.data`), deterministically, and scored by Fréchet distance and KID against
the reference that `ganzoo eval` uses by default, mnist-5k's test part (1,000 digits). The rungs, 400 images each:

- `real`: the first 40 of every class of the train part (real digits, none of them in the reference);
- `blur 0.5`, `blur 1`, `blur 2`: the same images under a Gaussian blur of that sigma (pixels);
- `noise 10%`, `noise 30%`: the same images with that fraction of pixels replaced by uniform noise;
- `only 0` ... `only 9`: the first 400 train images of a single class;
- `blank`: black images (MNIST's background); `uniform noise`: every pixel uniform in 0..255.

What a person sees, and so what the scores must show (`ORDERS`, `WORST`): each family gets worse step by step
(real < blur 0.5 < blur 1 < blur 2; real < noise 10% < noise 30%); a single class is worse than all ten; blank
images and uniform noise are worse than every other rung. `violations` lists what a set of scores gets wrong;
tests/test_ladder.py holds the `digits` extractor to it and benchmarks/quality.py reports it for any extractor.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from ganzoo.metrics.evaluation import KID_SUBSETS

__all__ = ["ORDERS", "PER_CLASS", "WORST", "Ladder", "build_ladder", "score_ladder", "violations"]

PER_CLASS = 40  # real images per class in the `real` rung (400 in all)
BLUR_SIGMAS = (0.5, 1.0, 2.0)
NOISE_FRACTIONS = (0.1, 0.3)
#: chains of rungs, each strictly worse than the one before
ORDERS: tuple[tuple[str, ...], ...] = (
    ("real", *(f"blur {s:g}" for s in BLUR_SIGMAS)),
    ("real", *(f"noise {p:.0%}" for p in NOISE_FRACTIONS)),
    *(("real", f"only {c}") for c in range(10)),
)
#: rungs that must be worse than every rung not listed here
WORST = ("blank", "uniform noise")


@dataclass
class Ladder:
    """The reference images and the rungs (name -> uint8 images (N, 1, 28, 28)), in the order they were built."""

    reference: torch.Tensor
    rungs: dict[str, torch.Tensor]


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as F

    return F.gaussian_blur(images, kernel_size=2 * math.ceil(3 * sigma) + 1, sigma=sigma)


def _replace_with_noise(images: torch.Tensor, fraction: float, gen: torch.Generator) -> torch.Tensor:
    chosen = torch.rand(images.shape, generator=gen) < fraction
    noise = torch.randint(0, 256, images.shape, generator=gen, dtype=torch.uint8)
    return torch.where(chosen, noise, images)


def build_ladder(per_class: int = PER_CLASS, seed: int = 0) -> Ladder:
    """The ladder's image sets (see the module docstring); the same images for the same arguments."""
    from ganzoo.data import load_dataset

    reference = load_dataset("mnist-5k", img_size=28, channels=1, split="test")
    train = load_dataset("mnist-5k", img_size=28, channels=1, split="train")
    assert train.labels is not None
    by_class = [(train.labels == c).nonzero().flatten() for c in range(10)]
    if per_class < 1 or any(len(idx) < 10 * per_class for idx in by_class):
        raise ValueError(f"per_class must be in 1..{min(len(i) for i in by_class) // 10}, got {per_class}")
    real = train.images[torch.cat([idx[:per_class] for idx in by_class])]
    gen = torch.Generator().manual_seed(seed)
    rungs = {"real": real}
    rungs.update({f"blur {s:g}": _blur(real, s) for s in BLUR_SIGMAS})
    rungs.update({f"noise {p:.0%}": _replace_with_noise(real, p, gen) for p in NOISE_FRACTIONS})
    rungs.update({f"only {c}": train.images[idx[:len(real)]] for c, idx in enumerate(by_class)})
    rungs["blank"] = torch.zeros_like(real)
    rungs["uniform noise"] = torch.randint(0, 256, real.shape, generator=gen, dtype=torch.uint8)
    return Ladder(reference.images, rungs)


def score_ladder(extractor: str = "digits", ladder: Ladder | None = None, device: str | torch.device | None = None,
                 seed: int = 0, kid_subsets: int = KID_SUBSETS) -> dict[str, dict[str, float]]:
    """Fréchet distance and KID of every rung against the reference: {rung: {"fid": ..., "kid": ...}}.

    KID is ganzoo's (`ganzoo.metrics.evaluation`): subsets of 400 (a rung's size), `kid_subsets` of them (default
    `KID_SUBSETS`, 100). With one seed every rung is compared with the same reference subsets, so fewer subsets
    (the test takes 20: a fifth of the time) still compare rungs like for like."""
    from ganzoo.metrics.evaluation import _kid, extract_features, frechet_distance
    from ganzoo.metrics.extractors import get_extractor

    ladder = ladder or build_ladder()
    network = get_extractor(extractor, device)
    real = extract_features(network, ladder.reference)["features"]
    scores = {}
    for name, images in ladder.rungs.items():
        fake = extract_features(network, images)["features"]
        scores[name] = {"fid": frechet_distance(fake, real), "kid": _kid(fake, real, seed, kid_subsets)["kid"]}
    return scores


def violations(scores: dict[str, dict[str, float]], metric: str) -> list[str]:
    """Where `scores` (from `score_ladder`) rank the rungs otherwise than a person would, as readable lines;
    empty when the ladder holds for `metric` ("fid" or "kid")."""
    found = []
    for chain in ORDERS:
        for better, worse in itertools.pairwise(chain):
            if not scores[worse][metric] > scores[better][metric]:
                found.append(f"{metric}: {worse} ({scores[worse][metric]:.4g}) is not worse than {better} "
                             f"({scores[better][metric]:.4g})")
    others = [name for name in scores if name not in WORST]
    for bad in WORST:
        best_other = max(others, key=lambda name: scores[name][metric])
        if not scores[bad][metric] > scores[best_other][metric]:
            found.append(f"{metric}: {bad} ({scores[bad][metric]:.4g}) is not worse than {best_other} "
                         f"({scores[best_other][metric]:.4g})")
    return found

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

The colour ladder (`build_colour_ladder`, `COLOUR_ORDERS`, `COLOUR_WORST`) does the same for colour images, from the
emoji sets (`ganzoo.emoji`, the emoji extra), at 32x32 against twemoji's test part (338 emoji). The rungs, 200 images
each (one group of the train part has no more than 220 emoji):

- `real`: 200 emoji of twemoji's train part, evenly spaced through it (so every group in its share): the same style,
  other emoji;
- `blur 0.5`, `blur 1`, `blur 2`: the same images under a Gaussian blur of that sigma (pixels);
- `noise 5%`, `noise 15%`: the same images plus Gaussian noise of that standard deviation (of the full 0..255 range);
- `hue 120`, `red-blue swap`: the same images with their colours changed: the channels rotated (red to green, green
  to blue, blue to red: a hue rotation by 120 degrees), or red and blue swapped;
- `only Flags`, `only People & Body`, `only Objects`: the first 200 train emoji of one Unicode group (the three
  groups with 200 or more);
- `openmoji style`: 200 of the test emoji themselves, the reference's own emoji, drawn by OpenMoji instead;
- `smooth colour fields`: random colours on a 4x4 grid, upsampled bicubically to the full image;
- `blank`: the background alone (white).

What a person sees, and so what the scores must show (`COLOUR_ORDERS`, `COLOUR_WORST`): real < blur 0.5 < blur 1 <
blur 2; real < noise 5% < noise 15%; real < each colour shift; real < each single group; real < openmoji style (the
same emoji in another style are further from twemoji's drawings than other twemoji drawings are); smooth colour
fields and blank images, which show no emoji at all, worse than every other rung. tests/test_colour_metric.py holds
the `colour` extractor to it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from ganzoo.metrics.evaluation import KID_SUBSETS

__all__ = ["COLOUR_ORDERS", "COLOUR_WORST", "ORDERS", "PER_CLASS", "WORST", "Ladder", "build_colour_ladder",
           "build_ladder", "score_ladder", "violations"]

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


COLOUR_PER_RUNG = 200  # images per rung of the colour ladder
COLOUR_NOISE_STDS = (0.05, 0.15)  # Gaussian noise, standard deviation over the full range
COLOUR_GROUPS = ("Flags", "People & Body", "Objects")  # the Unicode groups with 200 or more train emoji
COLOUR_SHIFTS = ("hue 120", "red-blue swap")
COLOUR_REFERENCE = "twemoji"
COLOUR_OTHER_STYLE = "openmoji"
COLOUR_SIZE = 32
#: the colour ladder's chains of rungs, each strictly worse than the one before
COLOUR_ORDERS: tuple[tuple[str, ...], ...] = (
    ("real", *(f"blur {s:g}" for s in BLUR_SIGMAS)),
    ("real", *(f"noise {s:.0%}" for s in COLOUR_NOISE_STDS)),
    *(("real", shift) for shift in COLOUR_SHIFTS),
    *(("real", f"only {group}") for group in COLOUR_GROUPS),
    ("real", f"{COLOUR_OTHER_STYLE} style"),
)
#: colour rungs that must be worse than every rung not listed here
COLOUR_WORST = ("smooth colour fields", "blank")


def _gaussian_noise(images: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=gen) * std * 255
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def _smooth_fields(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """`n` RGB images of random colours on a 4x4 grid, upsampled bicubically to `size`."""
    coarse = torch.rand(n, 3, 4, 4, generator=gen)
    fine = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return fine.mul(255).round().clamp(0, 255).to(torch.uint8)


def build_colour_ladder(per_rung: int = COLOUR_PER_RUNG, seed: int = 0) -> Ladder:
    """The colour ladder's image sets (see the module docstring): 32x32 RGB on white, the reference twemoji's test
    part. Needs the emoji extra; the same images for the same arguments."""
    from ganzoo.data import load_dataset
    from ganzoo.emoji import EMOJI_GROUPS

    size = COLOUR_SIZE
    reference = load_dataset(COLOUR_REFERENCE, img_size=size, channels=3, split="test")
    train = load_dataset(COLOUR_REFERENCE, img_size=size, channels=3, split="train")
    other = load_dataset(COLOUR_OTHER_STYLE, img_size=size, channels=3, split="test")
    assert train.labels is not None
    by_group = {g: (train.labels == EMOJI_GROUPS.index(g)).nonzero().flatten() for g in COLOUR_GROUPS}
    if per_rung < 1 or per_rung > min(len(other), *(len(idx) for idx in by_group.values())):
        raise ValueError(f"per_rung must be in 1..{min(len(other), *(len(i) for i in by_group.values()))}, got "
                         f"{per_rung}")

    def spread(n: int) -> torch.Tensor:  # `per_rung` indices evenly spaced through 0..n-1
        return torch.linspace(0, n - 1, per_rung).round().long()

    real = train.images[spread(len(train))]
    gen = torch.Generator().manual_seed(seed)
    rungs = {"real": real}
    rungs.update({f"blur {s:g}": _blur(real, s) for s in BLUR_SIGMAS})
    rungs.update({f"noise {s:.0%}": _gaussian_noise(real, s, gen) for s in COLOUR_NOISE_STDS})
    rungs["hue 120"] = real[:, [2, 0, 1]]  # red becomes green, green blue, blue red
    rungs["red-blue swap"] = real[:, [2, 1, 0]]
    rungs.update({f"only {g}": train.images[idx[:per_rung]] for g, idx in by_group.items()})
    rungs[f"{COLOUR_OTHER_STYLE} style"] = other.images[spread(len(other))]
    rungs["smooth colour fields"] = _smooth_fields(per_rung, size, gen)
    rungs["blank"] = torch.full_like(real, 255)
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


def violations(scores: dict[str, dict[str, float]], metric: str, *, orders: tuple[tuple[str, ...], ...] = ORDERS,
               worst: tuple[str, ...] = WORST) -> list[str]:
    """Where `scores` (from `score_ladder`) rank the rungs otherwise than a person would, as readable lines;
    empty when the ladder holds for `metric` ("fid" or "kid"). `orders` and `worst` are the ladder's (the digits
    ladder's by default; `COLOUR_ORDERS` and `COLOUR_WORST` for the colour ladder)."""
    found = []
    for chain in orders:
        for better, worse in itertools.pairwise(chain):
            if not scores[worse][metric] > scores[better][metric]:
                found.append(f"{metric}: {worse} ({scores[worse][metric]:.4g}) is not worse than {better} "
                             f"({scores[better][metric]:.4g})")
    others = [name for name in scores if name not in worst]
    for bad in worst:
        best_other = max(others, key=lambda name: scores[name][metric])
        if not scores[bad][metric] > scores[best_other][metric]:
            found.append(f"{metric}: {bad} ({scores[bad][metric]:.4g}) is not worse than {best_other} "
                         f"({scores[best_other][metric]:.4g})")
    return found

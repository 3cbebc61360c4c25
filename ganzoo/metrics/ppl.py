"""Perceptual path length (Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for Generative
Adversarial Networks", section 4.2): how much a generator's images change, in a feature space, per small step along
a path through its latent space. A generator whose images jump as the latent moves scores high; a smooth one low.

For each of `num_samples` paths: two latents z0, z1, a position t, and the images at t and t + epsilon along the
path; the path's value is the squared distance between their features over epsilon squared. Values below the 1st
and above the 99th percentile are dropped, as in the paper, and the rest averaged. Two protocols:

- `ppl` ("full" paths in Z): t ~ U(0, 1), spherical interpolation (slerp) between z0 and z1. The latents are put
  on the sphere of radius sqrt(z_dim) where Gaussian latents concentrate (the paper normalises them to unit length,
  which its mapping network undoes); every generator can be measured so.
- `ppl-w` (path ends in W, StyleGAN2's reported protocol): t = 0, linear interpolation between the intermediate
  latents w0, w1 of z0, z1 (`Generator.style_latents`, per layer), images from `Generator.synthesize`: only for
  generators with an intermediate latent space.

What differs from the paper: the distance is the squared Euclidean distance between the features of a ganzoo
extractor (`digits` or `colour` offline; `timm:<model>`), not LPIPS (VGG-16 features with learned weights, whose
weights are not shipped and not downloadable offline), and images are not cropped (the paper crops faces
to their centre).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch

from ganzoo.errors import GanzooUsageError

__all__ = ["EPSILON", "PROTOCOLS", "perceptual_path_length", "slerp_on_sphere"]

EPSILON = 1e-4  # the paper's step along the path
TRIM_PERCENT = 1.0  # values below the 1st and above the 99th percentile are dropped
#: metric name -> (latent space, sampling of t)
PROTOCOLS: dict[str, tuple[Literal["z", "w"], Literal["full", "end"]]] = {"ppl": ("z", "full"), "ppl-w": ("w", "end")}


def slerp_on_sphere(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of rows of `a` and `b` at `t` (N,), on the sphere of radius
    sqrt(dim): the great-circle path between the two directions, traversed at constant speed."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    angle = t.unsqueeze(-1) * torch.arccos(cos)
    ortho = b - cos * a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    point = a * torch.cos(angle) + ortho * torch.sin(angle)
    return point / point.norm(dim=-1, keepdim=True) * math.sqrt(a.shape[-1])


def _paths(G: Any, space: str, z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None,
           epsilon: float, generator_kwargs: dict[str, Any]) -> torch.Tensor:
    """The images at t and t + epsilon of each path, stacked as (2N, C, H, W)."""
    both = None if labels is None else torch.cat([labels, labels])
    if space == "z":
        z = torch.cat([slerp_on_sphere(z0, z1, t), slerp_on_sphere(z0, z1, t + epsilon)])
        return G(z, both, **generator_kwargs)
    w0, w1 = G.style_latents(z0, labels), G.style_latents(z1, labels)
    shape = (-1,) + (1,) * (w0.dim() - 1)
    ws = torch.cat([torch.lerp(w0, w1, t.view(shape)), torch.lerp(w0, w1, (t + epsilon).view(shape))])
    return G.synthesize(ws, both)


@torch.no_grad()
def perceptual_path_length(G: Any, features: Callable[[torch.Tensor], torch.Tensor], num_samples: int, *,
                           protocol: str = "ppl", epsilon: float = EPSILON, seed: int = 0, batch_size: int = 250,
                           **generator_kwargs: Any) -> tuple[float, torch.Tensor]:
    """The perceptual path length of generator `G` over `num_samples` paths, and every path's value (untrimmed).

    Args:
        G: a `Generator` on its device, in eval mode (fixed noise, clamped outputs) as the caller leaves it.
        features: float images in [-1, 1] -> features (N, D) (`Extractor.float_features`).
        num_samples: paths measured (the paper: 100,000; the spread of the result shrinks as 1 / sqrt of it).
        protocol: "ppl" (Z, slerp, t ~ U(0, 1)) or "ppl-w" (W, lerp, t = 0); see the module docstring.
        epsilon: the step along the path.
        seed: seed of the latents, positions and class labels (drawn on the CPU).
        batch_size: paths per generator call (two images each).
        generator_kwargs: passed to G (e.g. truncation); "ppl" only.
    """
    if protocol not in PROTOCOLS:
        raise GanzooUsageError(f"unknown path-length protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    space, sampling = PROTOCOLS[protocol]
    if num_samples < 2:
        raise GanzooUsageError(f"the path length needs at least 2 paths, got {num_samples}")
    if space == "w":
        from ganzoo.interfaces import exposes_w

        if not exposes_w(G):
            raise GanzooUsageError(f"{protocol} walks the intermediate latent space W, and {type(G).__name__} has "
                                   "none; use --metrics ppl (paths in Z), which every generator has")
        if generator_kwargs:
            raise GanzooUsageError(f"{protocol} measures the synthesis network as it is; drop "
                                   f"{', '.join(generator_kwargs)} (e.g. --truncation), or use --metrics ppl")
    device = next((p.device for p in G.parameters()), torch.device("cpu"))
    # every path drawn first, so the result does not depend on the batch size
    gen = torch.Generator().manual_seed(seed)
    z0, z1 = G.sample_latents(num_samples, generator=gen), G.sample_latents(num_samples, generator=gen)
    t = torch.rand(num_samples, generator=gen) if sampling == "full" else torch.zeros(num_samples)
    classes = int(getattr(G, "num_classes", 0))
    labels = torch.randint(classes, (num_samples,), generator=gen) if classes else None
    values = []
    for start in range(0, num_samples, batch_size):
        rows = slice(start, start + batch_size)
        n = len(t[rows])
        images = _paths(G, space, z0[rows].to(device), z1[rows].to(device), t[rows].to(device),
                        None if labels is None else labels[rows].to(device), epsilon, generator_kwargs)
        f = features(images.float()).double()
        values.append((f[:n] - f[n:]).square().sum(dim=1).div(epsilon**2).cpu())
    distances = torch.cat(values)
    low = torch.quantile(distances, TRIM_PERCENT / 100, interpolation="lower")
    high = torch.quantile(distances, 1 - TRIM_PERCENT / 100, interpolation="higher")
    kept = distances[(distances >= low) & (distances <= high)]
    return float(kept.mean()), distances

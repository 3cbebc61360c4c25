"""Truncation and style-mixing grids of a trained stylegan-lite model, for docs/architectures/stylegan-lite.md.

    .venv/bin/python benchmarks/stylegan_lite_grids.py /tmp/stylegan-lite-recipe --out docs/img

Truncation grid: one row per latent, columns truncation 0, 0.25, 0.5, 0.75, 1 (0 is the average image).
Mixing grid: the top row holds source B images, the left column source A images; each cell takes the styles of
the layers before `--crossover` (the coarsest) from its row's A and the rest from its column's B.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import ganzoo
from ganzoo.images import save_grid

PSIS = (0.0, 0.25, 0.5, 0.75, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="anything ganzoo.load accepts (run folder, model folder, ...)")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the truncation grid's latents")
    parser.add_argument("--mix-seed", type=int, default=11, help="seed of the mixing grid's latents")
    parser.add_argument("--rows", type=int, default=6)
    parser.add_argument("--crossover", type=int, default=None, help="default: a quarter of the style layers")
    args = parser.parse_args()

    gan = ganzoo.load(args.model, device="cpu")
    G = gan.sampler.eval()
    crossover = G.num_style_layers // 4 if args.crossover is None else args.crossover
    args.out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        z = gan.latents(args.rows, seed=args.seed)
        cells = torch.stack([G(z, truncation=psi) for psi in PSIS], dim=1)  # (rows, len(PSIS), C, H, W)
        save_grid(cells.flatten(0, 1), args.out / "stylegan-lite-truncation.png", nrow=len(PSIS))

        n = 5
        z_a = gan.latents(n, seed=args.mix_seed)
        z_b = gan.latents(n, seed=args.mix_seed + 1)
        images_a, images_b = G(z_a), G(z_b)
        blank = -torch.ones_like(images_a[:1])
        rows = [torch.cat([blank, images_b])]
        for i in range(n):
            mixed = G.style_mix(z_a[i:i + 1].expand(n, -1), z_b, crossover)
            rows.append(torch.cat([images_a[i:i + 1], mixed]))
        save_grid(torch.cat(rows), args.out / "stylegan-lite-mixing.png", nrow=n + 1)
    print(f"wrote {args.out / 'stylegan-lite-truncation.png'} and {args.out / 'stylegan-lite-mixing.png'} "
          f"(crossover {crossover} of {G.num_style_layers} style layers)")


if __name__ == "__main__":
    main()

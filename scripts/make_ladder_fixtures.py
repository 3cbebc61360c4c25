"""Write the DCGAN fixtures of the metric ladder test: one small DCGAN untrained, after 150 and after 600 steps.

    .venv/bin/python scripts/make_ladder_fixtures.py       # writes tests/fixtures/dcgan-ladder/{untrained,150,600}

tests/test_ladder.py checks that the digits FD and KID rank these as a person does (600 steps better than 150,
better than untrained). Training them inside the test took minutes on two busy CPU cores, so they are trained once
here, with a fixed seed: dcgan's tiny test config widened to 16 channels (z 16, 28x28), batch 32, no EMA (so the
grids show the generator that was trained), on mnist-5k. Each folder holds config.json, generator.safetensors (about
140 KB) and samples.png (64 samples, seed 0): look at the three grids to see the order the test asserts. About a
minute on two idle CPU cores.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import ganzoo
from ganzoo.images import save_grid
from ganzoo.testing import tiny_config

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "dcgan-ladder"
CONFIG = {**tiny_config("dcgan"), "g_width": 16, "d_width": 16}
STEPS = (150, 600)
KEEP = ("config.json", "generator.safetensors")


def export(model: ganzoo.GANModel, folder: Path) -> None:
    """The model folder's config and generator only (the test needs nothing else), and a 64-sample grid."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, samples=False)
        folder.mkdir(parents=True, exist_ok=True)
        for name in KEEP:
            (folder / name).write_bytes((Path(tmp) / name).read_bytes())
    save_grid(model.sample(64, seed=0), folder / "samples.png", nrow=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.manual_seed(0)
    export(ganzoo.create("dcgan", seed=0, **CONFIG), args.out / "untrained")
    options = {"config": CONFIG, "recipe": {"batch_size": 32, "ema_kimg": 0.0}, "device": "cpu", "seed": 0,
               "grid_size": 8, "sample_every": 10_000, "log_every": 10_000, "checkpoint_every": STEPS[0]}
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        export(ganzoo.train("dcgan", data="mnist-5k", steps=STEPS[0], out=run, **options), args.out / str(STEPS[0]))
        export(ganzoo.train(out=run, resume=True, steps=STEPS[1]), args.out / str(STEPS[1]))
    print(f"wrote {', '.join(str(args.out / n) for n in ('untrained', *map(str, STEPS)))}")


if __name__ == "__main__":
    main()

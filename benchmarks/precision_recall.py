"""What real digits score on precision and recall: the yardstick behind a recall bar.

Precision and recall (Kynkäänniemi et al. 2019; k = 3 nearest neighbours, through torch-fidelity, as `ganzoo eval
--metrics pr` computes them) of real mnist-5k train digits against the 1,000 test digits, in the `digits` feature
space, at 1,000, 2,000 (the zoo's sample count) and 4,000 images, and of 2,000 degraded real digits (Gaussian blur
at two strengths, Gaussian noise). The real images are drawn at random from the whole train part: it is stored class
by class, so its first 2,000 digits are only 0 to 4, and a set of five classes scores a recall of about half (shown
in the table as a warning).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/precision_recall.py     # about a minute on one thread

Writes benchmarks/precision-recall/RESULTS.md and RESULTS.json.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms.functional as TF

from ganzoo._io import write_json, write_text
from ganzoo.data import load_dataset
from ganzoo.metrics import Evaluator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import RealImages  # noqa: E402

OUT = Path(__file__).resolve().parent / "precision-recall"


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    return TF.gaussian_blur(images.float(), kernel_size=2 * round(3 * sigma) + 1, sigma=sigma).round().to(torch.uint8)


def _noise(images: torch.Tensor, std: float) -> torch.Tensor:
    noisy = images.float() + std * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
    return noisy.clamp(0, 255).round().to(torch.uint8)


def main() -> int:
    start = time.perf_counter()
    test = load_dataset("mnist-5k", img_size=32, channels=1)
    train = load_dataset("mnist-5k", img_size=32, channels=1, split="train")
    spread = train.images[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))]
    sets: list[tuple[str, torch.Tensor]] = [
        ("1,000 real train digits", spread[:1000]),
        ("2,000 real train digits (the zoo's sample count)", spread[:2000]),
        ("4,000 real train digits", spread[:4000]),
        ("2,000 real digits blurred (sigma 1)", _blur(spread[:2000], 1.0)),
        ("2,000 real digits blurred (sigma 2)", _blur(spread[:2000], 2.0)),
        ("2,000 real digits with Gaussian noise (std 40 of 255)", _noise(spread[:2000], 40.0)),
        ("the first 2,000 train digits (classes 0-4 only: what not to do)", train.images[:2000]),
    ]
    rows: list[dict[str, Any]] = []
    for name, images in sets:
        evaluator = Evaluator(test, "pr", "digits", num_samples=len(images), seed=0, split="test")
        result = evaluator.evaluate(RealImages(dataclasses.replace(train, images=images), torch.device("cpu")))
        rows.append({"set": name, "images": len(images), **{k: round(v, 3) for k, v in result.values.items()}})
        print(f"{name}: precision {rows[-1]['precision']:.3f}, recall {rows[-1]['recall']:.3f}", flush=True)
    lines = ["# Precision and recall of real digits", "",
             f"`benchmarks/precision_recall.py`, ganzoo's `digits` features, against mnist-5k's 1,000 test digits; "
             f"{time.perf_counter() - start:.0f} s.", "", "| set | precision | recall |", "| --- | ---: | ---: |"]
    lines += [f"| {r['set']} | {r['precision']:.3f} | {r['recall']:.3f} |" for r in rows]
    OUT.mkdir(exist_ok=True)
    write_json(OUT / "RESULTS.json", rows)
    write_text(OUT / "RESULTS.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Class control of a conditional GAN trained on mnist-5k: does asking for digit k give a k?

Samples N images (default 1,000) with labels cycling 0, 1, ..., 9 (`gan.sample(n, seed=0, labels=...)`), has an
independent digit classifier classify them (the one ganzoo ships for its `digits` metrics, `ganzoo.metrics.digits`:
trained on real digits only, its weights pinned by sha256 and checked on loading), and prints per class and overall
the fraction classified as the requested digit, next to the classifier's own accuracy on its 1,000 held-out real
digits. Images of another size than 28x28 are resized for the classifier.

    .venv/bin/python benchmarks/cgan_class_control.py runs/cgan               # a run or model folder
    .venv/bin/python benchmarks/cgan_class_control.py runs/cgan -n 2000 --json out.json

Exit status 1 when the overall accuracy is below --target (0.95).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import ganzoo
from ganzoo.metrics import digits


@torch.no_grad()
def classify(classifier: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted classes of images in [-1, 1] (any size, 1 or 3 channels)."""
    return torch.cat([classifier(digits.to_input(images[i:i + batch_size].float().cpu())).argmax(1)
                      for i in range(0, len(images), batch_size)])


def class_control(model_path: str | Path, n: int = 1000, seed: int = 0) -> dict:
    """Per-class and overall fraction of generated digits classified as the requested class."""
    classifier = digits.load_shipped()
    _, _, x_test, y_test = digits.holdout_split()
    heldout = digits.accuracy(classifier, x_test, y_test)

    gan = ganzoo.load(model_path, device="cpu")
    if gan.num_classes != 10:
        raise SystemExit(f"{model_path} is not a 10-class conditional model (num_classes={gan.num_classes})")
    labels = torch.arange(n) % gan.num_classes
    t0 = time.perf_counter()
    images = gan.sample(n, seed=seed, labels=labels)
    sample_s = time.perf_counter() - t0
    preds = classify(classifier, images)
    hits = preds == labels
    per_class = {c: hits[labels == c].float().mean().item() for c in range(gan.num_classes)}
    confusion = torch.zeros(gan.num_classes, gan.num_classes, dtype=torch.long)
    confusion.index_put_((labels, preds), torch.ones_like(labels), accumulate=True)
    return {
        "model": str(model_path),
        "architecture": gan.architecture,
        "config": gan.config.to_dict(),
        "img_shape": list(gan.img_shape),
        "samples": n,
        "seed": seed,
        "class_control_accuracy": hits.float().mean().item(),
        "per_class": per_class,
        "confusion": confusion.tolist(),  # rows: requested class, columns: classified as
        "classifier": "ganzoo.metrics.digits (shipped)",
        "classifier_sha256": digits.SHA256,
        "classifier_heldout_accuracy": heldout,
        "sample_time_s": round(sample_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a cgan run folder or model folder (anything ganzoo.load accepts)")
    parser.add_argument("-n", "--samples", type=int, default=1000, help="images in all, labels cycling 0..9")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    result = class_control(args.model, args.samples, args.seed)
    print(f"{result['architecture']} at {args.model}: {args.samples} samples (seed {args.seed}), "
          f"images {tuple(result['img_shape'])}")
    print("class  classified as requested")
    for c, acc in result["per_class"].items():
        print(f"{c:>5}  {acc:7.1%}")
    overall = result["class_control_accuracy"]
    print(f"overall class-control accuracy: {overall:.1%} "
          f"(classifier's own held-out accuracy on 1,000 real digits: {result['classifier_heldout_accuracy']:.1%})")
    verdict = "meets" if overall >= args.target else "MISSES"
    print(f"{verdict} the target of {args.target:.0%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    sys.exit(0 if overall >= args.target else 1)


if __name__ == "__main__":
    main()

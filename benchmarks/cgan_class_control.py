"""Class control of a conditional GAN trained on mnist-5k: does asking for digit k give a k?

Samples N images (default 1,000) with labels cycling 0, 1, ..., 9 (`gan.sample(n, seed=0, labels=...)`), has an
independent digit classifier (`benchmarks/digit_classifier.py`, trained on real digits only) classify them, and
prints per class and overall the fraction classified as the requested digit, next to the classifier's own
accuracy on its 1,000 held-out real digits. Images of another size than 28x28 are resized for the classifier.

    .venv/bin/python benchmarks/cgan_class_control.py runs/cgan               # a run or model folder
    .venv/bin/python benchmarks/cgan_class_control.py runs/cgan -n 2000 --json out.json

The classifier is read from --classifier (default benchmarks/out/digits-classifier.safetensors) and trained
there first when the file does not exist. Exit status 1 when the overall accuracy is below --target (0.95).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import ganzoo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digit_classifier import (  # noqa: E402  (a sibling script, not a package)
    DEFAULT_PATH,
    accuracy,
    classify,
    holdout_split,
    load_classifier,
    save_classifier,
    train_classifier,
)


def class_control(model_path: str | Path, classifier_path: Path = DEFAULT_PATH, n: int = 1000,
                  seed: int = 0) -> dict:
    """Per-class and overall fraction of generated digits classified as the requested class."""
    if not classifier_path.exists():
        print(f"no classifier at {classifier_path}; training one (digit_classifier.py)", flush=True)
        model, acc = train_classifier(log=False)
        save_classifier(model, classifier_path, acc, seed=0)
    classifier, metadata = load_classifier(classifier_path)
    _, _, x_test, y_test = holdout_split()
    heldout = accuracy(classifier, x_test, y_test)

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
        "classifier": str(classifier_path),
        "classifier_heldout_accuracy": heldout,
        "classifier_metadata": metadata,
        "sample_time_s": round(sample_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a cgan run folder or model folder (anything ganzoo.load accepts)")
    parser.add_argument("-n", "--samples", type=int, default=1000, help="images in all, labels cycling 0..9")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    result = class_control(args.model, args.classifier, args.samples, args.seed)
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

"""Train the `digits` feature extractor's classifier on mnist-5k and write the weights ganzoo ships.

    .venv/bin/python scripts/train_digits_classifier.py            # writes ganzoo/_data/digits-classifier.safetensors

Trains `ganzoo.metrics.digits.DigitClassifier` with `train_classifier` (fixed seed) on mnist-5k's train part (the
first 400 images of every class; shifted, rotated, scaled, and a share of them blurred, dimmed and fogged), measures
the accuracy on the test part (the last 100 of every class, 1,000 digits it never saw), writes the weights as
safetensors with that accuracy in the metadata, and prints the two lines to pin in ganzoo/metrics/digits.py (SHA256
and HELD_OUT_ACCURACY). About 5 minutes on two idle CPU cores (15 on busy ones). After a retraining, check the
ladder: pytest tests/test_ladder.py.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from pathlib import Path

from convert_mnist_5k import canonical_header  # sorted header keys: the same bytes from the same weights
from safetensors.torch import save

from ganzoo._io import write_bytes
from ganzoo.metrics.digits import EPOCHS, train_classifier, weights_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=weights_path())
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    t0 = time.perf_counter()
    model, acc = train_classifier(epochs=args.epochs, seed=args.seed)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    metadata = {"heldout_accuracy": f"{acc:.4f}", "seed": str(args.seed), "epochs": str(args.epochs),
                "data": "mnist-5k train part: the first 400 images of every class",
                "test_data": "mnist-5k test part: the last 100 images of every class"}
    data = canonical_header(save(state, metadata=metadata))
    write_bytes(args.out, data)
    print(f"test accuracy {acc:.4f} on 1,000 real digits, {time.perf_counter() - t0:.0f} s; wrote {args.out}")
    print(f'SHA256 = "{hashlib.sha256(data).hexdigest()}"')
    print(f"HELD_OUT_ACCURACY = {acc:.4f}")


if __name__ == "__main__":
    main()

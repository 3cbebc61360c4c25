"""Train the `colour` feature extractor's network on the emoji sets' train parts and write the weights ganzoo ships.

    .venv/bin/python scripts/train_colour_features.py      # writes ganzoo/_data/colour-features.safetensors

Needs the emoji extra (pip install 'ganzoo[emoji]') and the Noto font (apt-get install fonts-noto-color-emoji).
Trains `ganzoo.metrics.colour.ColourNet` with `train_features` (fixed seed, one thread, so the same weights come out
of the same package versions) on the train parts of twemoji, openmoji and noto-emoji at 32x32 (4,680 images; shifted,
mirrored, and a share of them colour-shifted, blurred and noised), measures its heads on the three test parts (1,014
images of emoji it never saw), writes the weights as safetensors with those numbers in the metadata, and prints the
lines to pin in ganzoo/metrics/colour.py (SHA256 and HELD_OUT_ACCURACY). About 3 CPU minutes on one thread, plus
half a minute to draw the emoji. After a retraining, check the ladder: pytest tests/test_colour_metric.py.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from pathlib import Path

import torch
from convert_mnist_5k import canonical_header  # sorted header keys: the same bytes from the same weights
from safetensors.torch import save

from ganzoo._io import write_bytes
from ganzoo.metrics.colour import EPOCHS, SETS, ColourNet, train_features, weights_path


def weights_file(model: ColourNet, heads: dict[str, float], seed: int, epochs: int) -> bytes:
    """The weights as the safetensors bytes ganzoo ships: header keys sorted, the training and its test numbers in
    the metadata."""
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    metadata = {"seed": str(seed), "epochs": str(epochs),
                "data": f"the train parts of {', '.join(SETS)} at 32x32 on white (ganzoo.emoji's split)",
                "test_data": f"the test parts of {', '.join(SETS)}: emoji never seen in training",
                **{f"test_{k}": f"{v:.4f}" for k, v in heads.items()}}
    return canonical_header(save(state, metadata=metadata))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=weights_path())
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)  # the float sums, and so the weights, depend on the thread count

    t0 = time.process_time()
    model, heads = train_features(epochs=args.epochs, seed=args.seed)
    data = weights_file(model, heads, args.seed, args.epochs)
    write_bytes(args.out, data)
    print(f"test parts: {', '.join(f'{k} {v:.4f}' for k, v in heads.items())}; {time.process_time() - t0:.0f} CPU s; "
          f"wrote {args.out} ({len(data):,} bytes)")
    print(f'SHA256 = "{hashlib.sha256(data).hexdigest()}"')
    print(f"HELD_OUT_ACCURACY = {heads['group']:.4f}")


if __name__ == "__main__":
    main()

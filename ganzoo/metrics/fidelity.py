"""PSNR and SSIM: how close an image is to its reference, pixel by pixel, as super-resolution is measured.

Both compare images in [-1, 1] (float) or uint8, shape (N, C, H, W), image by image, and return one value per image
(average them over a test set). `channel` picks what is compared:

* ``"y"`` (the default, as super-resolution papers report): the luma of ITU-R BT.601 in studio swing, what MATLAB's
  ``rgb2ycbcr`` gives, Y = 16 + 65.481 R + 128.553 G + 24.966 B for R, G, B in [0, 1], on the 0..255 scale; a gray
  image is compared as it is;
* ``"rgb"``: every channel.

`crop` leaves out that many pixels at every border first (papers crop the scale factor's worth, 4 px at x4).
Values are computed in float64 on the 0..255 scale: PSNR = 10 log10(255^2 / MSE), infinite for identical images.
SSIM (Wang, Bovik, Sheikh & Simoncelli 2004) uses the standard 11x11 Gaussian window of sigma 1.5 over the valid
part of the image (no padding), C1 = (0.01 * 255)^2 and C2 = (0.03 * 255)^2, and averages the SSIM map over pixels
(and over channels for "rgb").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo.errors import GanzooUsageError

__all__ = ["WINDOW", "psnr", "ssim", "to_luma"]

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
PEAK = 255.0
_CHANNELS = ("y", "rgb")


def _to_255(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.double()
    if not images.is_floating_point():
        raise GanzooUsageError(f"images must be uint8 or floating point in [-1, 1], got {images.dtype}")
    return images.double().add(1.0).mul(127.5)


def to_luma(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) images (uint8, or float in [-1, 1]) to their BT.601 studio-swing luma on the 0..255 scale,
    (N, 1, H, W), float64; a gray (N, 1, H, W) image is returned on the 0..255 scale as it is."""
    x = _to_255(images)
    if x.shape[1] == 1:
        return x
    r, g, b = (x[:, i:i + 1] / 255.0 for i in range(3))
    return 16.0 + 65.481 * r + 128.553 * g + 24.966 * b


def _prepare(a: torch.Tensor, b: torch.Tensor, channel: str, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    if channel not in _CHANNELS:
        raise GanzooUsageError(f"channel must be 'y' or 'rgb', got {channel!r}")
    if a.shape != b.shape or a.dim() != 4 or a.shape[1] not in (1, 3):
        raise GanzooUsageError(f"compare two batches of one shape (N, 1 or 3, H, W), got {tuple(a.shape)} and "
                               f"{tuple(b.shape)}")
    if crop < 0 or 2 * crop >= min(a.shape[-2:]):
        raise GanzooUsageError(f"crop {crop} leaves nothing of {a.shape[-1]}x{a.shape[-2]} images; use a smaller crop")
    x, y = (to_luma(t) if channel == "y" else _to_255(t) for t in (a, b))
    if crop:
        x, y = x[..., crop:-crop, crop:-crop], y[..., crop:-crop, crop:-crop]
    return x, y


def psnr(images: torch.Tensor, reference: torch.Tensor, *, channel: str = "y", crop: int = 0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of each image against its reference, shape (N,), float64 (inf where they
    are equal); see the module docstring."""
    x, y = _prepare(images, reference, channel, crop)
    mse = (x - y).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(PEAK ** 2 / mse)  # mse 0 gives inf


def _gaussian_window(device: torch.device) -> torch.Tensor:
    coords = torch.arange(WINDOW, dtype=torch.float64, device=device) - (WINDOW - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * SIGMA ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, WINDOW, WINDOW)


def ssim(images: torch.Tensor, reference: torch.Tensor, *, channel: str = "y", crop: int = 0) -> torch.Tensor:
    """Structural similarity of each image with its reference, shape (N,), float64 (1 where they are equal); see the
    module docstring. Images (after `crop`) must be at least 11 px on each side."""
    x, y = _prepare(images, reference, channel, crop)
    if min(x.shape[-2:]) < WINDOW:
        raise GanzooUsageError(f"SSIM's window is {WINDOW}x{WINDOW} px and the images are {x.shape[-1]}x{x.shape[-2]} "
                               "after cropping; compare larger images or crop less")
    n, c = x.shape[:2]
    window = _gaussian_window(x.device)
    x, y = x.reshape(n * c, 1, *x.shape[-2:]), y.reshape(n * c, 1, *y.shape[-2:])

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (K1 * PEAK) ** 2, (K2 * PEAK) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.view(n, c, -1).mean(dim=(1, 2))

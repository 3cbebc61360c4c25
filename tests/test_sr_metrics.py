"""PSNR and SSIM (ganzoo.metrics.fidelity): known values, the luma conversion, monotone drops with blur and noise."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganzoo.errors import GanzooUsageError
from ganzoo.metrics.fidelity import psnr, ssim, to_luma


def _images(n=3, c=3, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    smooth = torch.rand(n, c, size // 4, size // 4, generator=gen)
    return F.interpolate(smooth, size=(size, size), mode="bilinear", align_corners=False) * 2 - 1


def _blur(x, sigma):
    r = 5
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def test_identical_images_give_inf_and_one():
    x = _images()
    for channel in ("y", "rgb"):
        assert torch.isinf(psnr(x, x, channel=channel)).all()
        assert torch.allclose(ssim(x, x, channel=channel), torch.ones(3, dtype=torch.float64))


def test_a_constant_offset_gives_the_closed_form_psnr():
    x = torch.randint(20, 200, (2, 3, 16, 16), dtype=torch.uint8)
    for d in (1, 5, 30):
        y = x + d
        # every channel off by d: MSE = d^2 on RGB, PSNR = 20 log10(255 / d)
        assert psnr(y, x, channel="rgb").tolist() == pytest.approx([20 * math.log10(255 / d)] * 2, abs=1e-9)
        # luma moves by d * (65.481 + 128.553 + 24.966) / 255 = d * 219 / 255
        assert psnr(y, x, channel="y").tolist() == pytest.approx([20 * math.log10(255 / (d * 219 / 255))] * 2, abs=1e-9)


def test_luma_is_bt601_studio_swing():
    white, black = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8), torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    assert to_luma(white).unique().item() == pytest.approx(235.0)
    assert to_luma(black).unique().item() == pytest.approx(16.0)
    assert to_luma(torch.ones(1, 3, 2, 2)).unique().item() == pytest.approx(235.0)  # [-1, 1] floats too
    gray = torch.full((1, 1, 2, 2), 7, dtype=torch.uint8)
    assert to_luma(gray).unique().item() == 7.0


def test_ssim_of_a_known_case_and_its_formula():
    # a constant image against another constant: sigma terms vanish, SSIM = (2 a b + C1) / (a^2 + b^2 + C1)
    a, b = 100.0, 140.0
    x, y = torch.full((1, 1, 16, 16), a, dtype=torch.uint8), torch.full((1, 1, 16, 16), b, dtype=torch.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(x, y).item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)
    # the valid window: a 16 px image gives a 6x6 map, and nothing smaller than the window is accepted
    with pytest.raises(GanzooUsageError, match="11x11"):
        ssim(torch.zeros(1, 1, 10, 10), torch.zeros(1, 1, 10, 10))


def test_ssim_and_psnr_drop_monotonically_with_blur_and_noise():
    x = _images(seed=1)
    blurred = [ssim(_blur(x, s).clamp(-1, 1), x).mean().item() for s in (0.5, 1.0, 1.5, 2.5)]
    assert all(a > b for a, b in zip(blurred, blurred[1:], strict=False)), blurred
    gen = torch.Generator().manual_seed(2)
    noise = torch.randn(x.shape, generator=gen)
    noisy = [(x + s * noise).clamp(-1, 1) for s in (0.02, 0.05, 0.1, 0.2)]
    s_values = [ssim(n, x).mean().item() for n in noisy]
    p_values = [psnr(n, x).mean().item() for n in noisy]
    assert all(a > b for a, b in zip(s_values, s_values[1:], strict=False)), s_values
    assert all(a > b for a, b in zip(p_values, p_values[1:], strict=False)), p_values
    assert s_values[0] < 1 and s_values[-1] > 0


def test_crop_and_bad_arguments():
    x = _images(n=1)
    y = x.clone()
    y[..., :2, :] = -1  # a changed border: cropping it away leaves identical images
    assert torch.isinf(psnr(y, x, crop=2)).all() and not torch.isinf(psnr(y, x)).any()
    assert ssim(y, x, crop=2).item() == pytest.approx(1.0)
    with pytest.raises(GanzooUsageError, match="'y' or 'rgb'"):
        psnr(x, x, channel="lab")
    with pytest.raises(GanzooUsageError, match="one shape"):
        psnr(x, x[..., :16, :16])

"""Super-resolution against its baselines: PSNR and SSIM of nearest and bicubic upscaling, and of SR models.

The test set is the low/high-resolution pairs of an ``srN:`` data spec (`ganzoo.lowres`), by default the test part
of Twemoji at 32 px made from 8 px (`sr4:twemoji`, emoji no model trained on `sr4:twemoji` ever saw). Every method
upscales the same 8-bit low-resolution inputs; PSNR and SSIM (`ganzoo.metrics.fidelity`) are averaged over the
images (PSNR over those that differ from their target: an exact one is infinite, and counted apart), on the luma
channel (BT.601) by default with `--crop` pixels left out at each border (the scale's worth, as papers report).

    .venv/bin/python benchmarks/sr_baselines.py                        # bicubic and nearest, a few seconds
    .venv/bin/python benchmarks/sr_baselines.py --model runs/srgan runs/srresnet
    .venv/bin/python benchmarks/sr_baselines.py --data sr2:mnist-5k --split test --img-size 28 --channel rgb
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.data import load_dataset
from ganzoo.errors import GanzooError
from ganzoo.metrics.fidelity import psnr, ssim


def _float(images: torch.Tensor) -> torch.Tensor:
    return images.float().div(127.5).sub(1.0)


def _quantised(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats as 8-bit images, as a saved PNG would hold them."""
    return images.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def _measure(name: str, upscaled: torch.Tensor, targets: torch.Tensor, channel: str, crop: int,
             seconds: float) -> dict[str, object]:
    got = _quantised(upscaled)
    values = psnr(got, targets, channel=channel, crop=crop)
    exact = ~torch.isfinite(values)  # identical to the target (plain images: a blank border region), PSNR inf
    return {"method": name, "psnr": values[~exact].mean().item(), "exact": int(exact.sum()),
            "ssim": ssim(got, targets, channel=channel, crop=crop).mean().item(), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="sr4:twemoji", help="srN:SPEC test pairs  [default: sr4:twemoji]")
    parser.add_argument("--split", default="test", help="the part of SPEC: test, train or all  [default: test]")
    parser.add_argument("--img-size", type=int, default=32, help="high-resolution size  [default: 32]")
    parser.add_argument("--channel", choices=("y", "rgb"), default="y", help="compare luma or RGB  [default: y]")
    parser.add_argument("--crop", type=int, default=None, help="border pixels left out  [default: the factor]")
    parser.add_argument("--model", nargs="*", default=[], help="SR models to compare (anything ganzoo.load takes)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        data = load_dataset(args.data, img_size=args.img_size, channels=3, split=args.split)
    except GanzooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    assert data.inputs is not None
    targets, low = data.images, _float(data.inputs)
    factor = targets.shape[-1] // low.shape[-1]
    crop = factor if args.crop is None else args.crop
    size = tuple(targets.shape[-2:])
    rows = []
    for mode in ("nearest", "bicubic"):
        start = time.perf_counter()
        up = F.interpolate(low, size=size, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
        rows.append(_measure(mode, up, targets, args.channel, crop, time.perf_counter() - start))
    for spec in args.model:
        try:
            gan = ganzoo.load(spec, device=args.device)
            start = time.perf_counter()
            up = gan.upscale(low.to(gan.device)).cpu()
        except GanzooError as exc:
            print(f"error: {spec}: {exc}", file=sys.stderr)
            return 2
        rows.append(_measure(spec, up, targets, args.channel, crop, time.perf_counter() - start))
    print(f"{args.data} ({args.split} part): {len(targets)} images, {low.shape[-1]} px -> {size[-1]} px (x{factor}); "
          f"PSNR and SSIM on {'luma (BT.601)' if args.channel == 'y' else 'RGB'}, {crop} px border left out\n")
    print("| method | PSNR (dB) | exact | SSIM | time (s) |\n| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['method']} | {row['psnr']:.2f} | {row['exact']} | {row['ssim']:.4f} | {row['seconds']:.2f} |")
    print("\nPSNR is the mean over the images that differ from their target; 'exact' counts those equal to it (PSNR "
          "infinite), left out of the mean.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

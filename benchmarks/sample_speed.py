"""Sampling speed per architecture: `GANModel.sample` against a bare `with torch.no_grad(): G(z)` loop.

Both make the same number of images in chunks of the same batch size from the same generator (in eval mode) and
return them as one tensor; timed in alternating rounds in one process, medians of the per-round ratios.

    .venv/bin/python benchmarks/sample_speed.py             # all architectures, about a minute on 2 cores
    .venv/bin/python benchmarks/sample_speed.py --device cuda --images 8192
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch
from _common import (
    SEED,
    Variant,
    add_arch_arg,
    add_common_args,
    calibrate_steps,
    check_args,
    finish,
    fmt_ratio,
    md_table,
    rate_summary,
    ratio_summary,
    result_header,
    run_rounds,
    setup_device,
    verdict,
)

import ganzoo
from ganzoo.registry import get_architecture

TARGET = 0.95  # gan.sample / bare loop
NUM_CLASSES = 10  # mnist-5k's classes, for conditional architectures


def bench_architecture(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    arch = get_architecture(name)
    config: dict[str, Any] = {"channels": 1}
    if arch.conditional:
        config["num_classes"] = NUM_CLASSES
    gan = ganzoo.create(name, discriminator=False, seed=SEED, device=device, **config)
    G = gan.generator.eval()
    n, batch = args.images, args.batch_size
    labels = torch.arange(n, device=device) % NUM_CLASSES if arch.conditional else None
    print(f"\n{name} {gan.img_shape[1]}x{gan.img_shape[2]}x{gan.img_shape[0]}: {n} images in batches of {batch}",
          flush=True)

    def api() -> torch.Tensor:
        return gan.sample(n, batch_size=batch)

    @torch.no_grad()
    def bare() -> torch.Tensor:
        out = []
        for start in range(0, n, batch):
            z = torch.randn(min(batch, n - start), G.z_dim, device=device)
            out.append(G(z, None if labels is None else labels[start:start + batch]))
        return torch.cat(out)

    variants = [Variant("bare", "bare G(z) loop", bare, n), Variant("sample", "gan.sample", api, n)]
    for v in variants:
        for _ in range(args.warmup):
            v.step()
    steps = args.steps or calibrate_steps(bare, device, args.seconds)
    interleave = "block" if device.type == "cuda" else "step"
    ratios = run_rounds(variants, args.rounds, steps, args.warmup, interleave, device, reference="bare")
    result = {"architecture": name, "img_shape": list(gan.img_shape), "images": n, "batch_size": batch,
              "calls_per_round": steps, "rounds": args.rounds, "interleave": interleave,
              "img_per_s": {v.key: rate_summary(v) for v in variants},
              "ratio": ratio_summary(ratios["sample"])}
    print(f"  gan.sample / bare loop: {result['ratio']['median']:.3f}x [target >= {TARGET}]", flush=True)
    return result


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for a in result["architectures"]:
        if "error" in a:
            rows.append([a["architecture"], "-", "-", a["error"], "", ""])
            continue
        rows.append([a["architecture"], f"{a['img_per_s']['bare']['median']:.0f}",
                     f"{a['img_per_s']['sample']['median']:.0f}", fmt_ratio(a["ratio"]), f">= {TARGET}",
                     verdict(a["ratio"]["median"], TARGET)])
    first = next((a for a in result["architectures"] if "error" not in a), None)
    head = (f"{first['images']} images per call in batches of {first['batch_size']}, generator in eval mode.\n\n"
            if first else "")
    return head + md_table(["architecture", "bare loop img/s", "gan.sample img/s", "sample / bare", "target", ""],
                           rows)


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    ok = [a for a in result["architectures"] if "ratio" in a]
    if not ok:
        return []
    worst = min(ok, key=lambda a: a["ratio"]["median"])
    value = worst["ratio"]["median"]
    return [{"what": f"sampling: gan.sample / bare G(z) loop (lowest: {worst['architecture']})",
             "value": f"{value:.2f}x", "target": f">= {TARGET}x", "verdict": verdict(value, TARGET)}]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arch_arg(parser)
    add_common_args(parser)
    parser.add_argument("--images", type=int, default=None, help="images per call (default 1024, --quick 256)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per generator call (gan.sample's default)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5, --quick 2)")
    parser.add_argument("--steps", type=int, default=0, help="calls per variant and round; 0 sizes them to --seconds")
    parser.add_argument("--seconds", type=float, default=None, help="with --steps 0: seconds per variant and round "
                        "(default 1.5, --quick 0.2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per variant at the start of each round")
    args = parser.parse_args(argv)
    args.images = args.images if args.images is not None else (256 if args.quick else 1024)
    args.rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    args.seconds = args.seconds if args.seconds is not None else (0.2 if args.quick else 1.5)
    check_args(parser, args, positive=("images", "batch_size", "rounds"), non_negative=("steps", "warmup"))
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every architecture in `args.arch`; the section's result (see run_all.py)."""
    device = setup_device(args)
    t_start = time.perf_counter()
    result = result_header("sample_speed", device, {"architectures": args.arch, "images": args.images,
                                                    "batch_size": args.batch_size, "rounds": args.rounds,
                                                    "quick": args.quick})
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; "
          f"load average {result['load_average_before']}")
    result["architectures"] = []
    for name in args.arch:
        try:
            result["architectures"].append(bench_architecture(name, args, device))
        except Exception as exc:  # one broken architecture must not lose the others' figures
            print(f"  {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            result["architectures"].append({"architecture": name, "error": f"{type(exc).__name__}: {exc}"})
    finish(result, args.json, t_start)
    return result


def main(argv: list[str] | None = None) -> int:
    result = run(parse_args(argv))
    print()
    print(markdown(result))
    return 1 if any("error" in a for a in result["architectures"]) else 0


if __name__ == "__main__":
    sys.exit(main())

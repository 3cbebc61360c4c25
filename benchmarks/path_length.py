"""Path-length regularisation at equal time: stylegan-lite on mnist-5k with and without it, FD and PPL side by side.

StyleGAN2 (Karras et al. 2020, section 3.2 and table 1) claims that path-length regularisation makes the mapping
from W to images smoother (a lower perceptual path length) at about the same image quality (FID). This script
trains stylegan-lite's default recipe on the embedded digits twice, from the same seed, for the same process CPU
time (`--cpu-seconds`, default 600 each; CPU time, not wall time, so that other work on the machine does not favour
either run): once as it is, once with `pl_weight` 2 and `pl_interval` 4 (the paper's values). Each run's sampling
generator (the EMA) is then measured with the digits extractor against the 1,000 test digits: FD (the Fréchet
distance in digit features, `--metrics fid`), PPL in Z (slerp, full paths) and PPL in W (lerp, path ends; the
protocol StyleGAN2 reports). A grid of each, from the same latents, goes beside the table.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/path_length.py                 # 2 x 10 CPU minutes, then metrics
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/path_length.py --cpu-seconds 20 --samples 200 --out /tmp/pl

Writes OUT/RESULTS.md, OUT/RESULTS.json and OUT/grids.png (default OUT: benchmarks/path-length).
"""

from __future__ import annotations

import argparse
import io
import platform
import time
from pathlib import Path
from typing import Any

import torch

from ganzoo._io import write_bytes, write_json, write_text
from ganzoo.data import load_dataset
from ganzoo.images import grid_png_bytes
from ganzoo.metrics import Evaluator
from ganzoo.model import GANModel, build_model
from ganzoo.registry import get_architecture
from ganzoo.trainer.loop import RunOptions, Trainer

ARCH = "stylegan-lite"
DATA = "mnist-5k"
SEED = 0
OUT = Path(__file__).resolve().parent / "path-length"
#: the two runs: name -> recipe overrides (the paper's pl_weight and pl_interval for the regularised one)
RUNS: dict[str, dict[str, Any]] = {"baseline": {}, "path-length": {"pl_weight": 2.0, "pl_interval": 4}}


def train_for(cpu_seconds: float, overrides: dict[str, Any], out: Path, device: str) -> tuple[GANModel, dict[str, Any]]:
    """The default recipe with `overrides`, trained from seed 0 until `cpu_seconds` of process CPU time have gone.

    The recipe's planned length is set far beyond reach: nothing in stylegan-lite's recipe follows it, so the runs
    differ only in the regulariser and stop at the same CPU time, whatever the number of steps that makes."""
    spec = get_architecture(ARCH)
    config = spec.make_config(None, channels=1)
    recipe = spec.make_recipe(None, steps=10**7, **overrides)
    dataset = load_dataset(DATA, img_size=config.img_size, channels=config.channels)
    torch.manual_seed(SEED)
    model = build_model(ARCH, config)
    options = RunOptions(device=device, seed=SEED, log_every=10**9, sample_every=10**9, checkpoint_every=10**9)
    trainer = Trainer(model, recipe, dataset, options, out)
    torch.manual_seed(SEED)
    start = time.process_time()
    wall = time.perf_counter()
    while time.process_time() - start < cpu_seconds:
        trainer.train_step()
    trainer.release()
    info = {"steps": trainer.step, "kimg": round(trainer.images_seen / 1000, 2),
            "cpu_s": round(time.process_time() - start, 1), "wall_s": round(time.perf_counter() - wall, 1),
            "recipe": {k: v for k, v in recipe.to_dict().items() if k in ("pl_weight", "pl_interval", "r1_gamma")}}
    return model.eval(), info


def measure(model: GANModel, samples: int) -> dict[str, float]:
    """FD (digit features) against the test digits, PPL in Z and in W, each over `samples` images or paths."""
    real = load_dataset(DATA, img_size=model.img_shape[1], channels=model.img_shape[0])
    evaluator = Evaluator(real, "fid,ppl,ppl-w", "digits", num_samples=samples, seed=SEED, split="test")
    result = evaluator.evaluate(model)
    return {"fd": round(result.values["fid"], 3), "ppl": round(result.values["ppl"], 1),
            "ppl_w": round(result.values["ppl_w"], 1)}


def side_by_side(models: dict[str, GANModel], path: Path, n: int = 64) -> None:
    """One image: each run's grid of the same `n` latents, left to right in `models`' order, a gap between them."""
    from PIL import Image

    grids = []
    for model in models.values():
        grids.append(Image.open(io.BytesIO(grid_png_bytes(model.sample(n, seed=SEED), nrow=8))))
    gap = 16
    width = sum(g.width for g in grids) + gap * (len(grids) - 1)
    canvas = Image.new(grids[0].mode, (width, max(g.height for g in grids)), color=255)
    x = 0
    for grid in grids:
        canvas.paste(grid, (x, 0))
        x += grid.width + gap
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())


def markdown(result: dict[str, Any]) -> str:
    rows = ["| run | pl_weight | steps | kimg | CPU s | FD (digits) | PPL, Z full | PPL, W end |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, run in result["runs"].items():
        m = run["metrics"]
        rows.append(f"| {name} | {run['recipe'].get('pl_weight', 0)} | {run['steps']} | {run['kimg']} | "
                    f"{run['cpu_s']} | {m['fd']} | {m['ppl']} | {m['ppl_w']} |")
    return "\n".join([
        "# Path-length regularisation at equal CPU time (stylegan-lite, mnist-5k)", "",
        f"Each run trained for {result['cpu_seconds']:g} s of process CPU time from seed {SEED}; metrics over "
        f"{result['samples']} generated images (FD, against the 1,000 test digits) and as many paths (PPL, "
        "epsilon 1e-4, 1%/99% trimmed, squared distance of digit features). Lower is better for all three. Grids "
        "(grids.png): baseline left, path-length right, the same latents.", "", *rows, "",
        f"Machine: {result['machine']}; torch {result['torch']}, {result['threads']} thread(s).", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-seconds", type=float, default=600.0, help="process CPU seconds of training per run")
    parser.add_argument("--samples", type=int, default=2000, help="generated images (FD) and paths (PPL) per run")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.cpu_seconds <= 0 or args.samples < 2 or args.threads < 1:
        parser.error("--cpu-seconds must be positive, --samples at least 2, --threads at least 1")
    torch.set_num_threads(args.threads)
    models: dict[str, GANModel] = {}
    result: dict[str, Any] = {"cpu_seconds": args.cpu_seconds, "samples": args.samples, "threads": args.threads,
                              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                              "torch": torch.__version__, "runs": {}}
    for name, overrides in RUNS.items():
        print(f"training {name} for {args.cpu_seconds:g} CPU s ...", flush=True)
        model, info = train_for(args.cpu_seconds, overrides, args.out / "runs" / name, args.device)
        models[name] = model
        info["metrics"] = measure(model, args.samples)
        result["runs"][name] = info
        print(f"  {name}: {info}", flush=True)
    side_by_side(models, args.out / "grids.png")
    write_json(args.out / "RESULTS.json", result)
    write_text(args.out / "RESULTS.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

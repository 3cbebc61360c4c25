"""Quality against time: each architecture's default recipe, and a plain hand-written DCGAN loop, on mnist-5k.

Two phases, so that the (slow) training runs once and the measuring can be repeated:

- `train`: every architecture's default recipe, exactly as `ganzoo train --arch ARCH --data mnist-5k` runs it
  (same config, recipe and seed, into OUT/ARCH-mnist-5k, so that `benchmarks/zoo.py --out OUT --reuse` ships
  that very run as the catalogue entry ARCH-mnist-5k), with a checkpoint at `--points` evenly spaced steps;
  then the plain loop, a PyTorch DCGAN of the classic tutorial shape written out by hand (no EMA, no ganzoo code
  in its step), trained for as long as the longest recipe took, its generator saved at as many evenly spaced
  moments.
- `eval`: the sampling generator (EMA where the recipe keeps one) of every checkpoint, measured by the digits
  Fréchet distance (and KID) against the mnist-5k test split, which the digits classifier never saw. The time of a
  point is training time only: checkpoints are measured afterwards, so evaluation costs nothing on the clock.

Time is the training process's CPU time (all its threads; wall time is recorded beside it): on a shared machine
another job slows a run's wall clock but hardly its CPU time, so runs trained at different moments of one benchmark
still compare. On 2 idle cores wall time is about half the CPU time.

Writes RESULTS-quality-time.{json,md}, a plot of FD against CPU seconds (log scale, `quality_time.png`) and, per
architecture, the grid of the final model that its number was measured on (`grid-ARCH.png`), into --out.

    .venv/bin/python benchmarks/quality_time.py                       # both phases: about an hour on 2 idle cores
    .venv/bin/python benchmarks/quality_time.py --phase eval          # measure existing runs again
    .venv/bin/python benchmarks/quality_time.py --only dcgan --points 4 --quick   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo._io import write_json, write_text
from ganzoo.data import load_dataset
from ganzoo.images import save_grid
from ganzoo.registry import get_architecture, list_models

DATA = "mnist-5k"
SEED = 0
DEFAULT_OUT = Path(__file__).parent / "out" / "quality-time"


# ---------------------------------------------------------------------------------------------------------------------
# the plain loop: the classic DCGAN at 32 px (ngf = ndf = 64), binary cross-entropy, Adam(2e-4, 0.5), batch 64
# ---------------------------------------------------------------------------------------------------------------------


def plain_generator(z_dim: int = 100, width: int = 64) -> nn.Module:
    """z (N, z_dim, 1, 1) -> (N, 1, 32, 32) in [-1, 1]: 4 -> 8 -> 16 -> 32 with transposed convolutions."""
    return nn.Sequential(
        nn.ConvTranspose2d(z_dim, width * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(width * 4), nn.ReLU(True),
        nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.ReLU(True),
        nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
        nn.ConvTranspose2d(width, 1, 4, 2, 1, bias=False), nn.Tanh(),
    )


def plain_discriminator(width: int = 64) -> nn.Module:
    """(N, 1, 32, 32) -> (N,) logits: 32 -> 16 -> 8 -> 4 -> 1 with strided convolutions."""
    return nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width * 2, width * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width * 4, 1, 4, 1, 0, bias=False), nn.Flatten(0),
    )


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class PlainGenerator:
    """A plain generator seen through the interface `ganzoo.metrics.Evaluator` uses (img_shape, sample)."""

    num_classes = 0
    img_shape = (1, 32, 32)

    def __init__(self, G: nn.Module, z_dim: int = 100) -> None:
        self.G, self.z_dim = G.eval(), z_dim
        self.device = next(G.parameters()).device

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, labels: Any = None, batch_size: int = 256,
               **kwargs: Any) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed if seed is not None else 0)
        z = torch.randn(n, self.z_dim, 1, 1, generator=gen)
        return torch.cat([self.G(z[i:i + batch_size].to(self.device)) for i in range(0, n, batch_size)])


def train_plain(cpu_seconds: float, points: int, out: Path, device: torch.device) -> list[dict[str, Any]]:
    """Train the plain loop for `cpu_seconds` of process CPU time; save G at `points` evenly spaced moments."""
    from safetensors.torch import save_file

    torch.manual_seed(SEED)
    real = load_dataset(DATA, img_size=32, channels=1).images
    G, D = plain_generator().to(device), plain_discriminator().to(device)
    G.apply(_init)
    D.apply(_init)
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(64, device=device), torch.zeros(64, device=device)
    out.mkdir(parents=True, exist_ok=True)
    marks = [cpu_seconds * (i + 1) / points for i in range(points)]
    saved: list[dict[str, Any]] = []
    cpu, wall, step = 0.0, 0.0, 0
    while marks:
        c0, w0 = time.process_time(), time.perf_counter()
        x = real[torch.randint(len(real), (64,))].to(device).float().div(127.5).sub(1.0)
        fake = G(torch.randn(64, 100, 1, 1, device=device))
        loss_D = F.binary_cross_entropy_with_logits(D(x), ones) + \
            F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        loss_G = F.binary_cross_entropy_with_logits(D(fake), ones)
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        step += 1
        if cpu >= marks[0]:
            marks.pop(0)
            path = out / f"step-{step:06d}.safetensors"
            save_file({k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}, str(path))
            saved.append({"step": step, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "path": path.name})
            print(f"  plain loop: step {step}, {cpu:.0f} CPU s, {wall:.0f} s", flush=True)
    write_json(out / "points.json", saved)
    return saved


# ---------------------------------------------------------------------------------------------------------------------
# training phase
# ---------------------------------------------------------------------------------------------------------------------


def run_folder(out: Path, arch: str) -> Path:
    """Where an architecture's run goes: named as its catalogue entry, so `zoo.py --out OUT --reuse` finds it."""
    return out / f"{arch}-{DATA}"


def train_recipe(arch: str, points: int, out: Path, device: str, steps: int | None) -> None:
    """The default recipe on mnist-5k (as `ganzoo train --arch ARCH --data mnist-5k`), a checkpoint at each point.

    Writes OUT/clock.json: the process CPU time and the wall time at each checkpointed step (and the last)."""
    total = steps or get_architecture(arch).recipe.steps
    every = max(1, total // points)
    clock: dict[int, dict[str, float]] = {}
    seen: list[tuple[float, float]] = []  # the clocks after steps 1 and 2
    wall0 = time.perf_counter()

    def tick(step: int, steps_total: int, record: Any) -> None:
        now = (time.process_time(), time.perf_counter())
        if len(seen) < 2:
            seen.append(now)
        # zero: the start of step 1 (after steps 1 and 2, step 2's duration stands in for step 1's), so that
        # loading data and building the model count no more here than in the plain loop
        zero = tuple(2 * a - b for a, b in zip(seen[0], seen[-1], strict=True)) if len(seen) == 2 else seen[0]
        if step % every == 0 or step == steps_total:
            clock[step] = {"cpu_s": round(now[0] - zero[0], 2), "wall_s": round(now[1] - zero[1], 2)}

    ganzoo.train(arch, data=DATA, out=out, steps=steps, seed=SEED, device=device, overwrite=True,
                 checkpoint_every=every, keep_checkpoints=points + 1, log_every=every, progress=tick)
    write_json(out / "clock.json", {str(k): v for k, v in clock.items()})
    last = clock[max(clock)]
    print(f"  {arch}: {total} steps, {last['cpu_s']:.0f} CPU s of training ({time.perf_counter() - wall0:.0f} s in "
          "all)", flush=True)


def run_clock(run: Path) -> dict[int, dict[str, float]]:
    """Step -> {"cpu_s", "wall_s"} of a run trained by `train_recipe`."""
    return {int(k): v for k, v in json.loads((run / "clock.json").read_text(encoding="utf-8")).items()}


def recipe_cpu_time(run: Path) -> float:
    """Process CPU seconds a finished run took."""
    return max(v["cpu_s"] for v in run_clock(run).values())


# ---------------------------------------------------------------------------------------------------------------------
# evaluation phase
# ---------------------------------------------------------------------------------------------------------------------


def _evaluator(img_size: int, args: argparse.Namespace, cache: dict[int, Any]) -> Any:
    from ganzoo.metrics import Evaluator

    if img_size not in cache:
        real = load_dataset(DATA, img_size=img_size, channels=1)
        cache[img_size] = Evaluator(real, "fid,kid", "digits", num_samples=args.eval_samples, seed=SEED,
                                    split="test")
    return cache[img_size]


def _checkpoint_model(run: Path, path: Path) -> tuple[Any, int]:
    """The run's model with a checkpoint's weights (EMA where kept), and the checkpoint's step."""
    from ganzoo.serialization import load_weights
    from ganzoo.trainer.checkpoint import Checkpoint

    model = ganzoo.load(str(run / "model"))  # its generator is the sampling one (EMA when the recipe keeps one)
    ckpt = Checkpoint.load(path)
    weights = ckpt.section("EMA") or ckpt.section("G")
    load_weights(model.generator, weights, f"{path.name} sampling generator")
    return model.eval(), int(ckpt.meta["step"])


def _measure(evaluator: Any, model: Any) -> dict[str, float]:
    result = evaluator.evaluate(model)
    return {"fid": round(result.values["fid"], 3), "kid": round(result.values["kid"], 5)}


def evaluate_runs(args: argparse.Namespace, archs: list[str]) -> dict[str, Any]:
    from ganzoo.trainer.checkpoint import find_checkpoints

    evaluators: dict[int, Any] = {}
    curves: dict[str, list[dict[str, Any]]] = {}
    finals: dict[str, dict[str, Any]] = {}
    long_runs = zoo_curves(args.zoo, archs, args.cpu) if args.zoo else {}
    for arch in archs:
        if arch in long_runs:  # a zoo run of the same recipe, longer, with the FD it logged along the way
            curves[arch] = long_runs[arch]
            finals[arch] = long_runs[arch][-1]
            final = ganzoo.load(str(run_folder(args.zoo, arch) / "model"))
            save_grid(final.sample(64, seed=SEED), args.out / f"grid-{arch}.png", nrow=8)
            print(f"  {arch} (zoo run): " + ", ".join(f"{p['cpu_s']:.0f} CPU s FD {p['fid']:.1f}"
                                                      for p in curves[arch]), flush=True)
            continue
        run = run_folder(args.out, arch)
        if not (run / "model" / "config.json").is_file():
            print(f"  {arch}: no finished run in {run}; skipped", flush=True)
            continue
        clock = run_clock(run)
        points = []
        for _, path in find_checkpoints(run / "checkpoints"):
            model, step = _checkpoint_model(run, path)
            points.append({"step": step, **clock[step],
                           **_measure(_evaluator(model.img_shape[-1], args, evaluators), model)})
        final = ganzoo.load(str(run / "model"))
        steps = final.info["training"]["steps"]
        last = {"step": steps, **clock[steps], **_measure(_evaluator(final.img_shape[-1], args, evaluators), final)}
        points = [p for p in points if p["step"] < last["step"]] + [last]
        curves[arch] = points
        finals[arch] = last
        grid = args.out / f"grid-{arch}.png"
        save_grid(final.sample(64, seed=SEED), grid, nrow=8)
        print(f"  {arch}: " + ", ".join(f"{p['cpu_s']:.0f} CPU s FD {p['fid']:.1f}" for p in points), flush=True)
    plain_dir = args.out / "plain"
    if (plain_dir / "points.json").is_file():
        from safetensors.torch import load_file

        points = []
        for point in json.loads((plain_dir / "points.json").read_text(encoding="utf-8")):
            G = plain_generator()
            G.load_state_dict(load_file(str(plain_dir / point["path"])), strict=True)
            points.append({"step": point["step"], "cpu_s": point["cpu_s"], "wall_s": point["wall_s"],
                           **_measure(_evaluator(32, args, evaluators), PlainGenerator(G))})
        curves["plain"] = points
        print("  plain: " + ", ".join(f"{p['cpu_s']:.0f} CPU s FD {p['fid']:.1f}" for p in points), flush=True)
        save_grid(PlainGenerator(G).sample(64, seed=SEED), args.out / "grid-plain.png", nrow=8)
    floor = _floor(args, evaluators)
    return {"curves": curves, "finals": finals, "floor": floor, "eval_samples": args.eval_samples,
            "device": args.device}


def _floor(args: argparse.Namespace, cache: dict[int, Any]) -> dict[str, float]:
    """Real against real: images of the mnist-5k train split measured against the test split, at 32 px.

    The split is stored class by class, so the images are taken from all of it at an even stride (every class in
    its share), not from its start."""
    import dataclasses

    from quality import RealImages

    train = load_dataset(DATA, img_size=32, channels=1, split="train")
    stride = max(1, len(train) // args.eval_samples)
    spread = dataclasses.replace(train, images=train.images[::stride][:args.eval_samples])
    result = _evaluator(32, args, cache).evaluate(RealImages(spread, torch.device("cpu")))
    return {"fid": round(result.values["fid"], 3), "kid": round(result.values["kid"], 5)}


def _time_log_cpu(log: Path) -> float | None:
    """User plus system CPU seconds from the `/usr/bin/time -v` reports in a zoo run's log (a run stopped and resumed
    has one report a process: they add up), None without one."""
    if not log.is_file():
        return None
    seconds = [float(line.split(":")[-1]) for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
               if line.strip().startswith(("User time (seconds)", "System time (seconds)"))]
    return sum(seconds) if seconds else None


def zoo_curves(zoo: Path, archs: list[str], cpu: dict[str, float] | None = None) -> dict[str, list[dict[str, Any]]]:
    """FD along the zoo's long runs, from the digits FD each logged with `--eval-every` (the evaluation above: 2,000
    samples against the test split, seed 0, its own generator) in ZOO/ARCH-mnist-5k/metrics.jsonl.

    Their CPU time is the whole process's, from the `/usr/bin/time -v` report in ZOO/ARCH.log, spread over the steps
    in proportion (a step's cost does not change along these recipes; the few seconds of each evaluation are in it).
    `cpu` gives the CPU seconds of a run whose report was lost (estimated; quote them as such). A run without either
    is left out."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for arch in archs:
        run = run_folder(zoo, arch)
        cpu_s = (cpu or {}).get(arch) or _time_log_cpu(zoo / f"{arch}.log")
        if cpu_s is None or not (run / "model" / "config.json").is_file():
            continue
        steps = json.loads((run / "model" / "config.json").read_text(encoding="utf-8"))["training"]["steps"]
        points = []
        for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            fid = next((e["value"] for e in record.get("eval", []) if e["name"] == "fid"), None)
            if fid is not None:
                points.append({"step": record["step"], "cpu_s": round(cpu_s * record["step"] / steps, 1),
                               "wall_s": record.get("time_s"), "fid": round(fid, 3), "kid": None})
        if points:  # one point a step: a run that logs its last step's evaluation twice keeps the later
            curves[arch] = list({p["step"]: p for p in points}.values())
    return curves


def keep_earlier(result: dict[str, Any], previous: Path) -> dict[str, Any]:
    """`result` with the curves of an earlier measurement (`previous`, this script's JSON) that it has none of: runs
    measured before and no longer on disk (a zoo run deleted after shipping, the plain loop's checkpoints). The
    order of the earlier table is kept; `kept` names what was carried over, and the table says so. Their grids are
    the files that measurement wrote beside it."""
    if not previous.is_file():
        return result
    earlier = json.loads(previous.read_text(encoding="utf-8"))
    kept = [name for name in earlier["curves"] if name not in result["curves"]]
    order = list(earlier["curves"]) + [name for name in result["curves"] if name not in earlier["curves"]]
    curves = {name: result["curves"].get(name) or earlier["curves"][name] for name in order}
    finals = {**{n: earlier["finals"][n] for n in kept if n in earlier.get("finals", {})}, **result["finals"]}
    return {**result, "curves": curves, "finals": finals, "kept": kept}


# ---------------------------------------------------------------------------------------------------------------------
# verdicts, table and plot
# ---------------------------------------------------------------------------------------------------------------------


def plain_fd_at(plain: list[dict[str, Any]], seconds: float) -> float | None:
    """The plain loop's FD at `seconds` of training, interpolated (log FD, linear time); None outside its run."""
    if not plain or seconds < plain[0]["cpu_s"] or seconds > plain[-1]["cpu_s"]:
        return None
    for a, b in zip(plain, plain[1:], strict=False):
        if a["cpu_s"] <= seconds <= b["cpu_s"]:
            t = (seconds - a["cpu_s"]) / max(1e-9, b["cpu_s"] - a["cpu_s"])
            return math.exp((1 - t) * math.log(a["fid"]) + t * math.log(b["fid"]))
    return plain[-1]["fid"]


#: runs not held to the plain loop: the 2014 MLP (it reaches its own plateau) and the loop itself
NOT_COMPARED = ("gan", "plain")


def verdicts(result: dict[str, Any]) -> dict[str, Any]:
    """Each convolutional recipe against the plain loop at the same CPU time: its final point no worse than the loop
    where the loop's run covers that time (the issue's bar), the points along the way that are worse, and the time
    it needs to reach the loop's final FD."""
    plain = result["curves"].get("plain", [])
    out: dict[str, Any] = {}
    if not plain:
        return out
    target = plain[-1]["fid"]
    out["plain_final"] = {"cpu_s": plain[-1]["cpu_s"], "fid": target}
    for name, points in result["curves"].items():
        if name in NOT_COMPARED:
            continue
        worse = []
        for p in points:
            ref = plain_fd_at(plain, p["cpu_s"])
            if ref is not None and p["fid"] > ref:
                worse.append({"cpu_s": p["cpu_s"], "fid": p["fid"], "plain_fid": round(ref, 2)})
        last = points[-1]
        ref = plain_fd_at(plain, last["cpu_s"])
        out[name] = {"final_no_worse": None if ref is None else last["fid"] <= ref,
                     "plain_fid_at_final": None if ref is None else round(ref, 3), "worse_points": worse,
                     "time_to_plain_final_fd": next((p["cpu_s"] for p in points if p["fid"] <= target), None)}
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Quality against time (digits FD vs the mnist-5k test split)", "",
             f"{result['eval_samples']} generated images per point; floor (train split vs test split): "
             f"FD {result['floor']['fid']:.2f}, KID {result['floor']['kid']:.5f}. Training time only; "
             f"device {result['device']}." + (f" Carried over from the earlier measurement (its runs are no longer "
                                              f"on disk): {', '.join(result['kept'])}." if result.get("kept") else ""),
             "", "![FD against training time](quality_time.png)", "",
             "| run | steps | CPU s | wall s | digits FD | KID | FD along the run (CPU s: FD) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, points in result["curves"].items():
        last = points[-1]
        along = ", ".join(f"{p['cpu_s']:.0f}: {p['fid']:.1f}" for p in points)
        kid = "-" if last.get("kid") is None else f"{last['kid']:.5f}"
        wall = "-" if last.get("wall_s") is None else f"{last['wall_s']:.0f}"
        lines.append(f"| {name} | {last['step']} | {last['cpu_s']:.0f} | {wall} | {last['fid']:.2f} | "
                     f"{kid} | {along} |")
    v = result.get("verdicts", {})
    if v:
        plain = v["plain_final"]
        lines += ["", f"Against the plain loop (final FD {plain['fid']:.2f} at {plain['cpu_s']:.0f} CPU s), at "
                      "the same CPU time:", "",
                  "| run | final FD | plain loop's FD then | no worse at the end | points worse than the loop | "
                  "CPU s to the loop's final FD |", "| --- | --- | --- | --- | --- | --- |"]
        for name, verdict in v.items():
            if name == "plain_final":
                continue
            final = result["curves"][name][-1]["fid"]
            ref = verdict["plain_fid_at_final"]
            ok = {None: "beyond the loop's run", True: "yes", False: "**no**"}[verdict["final_no_worse"]]
            worse = ", ".join(f"{w['cpu_s']:.0f} s: {w['fid']:.2f} vs {w['plain_fid']:.2f}"
                              for w in verdict["worse_points"]) or "none"
            reach = verdict["time_to_plain_final_fd"]
            lines.append(f"| {name} | {final:.2f} | {'-' if ref is None else f'{ref:.2f}'} | {ok} | {worse} | "
                         f"{'not reached' if reach is None else f'{reach:.0f}'} |")
    lines += ["", "Grids of the final models (64 samples, seed 0), the images behind the last column's numbers:", ""]
    lines += [f"- {name}: ![{name}](grid-{name}.png)" for name in result["curves"]]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, points in result["curves"].items():
        style = {"color": "black", "linestyle": "--", "linewidth": 2} if name == "plain" else {}
        ax.plot([p["cpu_s"] for p in points], [p["fid"] for p in points], marker="o", markersize=3,
                label="plain DCGAN loop" if name == "plain" else name, **style)
    ax.axhline(result["floor"]["fid"], color="grey", linewidth=1, linestyle=":", label="floor (real vs real)")
    ax.set_yscale("log")
    ax.set_xlabel("training time (process CPU seconds)")
    ax.set_ylabel("digits FD vs mnist-5k test split (log)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=("train", "recipes", "plain", "eval", "all"), default="all",
                        help="train (recipes, then the plain loop), recipes or plain alone, eval, or all")
    parser.add_argument("--only", default="", help="comma-separated architectures (default: every one)")
    parser.add_argument("--points", type=int, default=8, help="measured points along each run")
    parser.add_argument("--eval-samples", type=int, default=2000, help="generated images per point")
    parser.add_argument("--plain-seconds", type=float, default=0.0,
                        help="the plain loop's CPU seconds (default: as many as the longest recipe took)")
    parser.add_argument("--steps", type=int, default=None, help="override every recipe's steps (smoke runs)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 40 steps, 200 samples, 20 s plain loop")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--zoo", type=Path, default=None,
                        help="a folder of zoo runs (ZOO/ARCH-mnist-5k trained with --eval-every, ZOO/ARCH.log from "
                             "/usr/bin/time -v): their logged FD stands for those architectures (eval phase)")
    parser.add_argument("--keep", action="store_true",
                        help="eval phase: keep the curves of OUT's earlier results that this run has no run for "
                             "(runs measured before and since deleted), and say so in the table")
    parser.add_argument("--cpu", action="append", default=[], metavar="ARCH=SECONDS",
                        help="with --zoo: the CPU seconds of a zoo run whose /usr/bin/time report was lost (an "
                             "estimate; say so where it is quoted)")
    args = parser.parse_args(argv)
    try:
        args.cpu = {k: float(v) for k, v in (item.split("=", 1) for item in args.cpu)}
    except ValueError:
        parser.error("--cpu takes ARCH=SECONDS, e.g. --cpu stylegan-lite=1750")
    if args.quick:
        args.steps = args.steps or 40
        args.eval_samples = min(args.eval_samples, 200)
        args.plain_seconds = args.plain_seconds or 20.0
    if args.points < 1 or args.eval_samples < 2:
        parser.error("--points must be at least 1 and --eval-samples at least 2")
    names = [n for n in args.only.split(",") if n] or list_models()
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        parser.error(f"unknown architecture(s): {', '.join(unknown)} (see `ganzoo list`)")
    args.archs = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.phase in ("train", "recipes", "all"):
        for arch in args.archs:
            print(f"training {arch}", flush=True)
            train_recipe(arch, args.points, run_folder(args.out, arch), args.device, args.steps)
    if args.phase in ("train", "plain", "all"):
        seconds = args.plain_seconds or max(recipe_cpu_time(run_folder(args.out, a)) for a in args.archs)
        print(f"training the plain loop for {seconds:.0f} CPU s", flush=True)
        train_plain(seconds, args.points, args.out / "plain", device)
    if args.phase in ("eval", "all"):
        result = evaluate_runs(args, args.archs)
        if args.keep:
            result = keep_earlier(result, args.out / "RESULTS-quality-time.json")
        result["verdicts"] = verdicts(result)
        write_json(args.out / "RESULTS-quality-time.json", result)
        plot(result, args.out / "quality_time.png")
        write_text(args.out / "RESULTS-quality-time.md", markdown(result))
        print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

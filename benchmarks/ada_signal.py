"""Adaptive augmentation's overfitting signal under every loss: does p rise where D overfits and stay low where it
does not?

For each loss of the zoo, two runs of the same tiny model with adaptive augmentation (ADA) on: on **tiny data**, 64
images of mnist-5k's train part, which D memorises, and on **ample data**, all 5,000 images. Both start from the
same weights and seed; p starts at 0. A second pass (`--signals`, on by default) trains the same pairs without
augmentation and records what each candidate signal reads on the same D outputs, next to an independent measure of
overfitting, Karras et al.'s held-out heuristic r_v = (E D(train) - E D(held-out)) / (E D(train) - E D(G(z))) on 256
images of mnist-5k's test part (tiny runs only: the ample runs train on every image there is):

* `sign_real`: E[sign D(x)], the paper's r_t, which needs a fixed decision threshold at 0;
* `threshold`: E[sign(D(x) - t)] around the loss's own threshold t (0.5 for least squares);
* `midpoint`: E[sign(D(x) - (mean D(x) + mean D(G(z))) / 2)], unchanged by a constant added to D;
* `pairwise`: E[sign(D(x_i) - D(G(z_i)))], the comparison the relativistic pairing loss itself makes;
* `ranking`: E[sign(D(x_i) - D(G(z_j)))] over all pairs (2 AUC - 1), what shift-invariant losses report;
* `offset`: the mean of D's outputs on the reals, to see the free offset of shift-invariant losses drift.

The model is the `gan` MLP (28 px, hidden widths 256/512 in G, 128 in D with dropout 0.5, so that D does not simply
overpower G on ample data), whose D still memorises 64 images within a few hundred steps (r_v about 0.4), and the
whole set runs in minutes of CPU on one thread. Writes `benchmarks/ada-signal/RESULTS.md`
(the tables and what they show), `RESULTS.json` (every trace) and `p.png` (p against steps, one panel per loss).

    .venv/bin/python benchmarks/ada_signal.py                 # all losses, 800 steps per run, one thread
    .venv/bin/python benchmarks/ada_signal.py --steps 300 --loss hinge,relativistic --no-signals
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ganzoo._io import write_json, write_text
from ganzoo.data import ImageDataset, load_dataset, select_split
from ganzoo.interfaces import Recipe
from ganzoo.losses import build_loss
from ganzoo.model import build_model
from ganzoo.registry import get_architecture
from ganzoo.trainer.loop import RunOptions, Trainer

OUT = Path(__file__).resolve().parent / "ada-signal"
LOSSES = ("non-saturating", "minimax", "hinge", "least-squares", "wasserstein", "relativistic",
          "relativistic-average")
#: what a loss needs besides its name to train at all (the Wasserstein critic diverges without its penalty)
LOSS_EXTRA: dict[str, dict[str, Any]] = {"wasserstein": {"gp_weight": 10.0}}
ARCH = "gan"
CONFIG = {"img_size": 28, "z_dim": 32, "g_hidden": [256, 512], "d_hidden": [128], "dropout": 0.5}
TINY = 64
BATCH = 32
SEED = 0
TARGET = 0.6
INTERVAL = 4
HELD_OUT = 256
#: a run's p "rises" when its mean over the second half of the run is at least this ...
RISES = 0.2
#: ... and "stays low" when at most this
LOW = 0.1
SIGNALS = ("sign_real", "threshold", "midpoint", "pairwise", "ranking")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=800, help="generator steps per run (default 800)")
    parser.add_argument("--loss", default=",".join(LOSSES), help="comma-separated losses (default: all)")
    parser.add_argument("--ada-kimg", type=float, default=None,
                        help="ADA's speed: thousands of images for p to cross 0..1 (default: a quarter of the run)")
    parser.add_argument("--no-signals", dest="signals", action="store_false",
                        help="skip the pass without augmentation that compares candidate signals")
    parser.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {OUT})")
    args = parser.parse_args(argv)
    args.losses = [name.strip() for name in args.loss.split(",") if name.strip()]
    for name in args.losses:
        build_loss(name, **LOSS_EXTRA.get(name, {}))  # an unknown name fails here, in one line
    if args.steps < 8:
        parser.error("--steps must be at least 8")
    if args.ada_kimg is None:
        args.ada_kimg = args.steps / 4 * BATCH / 1000
    return args


# ---------------------------------------------------------------------------------------------------------------------
# data and runs
# ---------------------------------------------------------------------------------------------------------------------


def datasets() -> tuple[dict[str, ImageDataset], torch.Tensor]:
    """{"tiny": 64 train-part images, "ample": all 5,000}, and 256 test-part images held out of the tiny set."""
    whole = load_dataset("mnist-5k", img_size=CONFIG["img_size"], channels=1)
    train = select_split(whole, "train")
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(SEED))[:TINY]
    tiny = dataclasses.replace(train, images=train.images[pick].contiguous(),
                               labels=None if train.labels is None else train.labels[pick])
    test = select_split(whole, "test")
    held = torch.randperm(len(test), generator=torch.Generator().manual_seed(SEED + 1))[:HELD_OUT]
    held_out = test.images[held].float().div(127.5).sub(1.0)
    return {"tiny": tiny, "ample": whole}, held_out


class _Watch:
    """Wraps a loss's `d_loss` to read D's outputs on the real and fake batch of every D step."""

    def __init__(self, loss: Any) -> None:
        self.loss = loss
        self.rows: list[dict[str, float]] = []
        self._d_loss = loss.d_loss
        loss.d_loss = self

    def __call__(self, D: Any, real: torch.Tensor, fake: torch.Tensor, labels: Any = None, **kwargs: Any) -> Any:
        seen: list[torch.Tensor] = []

        def watched(x: torch.Tensor, lab: Any = None) -> torch.Tensor:
            out = D(x, lab)
            seen.append(out.detach().float())
            return out

        value, stats = self._d_loss(watched, real, fake, labels, **kwargs)
        r, f = seen[0], seen[1]  # GANLoss.d_loss calls D on the real batch, then on the fake batch
        threshold = self.loss.decision_threshold
        self.rows.append({
            "sign_real": r.sign().mean().item(),
            "threshold": (r - (threshold or 0.0)).sign().mean().item() if threshold is not None else float("nan"),
            "midpoint": (r - (r.mean() + f.mean()) / 2).sign().mean().item(),
            "pairwise": (r - f).sign().mean().item(),
            "ranking": (r[:, None] - f[None, :]).sign().mean().item(),
            "offset": r.mean().item(),
            "reported": stats["overfit_signal"].item(),
        })
        return value, stats


@torch.no_grad()
def held_out_rv(trainer: Trainer, train: torch.Tensor, held_out: torch.Tensor) -> float:
    """Karras et al.'s r_v with D in eval mode (no dropout): where D puts held-out reals between training reals (0)
    and fakes (1)."""
    D, G = trainer.D, trainer.G
    D.eval()
    G.eval()
    try:
        z = G.sample_latents(HELD_OUT, generator=torch.Generator().manual_seed(SEED + 2))
        d_train, d_held = D(train).mean().item(), D(held_out).mean().item()
        d_fake = D(G(z)).mean().item()
    finally:
        D.train()
        G.train()
    return (d_train - d_held) / (d_train - d_fake) if d_train != d_fake else float("nan")


def run(loss: str, data: ImageDataset, held_out: torch.Tensor | None, steps: int, ada_kimg: float, ada: bool,
        work: Path) -> dict[str, Any]:
    """One training run; with `ada` the p and r_t of every D-step interval, without it the candidate signals."""
    recipe = Recipe(steps=steps, batch_size=BATCH, loss=loss, g_lr=2e-4, d_lr=2e-4, betas=(0.5, 0.999),
                    augment="translation,cutout" if ada else "", ada_target=TARGET if ada else 0.0,
                    ada_kimg=ada_kimg, ada_interval=INTERVAL, **LOSS_EXTRA.get(loss, {}))
    cfg = get_architecture(ARCH).make_config(None, **CONFIG)
    torch.manual_seed(SEED)
    model = build_model(ARCH, cfg)
    options = RunOptions(device="cpu", seed=SEED, log_every=10**9, sample_every=10**9, checkpoint_every=10**9,
                         grid_size=4)
    trainer = Trainer(model, recipe, data, options, work)
    watch = _Watch(trainer.loss)
    p: list[float] = []
    t0 = time.process_time()
    for _ in range(steps):
        trainer.train_step()
        if ada:
            p.append(round(trainer.augment.p.item(), 5))
    result: dict[str, Any] = {"loss": loss, "images": len(data), "ada": ada, "steps": steps,
                              "cpu_s": round(time.process_time() - t0, 1)}
    half = watch.rows[len(watch.rows) // 2:]
    result["second_half"] = {key: round(sum(r[key] for r in half) / len(half), 4) for key in half[0]}
    if ada:
        result["p"] = p
        result["p_final"] = p[-1]
        result["p_second_half"] = round(sum(p[len(p) // 2:]) / (len(p) - len(p) // 2), 4)
        result["p_max"] = max(p)
    else:
        every = max(1, len(watch.rows) // 40)
        result["trace"] = {key: [round(r[key], 4) for r in watch.rows[::every]] for key in watch.rows[0]}
    if held_out is not None:
        train = data.images.float().div(127.5).sub(1.0)
        result["r_v"] = round(held_out_rv(trainer, train, held_out), 4)
    return result


# ---------------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:+.2f}" if value < 0 else f"{value:.2f}"


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [
        "# ADA's overfitting signal under each loss",
        "",
        f"`benchmarks/ada_signal.py` ({result['command']}), {result['date']}, ganzoo {result['ganzoo_version']}, "
        f"torch {result['torch_version']}, one thread; load average {result['load_average_before']} before, "
        f"{result['load_average_after']} after; {result['elapsed_s']} s.",
        "",
        f"The `{ARCH}` MLP ({json.dumps(CONFIG)}), batch {BATCH}, {s['steps']} steps per run, Adam 2e-4 (0.5, "
        f"0.999); ADA: `translation,cutout`, target {TARGET}, interval {INTERVAL}, ada_kimg {s['ada_kimg']:g} (p can "
        f"cross 0..1 in {s['ada_kimg'] * 1000 / BATCH:.0f} steps), p from 0. Tiny: {TINY} images of mnist-5k's "
        "train part; ample: all 5,000. Wasserstein with gp_weight 10; every other loss plain.",
        "",
        "## p with ADA on",
        "",
        f"p rises: its mean over the run's second half is at least {RISES} on tiny data; stays low: at most {LOW} on "
        "ample data. r_t is the loss's `overfit_signal` over the second half.",
        "",
        "| loss | signal | tiny: p 2nd half | tiny: p end | tiny: r_t | ample: p 2nd half | ample: p max | "
        "ample: r_t | p rises on tiny | stays low on ample |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ada_runs = {(r["loss"], r["images"]): r for r in result["runs"] if r["ada"]}
    for loss in s["losses"]:
        tiny, ample = ada_runs[(loss, TINY)], ada_runs[(loss, 5000)]
        threshold = build_loss(loss, **LOSS_EXTRA.get(loss, {})).decision_threshold
        signal = "ranking" if threshold is None else f"threshold {threshold:g}"
        rises = tiny["p_second_half"] >= RISES
        low = ample["p_second_half"] <= LOW
        lines.append(f"| {loss} | {signal} | {tiny['p_second_half']:.2f} | {tiny['p_final']:.2f} | "
                     f"{_fmt(tiny['second_half']['reported'])} | {ample['p_second_half']:.2f} | {ample['p_max']:.2f} | "
                     f"{_fmt(ample['second_half']['reported'])} | {'yes' if rises else 'NO'} | "
                     f"{'yes' if low else 'NO'} |")
    rises = [loss for loss in s["losses"] if ada_runs[(loss, TINY)]["p_second_half"] >= RISES]
    low = [loss for loss in s["losses"] if ada_runs[(loss, 5000)]["p_second_half"] <= LOW]
    both = [loss for loss in rises if loss in low]
    lines += ["", f"p rises on tiny data under {len(rises)} of {len(s['losses'])} losses "
              f"({', '.join(rises) or 'none'}), stays low on ample data under {len(low)} "
              f"({', '.join(low) or 'none'}); both under {len(both)} ({', '.join(both) or 'none'})."]
    signal_runs = [r for r in result["runs"] if not r["ada"]]
    if signal_runs:
        by = {(r["loss"], r["images"]): r for r in signal_runs}
        gaps = [abs(by[(loss, TINY)]["second_half"][k] - by[(loss, 5000)]["second_half"][k])
                for loss in s["losses"] for k in SIGNALS]
        gaps = [g for g in gaps if g == g]  # a loss without a threshold has no `threshold` candidate (NaN)
        rvs = [by[(loss, TINY)]["r_v"] for loss in s["losses"]]
        lines += ["", f"Without augmentation, no training-set signal separates the two: the largest gap between tiny "
                  f"and ample data of any candidate under any loss is {max(gaps):.2f}, while the held-out r_v of the "
                  f"tiny runs, which sees D overfit, is {min(rvs):.2f} to {max(rvs):.2f}. In runs this short, what "
                  "moves p is D beating G as much as D memorising, for every loss alike."]
        lines += [
            "",
            "## The candidate signals without augmentation",
            "",
            "Means over the second half of runs without augmentation: each candidate on tiny and ample data, the "
            "gap between them (what a target can separate), D's mean output on reals (its offset), and the "
            "held-out r_v of the tiny run (0: no overfitting; 1: held-out reals look like fakes to D).",
            "",
            "| loss | data | " + " | ".join(SIGNALS) + " | offset | r_v |",
            "| --- | --- | " + " | ".join("---" for _ in SIGNALS) + " | --- | --- |",
        ]
        for loss in s["losses"]:
            tiny, ample = by[(loss, TINY)], by[(loss, 5000)]
            for name, run_ in (("tiny", tiny), ("ample", ample)):
                half = run_["second_half"]
                lines.append(f"| {loss} | {name} | " + " | ".join(_fmt(half[k]) for k in SIGNALS)
                             + f" | {_fmt(half['offset'])} | {_fmt(run_.get('r_v'))} |")
            gap = [tiny["second_half"][k] - ample["second_half"][k] for k in SIGNALS]
            lines.append(f"| {loss} | gap | " + " | ".join(_fmt(g) for g in gap) + " | | |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = result["settings"]["losses"]
    runs = {(r["loss"], r["images"]): r for r in result["runs"] if r["ada"]}
    cols = min(4, len(losses))
    rows = (len(losses) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False, sharex=True, sharey=True)
    for ax, loss in zip(axes.flat, losses, strict=False):
        for images, colour, label in ((TINY, "tab:red", f"{TINY} images"), (5000, "tab:blue", "5,000 images")):
            p = runs[(loss, images)]["p"]
            ax.plot(range(1, len(p) + 1), p, color=colour, label=label, linewidth=1.2)
        ax.set_title(loss, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(losses):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel("ADA p")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"ADA's p, target {TARGET}: tiny data (red) against ample data (blue)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    import datetime

    import ganzoo
    from ganzoo._io import atomic_path

    t_start = time.perf_counter()
    data, held_out = datasets()
    result: dict[str, Any] = {
        "benchmark": "ada_signal", "command": " ".join(["benchmarks/ada_signal.py", *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ganzoo_version": ganzoo.__version__, "torch_version": torch.__version__,
        "settings": {"steps": args.steps, "losses": args.losses, "ada_kimg": args.ada_kimg, "target": TARGET,
                     "interval": INTERVAL, "tiny": TINY, "batch": BATCH, "arch": ARCH, "config": CONFIG},
        "load_average_before": [round(x, 2) for x in __import__("os").getloadavg()], "runs": [],
    }
    passes = [True, False] if args.signals else [True]
    with tempfile.TemporaryDirectory(prefix="ada-signal-") as tmp:
        for ada in passes:
            for loss in args.losses:
                for name, dataset in data.items():
                    work = Path(tmp) / f"{loss}-{name}-{int(ada)}"
                    run_ = run(loss, dataset, held_out if name == "tiny" else None, args.steps, args.ada_kimg, ada,
                               work)
                    result["runs"].append(run_)
                    shown = (f"p 2nd half {run_['p_second_half']:.2f}, end {run_['p_final']:.2f}" if ada else
                             " ".join(f"{k} {run_['second_half'][k]:+.2f}" for k in SIGNALS))
                    rv = f", r_v {run_['r_v']:+.2f}" if "r_v" in run_ else ""
                    print(f"{'ada' if ada else 'signals'} {loss:20s} {name:5s}: {shown}{rv} ({run_['cpu_s']} CPU s)",
                          flush=True)
    result["load_average_after"] = [round(x, 2) for x in __import__("os").getloadavg()]
    result["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "RESULTS.json", result)
    write_text(args.out / "RESULTS.md", markdown(result))
    with atomic_path(args.out / "p.png") as tmp_png:
        plot(result, tmp_png)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Adaptive augmentation's overfitting signal under every loss: does p rise where D overfits and stay low where it
does not?

For each loss of the zoo, runs of the same tiny model with adaptive augmentation (ADA) on: on **tiny data**, 64
images of mnist-5k's train part, which D memorises, and on **ample data**, all 5,000 images. Both start from the
same weights and seed; p starts at 0. Every loss runs with ADA's held-out signal (`ada_signal="held-out"`, the
trainer holds back some of the data and ranks D's outputs on training reals against them: 10 % of the data, 8 of
the 64 and 256 of the 5,000); the losses with a decision threshold also with the paper's r_t on training reals
(`ada_signal="train"`), as a comparison. A second pass (`--signals`, on by default) trains the same pairs without
augmentation and records what each candidate signal read on training images alone reads on the same D outputs,
next to an independent measure of overfitting, Karras et al.'s held-out heuristic
r_v = (E D(train) - E D(held-out)) / (E D(train) - E D(G(z))) on 256 images of mnist-5k's test part (tiny runs only:
the ample runs train on every image there is):

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
    .venv/bin/python benchmarks/ada_signal.py --steps 300 --loss hinge,relativistic --no-signals --target 0.2
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
from ganzoo.trainer.ada import TARGETS
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
    parser.add_argument("--target", type=float, default=TARGETS["held-out"],
                        help=f"ada_target of the held-out signal (default {TARGETS['held-out']}; r_t's is "
                             f"{TARGETS['train']})")
    parser.add_argument("--tiny-holdout", type=int, default=0,
                        help="ada_holdout of the held-out runs on tiny data (default 0: the automatic 10 %%, i.e. 8)")
    parser.add_argument("--no-train-signal", dest="train_signal", action="store_false",
                        help="skip the runs with the paper's r_t (ada_signal=train)")
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


def threshold_of(loss: str) -> float | None:
    return build_loss(loss, **LOSS_EXTRA.get(loss, {})).decision_threshold


def run(loss: str, data: ImageDataset, held_out: torch.Tensor | None, steps: int, ada_kimg: float,
        signal: str | None, target: float, work: Path, holdout: int = 0) -> dict[str, Any]:
    """One training run: with ADA's `signal` ("held-out" or "train") p and the signal r of every step; without ADA
    (`signal` None) the candidate signals read on training images."""
    ada = signal is not None
    recipe = Recipe(steps=steps, batch_size=BATCH, loss=loss, g_lr=2e-4, d_lr=2e-4, betas=(0.5, 0.999),
                    augment="translation,cutout" if ada else "", ada_target=target if ada else 0.0,
                    ada_kimg=ada_kimg, ada_interval=INTERVAL, ada_signal=signal or "held-out",
                    ada_holdout=holdout if signal == "held-out" else 0, **LOSS_EXTRA.get(loss, {}))
    cfg = get_architecture(ARCH).make_config(None, **CONFIG)
    torch.manual_seed(SEED)
    model = build_model(ARCH, cfg)
    options = RunOptions(device="cpu", seed=SEED, log_every=10**9, sample_every=10**9, checkpoint_every=10**9,
                         grid_size=4)
    trainer = Trainer(model, recipe, data, options, work)
    watch = _Watch(trainer.loss)
    key = "ada_held_out" if signal == "held-out" else "ada_rt"
    p: list[float] = []
    r: list[float] = []
    t0 = time.process_time()
    for _ in range(steps):
        trainer.train_step()
        if ada:
            stats = trainer._ada.stats()  # type: ignore[union-attr]
            p.append(round(stats["augment_p"], 5))
            if key in stats and (trainer.step * recipe.d_steps) % INTERVAL == 0:  # adjusted at this step
                r.append(round(stats[key], 4))
    result: dict[str, Any] = {"loss": loss, "images": len(data), "signal": signal, "target": target if ada else None,
                              "held_out": trainer.held_out and len(trainer.held_out), "steps": steps,
                              "cpu_s": round(time.process_time() - t0, 1)}
    half = watch.rows[len(watch.rows) // 2:]
    result["second_half"] = {k: round(sum(row[k] for row in half) / len(half), 4) for k in half[0]}
    if ada:
        result["p"] = p
        result["r"] = r
        result["p_final"] = p[-1]
        result["p_second_half"] = round(sum(p[len(p) // 2:]) / (len(p) - len(p) // 2), 4)
        result["p_max"] = max(p)
        result["r_second_half"] = round(sum(r[len(r) // 2:]) / (len(r) - len(r) // 2), 4)
    else:
        every = max(1, len(watch.rows) // 40)
        result["trace"] = {k: [round(row[k], 4) for row in watch.rows[::every]] for k in watch.rows[0]}
    if held_out is not None:
        train = data.images.float().div(127.5).sub(1.0)
        result["r_v"] = round(held_out_rv(trainer, train, held_out), 4)
    return result


# ---------------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:+.2f}" if value < 0 else f"{value:.2f}"


def ada_pairs(result: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(loss, signal, tiny run, ample run) of every ADA run pair, held-out signal first."""
    runs = {(r["loss"], r["signal"], r["images"]): r for r in result["runs"] if r["signal"]}
    pairs = []
    for signal in ("held-out", "train"):
        for loss in result["settings"]["losses"]:
            if (loss, signal, TINY) in runs:
                pairs.append((loss, signal, runs[(loss, signal, TINY)], runs[(loss, signal, 5000)]))
    return pairs


def passes(tiny: dict[str, Any], ample: dict[str, Any]) -> tuple[bool, bool]:
    """(p rises on tiny data, p stays low on ample data)."""
    return tiny["p_second_half"] >= RISES, ample["p_second_half"] <= LOW


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    targets = s["targets"]
    lines = [
        "# ADA's overfitting signal under each loss",
        "",
        f"`benchmarks/ada_signal.py` ({result['command']}), {result['date']}, ganzoo {result['ganzoo_version']}, "
        f"torch {result['torch_version']}, one thread; load average {result['load_average_before']} before, "
        f"{result['load_average_after']} after; {result['elapsed_s']} s.",
        "",
        f"The `{ARCH}` MLP ({json.dumps(CONFIG)}), batch {BATCH}, {s['steps']} steps per run, Adam 2e-4 (0.5, "
        f"0.999); ADA: `translation,cutout`, interval {INTERVAL}, ada_kimg {s['ada_kimg']:g} (p can cross 0..1 in "
        f"{s['ada_kimg'] * 1000 / BATCH:.0f} steps), p from 0. Tiny: {TINY} images of mnist-5k's train part; ample: "
        "all 5,000. Wasserstein with gp_weight 10; every other loss plain.",
        "",
        f"Signals: **held-out** (`ada_signal=\"held-out\"`, target {targets['held-out']:g}): the trainer holds back "
        "10 % of the data (8 of the 64 tiny images, 256 of the 5,000) and at every D step ranks D's outputs on the "
        f"step's training reals against {64 // INTERVAL} held-back reals (64 per adjustment, fewer where fewer are "
        "held back), from the same D: r = E[sign(D(x_train) - D(x_held))] pooled over the interval, 2 AUC - 1, 0 when "
        "D scores unseen reals like its training images. **train** "
        f"(`ada_signal=\"train\"`, target {targets['train']:g}, the paper's): r_t = E[sign(D(x) - t)] on training "
        "reals around the loss's decision threshold t; only for losses that have one (under the others it is "
        "refused).",
        "",
        "## p with ADA on",
        "",
        f"p rises: its mean over the run's second half is at least {RISES} on tiny data; stays low: at most {LOW} on "
        "ample data. r: the signal's mean over the second half's adjustments.",
        "",
        "| loss | signal | tiny: p 2nd half | tiny: p max | tiny: r | ample: p 2nd half | ample: p max | ample: r | "
        "p rises on tiny | stays low on ample |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for loss, signal, tiny, ample in ada_pairs(result):
        rises, low = passes(tiny, ample)
        lines.append(f"| {loss} | {signal} | {tiny['p_second_half']:.2f} | {tiny['p_max']:.2f} | "
                     f"{_fmt(tiny['r_second_half'])} | {ample['p_second_half']:.2f} | {ample['p_max']:.2f} | "
                     f"{_fmt(ample['r_second_half'])} | {'yes' if rises else 'NO'} | {'yes' if low else 'NO'} |")
    for signal in ("held-out", "train"):
        pairs = [(loss, *passes(tiny, ample)) for loss, sig, tiny, ample in ada_pairs(result) if sig == signal]
        if not pairs:
            continue
        both = [loss for loss, rises, low in pairs if rises and low]
        failed = [loss for loss, rises, low in pairs if not (rises and low)]
        lines += ["", f"**{signal}**: p rises on tiny data and stays low on ample data under {len(both)} of "
                  f"{len(pairs)} losses" + (f"; not under {', '.join(failed)}." if failed else ".")]
    for loss, why in result.get("refused", {}).items():
        lines += ["", f"The trainer refuses ADA under **{loss}** (its runs here lift the refusal to measure it): "
                      f"{why}."]
    signal_runs = [r for r in result["runs"] if not r["signal"]]
    if signal_runs:
        by = {(r["loss"], r["images"]): r for r in signal_runs}
        gaps = [abs(by[(loss, TINY)]["second_half"][k] - by[(loss, 5000)]["second_half"][k])
                for loss in s["losses"] for k in SIGNALS]
        gaps = [g for g in gaps if g == g]  # a loss without a threshold has no `threshold` candidate (NaN)
        rvs = [by[(loss, TINY)]["r_v"] for loss in s["losses"]]
        lines += [
            "",
            "## Why held out: the candidate signals on training images, without augmentation",
            "",
            f"No signal read on training images separates tiny from ample data: the largest gap between them of any "
            f"candidate under any loss is {max(gaps):.2f}, while the held-out r_v of the tiny runs, which sees D "
            f"overfit, is {min(rvs):.2f} to {max(rvs):.2f}. In runs this short, what moves a training-image signal is "
            "D beating G as much as D memorising, for every loss alike.",
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
    runs = {(r["loss"], r["signal"], r["images"]): r for r in result["runs"] if r["signal"]}
    cols = min(4, len(losses))
    rows = (len(losses) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False, sharex=True, sharey=True)
    styles = {"held-out": "-", "train": ":"}
    for ax, loss in zip(axes.flat, losses, strict=False):
        for signal, style in styles.items():
            for images, colour, label in ((TINY, "tab:red", f"{TINY} images"), (5000, "tab:blue", "5,000 images")):
                run_ = runs.get((loss, signal, images))
                if run_ is not None:
                    ax.plot(range(1, len(run_["p"]) + 1), run_["p"], color=colour, linestyle=style,
                            label=f"{label}, {signal}", linewidth=1.1)
        ax.set_title(loss, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(losses):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel("ADA p")
    axes.flat[0].legend(fontsize=6, loc="upper left")
    t = result["settings"]["targets"]
    fig.suptitle(f"ADA's p: tiny data (red) against ample data (blue); held-out signal (solid, target "
                 f"{t['held-out']:g}), r_t on training reals (dotted, target {t['train']:g})", fontsize=9)
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
    targets = {"held-out": args.target, "train": TARGETS["train"]}
    result: dict[str, Any] = {
        "benchmark": "ada_signal", "command": " ".join(["benchmarks/ada_signal.py", *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ganzoo_version": ganzoo.__version__, "torch_version": torch.__version__,
        "settings": {"steps": args.steps, "losses": args.losses, "ada_kimg": args.ada_kimg, "targets": targets,
                     "tiny_holdout": args.tiny_holdout,
                     "interval": INTERVAL, "tiny": TINY, "batch": BATCH, "arch": ARCH, "config": CONFIG},
        "load_average_before": [round(x, 2) for x in __import__("os").getloadavg()], "runs": [],
    }
    passes_: list[str | None] = ["held-out"]
    if args.train_signal:
        passes_.append("train")
    if args.signals:
        passes_.append(None)
    # the trainer refuses ADA under a loss with an `ada_refusal` (Wasserstein), because of what this benchmark
    # measures: it lifts the refusal for its own runs, so the evidence stays reproducible
    refused = {loss: build_loss(loss, **LOSS_EXTRA.get(loss, {})).ada_refusal for loss in args.losses}
    lifted = [type(build_loss(loss, **LOSS_EXTRA.get(loss, {}))) for loss, why in refused.items() if why]
    for cls in lifted:
        cls.ada_refusal = None
    with tempfile.TemporaryDirectory(prefix="ada-signal-") as tmp:
        for signal in passes_:
            for loss in args.losses:
                if signal == "train" and threshold_of(loss) is None:
                    continue  # refused: r_t cannot see overfitting without a decision threshold
                for name, dataset in data.items():
                    work = Path(tmp) / f"{loss}-{name}-{signal}"
                    run_ = run(loss, dataset, held_out if name == "tiny" and signal is None else None, args.steps,
                               args.ada_kimg, signal, targets.get(signal or "", 0.0), work,
                               args.tiny_holdout if name == "tiny" else 0)
                    result["runs"].append(run_)
                    shown = (f"p 2nd half {run_['p_second_half']:.2f}, max {run_['p_max']:.2f}, r "
                             f"{run_['r_second_half']:+.2f}" if signal else
                             " ".join(f"{k} {run_['second_half'][k]:+.2f}" for k in SIGNALS))
                    rv = f", r_v {run_['r_v']:+.2f}" if "r_v" in run_ else ""
                    print(f"{signal or 'signals':8s} {loss:20s} {name:5s}: {shown}{rv} ({run_['cpu_s']} CPU s)",
                          flush=True)
    for cls in lifted:
        cls.ada_refusal = refused[cls.name]  # the trainer's refusal again
    result["refused"] = {loss: why for loss, why in refused.items() if why}
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

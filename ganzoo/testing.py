"""A test kit for architecture plugins: the checks ganzoo runs on its own architectures, for yours too.

    from ganzoo.testing import check_architecture, check_fast_paths, check_resume, check_shipped

    def test_my_arch(tmp_path):
        check_architecture("my-arch", tmp_path)      # includes check_modern_recipe: RpGAN + R1/R2, ADA, schedules
        check_resume("my-arch", tmp_path / "resume")
        check_fast_paths("my-arch", tmp_path / "fast")

    def test_my_shipped_weights():
        check_shipped("my-arch-mnist-5k")      # a catalogue entry whose model folder ships in the package

Each check uses the architecture's `test_config` (a tiny config) and the embedded mnist-5k data, so it runs in
seconds on a CPU. An image-to-image architecture (`Architecture.task` "translate") is trained on pairs made from
mnist-5k (`paired_digits`: each digit and its coloured negative; the same two folders as unpaired data,
`unpaired_digits`, when its objective trains on unpaired data) and checked through `GANModel.translate`; an
upscaling one (task "upscale") on ``srN:mnist-5k`` (N its test config's `scale`, default 4), through `GANModel.upscale`.
`check_fast_paths` with torch.compile takes a minute or so. `check_fast_paths` also proves that each
option took effect (channels_last weights and batches, bfloat16 activations, compiled code running), so an option
the trainer ignores fails it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = ["MODERN_RECIPE", "assert_same_state", "check_architecture", "check_contract", "check_fast_paths",
           "check_loss", "check_modern_recipe", "check_resume", "check_shipped", "paired_digits", "probe_inputs",
           "tiny_config", "tiny_train", "unpaired_digits"]


def tiny_config(architecture: str, **overrides: Any) -> dict[str, Any]:
    """The architecture's `test_config` with `overrides` applied."""
    from ganzoo.registry import get_architecture

    return {**get_architecture(architecture).test_config, **overrides}


def _task(architecture: str) -> str:
    from ganzoo.registry import get_architecture

    return get_architecture(architecture).task


def paired_digits(folder: Path, count: int = 32) -> str:
    """Write `count` pairs made from mnist-5k into `folder` (once): ``inputs/NNN.png``, a digit in gray, and
    ``targets/NNN.png``, its negative in orange; returns the paired data spec ``INPUTS>TARGETS`` (absolute)."""
    from PIL import Image

    from ganzoo.data import load_dataset

    folder = Path(folder).absolute()
    inputs, targets = folder / "inputs", folder / "targets"
    if not (targets / f"{count - 1:03d}.png").is_file():
        digits = load_dataset("mnist-5k", img_size=28, channels=1).images[:count, 0]
        inputs.mkdir(parents=True, exist_ok=True)
        targets.mkdir(parents=True, exist_ok=True)
        tint = torch.tensor([255, 140, 0], dtype=torch.float32).view(3, 1, 1)
        for i, digit in enumerate(digits):
            Image.fromarray(digit.numpy()).convert("RGB").save(inputs / f"{i:03d}.png")
            negative = ((255 - digit.float()) / 255 * tint).round().to(torch.uint8)
            Image.fromarray(negative.permute(1, 2, 0).numpy()).save(targets / f"{i:03d}.png")
    return f"{inputs}>{targets}"


def unpaired_digits(folder: Path, count: int = 32) -> str:
    """`paired_digits`'s two folders as unpaired data, ``INPUTS~TARGETS`` (absolute): gray digits as domain A,
    orange negatives as domain B, drawn apart in training."""
    inputs, _, targets = paired_digits(folder, count).partition(">")
    return f"{inputs}~{targets}"


def _translation_data(architecture: str, folder: Path) -> str:
    """What the kit trains a translation architecture on: pairs, or unpaired data for an objective that asks."""
    from ganzoo.objectives import _objective_class
    from ganzoo.registry import get_architecture

    wanted = _objective_class(get_architecture(architecture).recipe.objective).data
    return unpaired_digits(folder) if wanted == "unpaired" else paired_digits(folder)


def tiny_train(architecture: str, out: Path, steps: int = 2, *, recipe: dict[str, Any] | None = None,
               **kwargs: Any) -> Any:
    """Train a tiny config for a few steps on mnist-5k (batch 8, no sample grids between steps); a translation
    architecture on `paired_digits` written beside `out` (as `unpaired_digits` when its objective trains on unpaired
    data)."""
    import ganzoo

    config = tiny_config(architecture, **kwargs.pop("config", {}))
    kwargs.setdefault("device", "cpu")
    data = kwargs.pop("data", None)
    if data is None and _task(architecture) == "upscale":
        data = f"sr{config.get('scale', 4)}:mnist-5k"
    if data is None:
        data = (_translation_data(architecture, Path(out).parent / "paired-digits")
                if _task(architecture) == "translate" else "mnist-5k")
    return ganzoo.train(architecture, data=data, steps=steps, out=out, config=config,
                        recipe={"batch_size": 8, **(recipe or {})}, grid_size=kwargs.pop("grid_size", 8), **kwargs)


def probe_inputs(model: Any, n: int = 4, seed: int = 0) -> torch.Tensor:
    """`n` random input images in [-1, 1] of a translation model's training input size (the output's divided by the
    `scale` of an upscaling model) and input channels."""
    G = model.sampler
    gen = torch.Generator().manual_seed(seed)
    size = [side // getattr(G, "scale", 1) for side in G.img_shape[1:]]
    return torch.rand(n, G.in_channels, *size, generator=gen).mul(2).sub(1).to(model.device)


def _outputs(model: Any, n: int, seed: int) -> torch.Tensor:
    """What a model makes without training data: `n` samples, or the translations of `probe_inputs`."""
    if model.task == "translate":
        return model.translate(probe_inputs(model, n, seed), seed=seed)
    if model.task == "upscale":
        return model.upscale(probe_inputs(model, n, seed))
    return model.sample(n, seed=seed)


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    """Every parameter and buffer of `a` and `b` is bit-identical."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), f"different keys: {sorted(set(sa) ^ set(sb))[:4]}"
    for key in sa:
        assert torch.equal(sa[key], sb[key]), f"{key} differs"


def check_contract(architecture: str) -> None:
    """The plugin contract (docs/plugins.md) of a tiny model, without training: the config round-trips through JSON
    and its dataclass, G in eval mode makes images of the config's shape in [-1, 1], D gives one logit per image.
    A breach raises `ganzoo.contract.PluginContractError` with the message the trainer gives (the trainer checks
    the rest on a run's first step: G's and D's outputs in training, the loss's outputs, the hooks)."""
    import ganzoo
    from ganzoo.contract import architecture_origin, check_config_round_trip, check_sampling
    from ganzoo.losses import loss_from_recipe
    from ganzoo.objectives import objective_from_recipe
    from ganzoo.registry import get_architecture

    who = architecture_origin(architecture)
    model = ganzoo.create(architecture, seed=0, **tiny_config(architecture))
    check_config_round_trip(model.config, who)
    G = model.generator
    recipe = get_architecture(architecture).recipe
    objective = objective_from_recipe(recipe, loss_from_recipe(recipe))  # how the trainer calls G
    if model.task != "generate":  # the condition is an input image
        cond = probe_inputs(model)
    else:
        cond = torch.arange(4) % G.num_classes if G.num_classes else None
    check_sampling(G, model.discriminator, G.sample_latents(4, torch.Generator().manual_seed(0)), cond, who,
                   generate=objective.generate)


def check_loss(loss: str, tmp_path: Path, steps: int = 2, **options: Any) -> None:
    """A loss (a name from `ganzoo.losses.list_losses()`, e.g. one your plugin registers) trains a tiny dcgan for
    `steps` steps with `options` (its `loss_options`), logging finite losses; the trainer checks the loss's part of
    the plugin contract on the first step (a (loss, stats) pair, a scalar loss with gradients, stats as tensors)."""
    import json
    import math

    run = Path(tmp_path)
    tiny_train("dcgan", run, steps=steps, log_every=1, recipe={"loss": loss, "loss_options": options})
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for key in ("d_loss", "g_loss"):
            assert key in record and math.isfinite(record[key]), f"{key} missing or not finite in {record}"


def check_architecture(architecture: str, tmp_path: Path, steps: int = 2) -> None:
    """Checks the plugin contract (`check_contract`), builds, trains `steps` steps (the trainer checks the rest of
    the contract on the first), saves, reloads, and samples (or translates) bit-identically after reloading. A
    translation model must also refuse to sample from noise with a usage error that points to `translate`."""
    import ganzoo
    from ganzoo.errors import GanzooUsageError

    check_contract(architecture)
    run = Path(tmp_path) / "run"
    trained = tiny_train(architecture, run, steps=steps)
    assert trained.architecture == architecture
    loaded = ganzoo.load(run)
    assert loaded.config == trained.config
    assert loaded.task == _task(architecture), (loaded.task, _task(architecture))
    if loaded.task != "generate":
        try:
            loaded.sample(2)
        except GanzooUsageError as exc:
            assert loaded.task in str(exc), f"sampling a {loaded.task} model says {exc}, not where to go instead"
        else:
            raise AssertionError(f"{architecture} does {loaded.task} but sample(2) did not refuse")
    expected = _outputs(trained, 8, 3)
    got = _outputs(loaded, 8, 3)
    assert got.shape == (8, *trained.img_shape), got.shape
    assert torch.equal(expected, got), "samples differ after reloading"
    assert got.min() >= -1 and got.max() <= 1
    assert torch.isfinite(got).all()
    # the paths of post-2019 GANs: a relativistic loss with R1 and R2, adaptive augmentation, step-derived schedules
    check_modern_recipe(architecture, Path(tmp_path) / "modern", steps=steps)
    # an untrained model round-trips through save_pretrained too
    fresh = ganzoo.create(architecture, seed=0, **tiny_config(architecture))
    folder = fresh.save_pretrained(Path(tmp_path) / "fresh")
    again = ganzoo.load(folder)
    assert torch.equal(_outputs(fresh, 4, 0), _outputs(again, 4, 0))
    assert_same_state(fresh.discriminator, again.discriminator)


#: a recipe that exercises the trainer's modern paths (RpGAN + R1 + R2, ADA, cosine schedules, separate betas)
MODERN_RECIPE: dict[str, Any] = {
    "loss": "relativistic", "r1_gamma": 0.1, "r2_gamma": 0.1, "g_betas": [0.0, 0.9], "d_betas": [0.0, 0.9],
    "augment": "translation,cutout,color", "ada_target": 0.05, "ada_kimg": 0.008, "ada_interval": 1,
    "schedules": {"lr": {"kind": "cosine", "to": 1e-5, "steps": 4}, "gamma": {"kind": "cosine", "to": 0.01},
                  "beta2": {"kind": "cosine", "to": 0.99, "steps": 4}},
}


def check_modern_recipe(architecture: str, tmp_path: Path, steps: int = 2) -> None:
    """The architecture trains with `MODERN_RECIPE` on top of its own recipe: every step logs finite losses, both
    penalties, ADA's p (which moves by 8 / 8 = 1 per D step, so it ends at 0 or 1) and the scheduled learning rate.
    A translation architecture trains with it less ADA (whose signal judges D without the input images)."""
    import json
    import math

    run = Path(tmp_path)
    recipe = {**MODERN_RECIPE, "d_steps": 1, "r1_interval": 1}
    ada = _task(architecture) == "generate"  # ADA judges D without its condition: generation only
    if not ada:
        recipe = {k: v for k, v in recipe.items() if not k.startswith("ada_")}
    tiny_train(architecture, run, steps=steps, log_every=1, recipe=recipe)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in records] == list(range(1, steps + 1)), records
    g_lr = _recipe_value(architecture, "g_lr")
    for record in records:
        keys = ("d_loss", "g_loss", "r1_penalty", "r2_penalty", "augment_p", "g_lr", "r1_gamma", "d_beta2")
        for key in keys if ada else [k for k in keys if k != "augment_p"]:
            assert key in record and math.isfinite(record[key]), f"{key} missing or not finite in {record}"
        if ada:
            assert record["augment_p"] in (0.0, 1.0), record["augment_p"]
        t = min(1.0, (record["step"] - 1) / 4)
        expected = 1e-5 + (g_lr - 1e-5) * 0.5 * (1 + math.cos(math.pi * t))
        assert abs(record["g_lr"] - expected) <= 1e-6 * expected, (record["g_lr"], expected)


def _recipe_value(architecture: str, name: str) -> Any:
    """A value of the architecture's default recipe."""
    from ganzoo.registry import get_architecture

    return getattr(get_architecture(architecture).recipe, name)


class _Stopped(Exception):
    """Raised by `check_resume` to stop a run as a crash would, right after a checkpoint."""


def check_resume(architecture: str, tmp_path: Path, steps: int = 10) -> None:
    """A run of `steps` steps in one go equals the same planned run stopped after its checkpoint at half the steps
    and resumed to the end, bit for bit. The run's plan (its length, which run-relative schedules follow) is fixed
    when it starts, so the second half resumes the run that was planned, not a longer one."""
    import ganzoo

    tmp_path = Path(tmp_path)
    half = steps // 2

    def stop_at_half(step: int, total: int, record: Any) -> None:
        if step == half:
            raise _Stopped

    whole = tiny_train(architecture, tmp_path / "whole", steps=steps, log_every=3, checkpoint_every=half)
    try:
        tiny_train(architecture, tmp_path / "split", steps=steps, log_every=3, checkpoint_every=half,
                   progress=stop_at_half)
    except _Stopped:
        pass
    else:
        raise AssertionError(f"the run in {tmp_path / 'split'} did not stop at step {half}")
    resumed = ganzoo.train(out=tmp_path / "split", steps=steps, resume=True)
    for name in ("generator", "discriminator", "ema"):
        a, b = getattr(whole, name), getattr(resumed, name)
        assert (a is None) == (b is None), f"{name} present in only one run"
        if a is not None:
            assert_same_state(a, b)
    import json

    def logged(run: str) -> set[int]:
        text = (tmp_path / run / "metrics.jsonl").read_text(encoding="utf-8")
        return {json.loads(line)["step"] for line in text.splitlines()}

    missing = logged("whole") - logged("split")
    assert not missing, f"the resumed run's metrics.jsonl lacks steps {sorted(missing)}"


#: the trainer's fast-path options, and how closely the first step's logged values must match the default run's
FAST_PATHS = {"channels_last": 1e-4, "compile": 1e-3, "amp": 5e-2}


def check_fast_paths(architecture: str, tmp_path: Path, options: tuple[str, ...] = tuple(FAST_PATHS)) -> None:
    """Each fast-path option of the trainer (`ganzoo train --channels-last / --compile / --amp`) trains the
    architecture, the values logged after the first step (same weights, same random draws: losses, D's outputs,
    penalties) agree with a default run's, within float noise, or bf16's precision for `amp`, and the option took
    effect: a trainer built from the run's plan is watched through one training step.

    - `channels_last`: every 4-D weight of G and D is channels_last whenever they run, the real batches are loaded
      channels_last and D is fed channels_last images (watched on 3-channel data: a 1-channel batch is laid out the
      same in both formats);
    - `amp`: every call of G and of D computes activations in bfloat16;
    - `compile`: every call of G and of D runs compiled code (the profiler's "Torch-Compiled Region" inside it),
      the penalties' (R1, R2, the gradient penalty) too, when the recipe has them.
    """
    import json

    tmp_path = Path(tmp_path)

    def first_step(name: str, **option: bool) -> dict[str, float]:
        tiny_train(architecture, tmp_path / name, steps=1, log_every=1, **option)
        line = (tmp_path / name / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[0]
        return {k: v for k, v in json.loads(line).items() if k not in ("time_s", "img_per_s")}

    default = first_step("default")
    for option in options:
        tolerance = FAST_PATHS[option]
        got = first_step(option, **{option: True})
        assert got.keys() == default.keys(), f"{option}: logs {sorted(got)}, the default run {sorted(default)}"
        for key, value in default.items():
            assert abs(got[key] - value) <= tolerance * max(1.0, abs(value)), \
                f"{option}: {key} is {got[key]} after the first step, {value} without it"
        config = {"channels": 3} if option == "channels_last" else {}
        trainer = _trainer_from_run(tmp_path / option, tmp_path / f"{option}-watched", **config)
        _FAST_PATH_PROOFS[option](trainer)


def _trainer_from_run(run: Path, out: Path, **config: Any) -> Any:
    """A trainer built from a run folder's plan (config.json) as `ganzoo.train` builds it, with `config` changes."""
    from ganzoo.model import build_model
    from ganzoo.trainer.loop import Trainer
    from ganzoo.trainer.run import _setup, read_plan

    plan = read_plan(run)
    plan["config"].update(config)
    arch, options, cfg, recipe, dataset, hooks = _setup(plan, None)
    torch.manual_seed(options.seed)
    model = build_model(arch.name, cfg)
    return Trainer(model, recipe, dataset, options, out, hooks=hooks)


def _watched_step(trainer: Any, hooks: list[Any]) -> None:
    """One training step of `trainer` with forward hooks (their handles in `hooks`) removed afterwards."""
    try:
        torch.manual_seed(trainer.options.seed)
        trainer.train_step()
    finally:
        for handle in hooks:
            handle.remove()
        trainer.release()


def _is_channels_last(x: torch.Tensor) -> bool:
    """A 4-D tensor laid out channels_last, and not also contiguous in the default format (as 1-channel ones are)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _prove_channels_last(trainer: Any) -> None:
    """Every 4-D weight of G and D is channels_last at every call in the step, every real batch the trainer loads is
    channels_last, and D is fed channels_last images."""
    from ganzoo.interfaces import TrainingHook

    not_converted: list[str] = []
    fed: list[bool] = []

    class RealBatches(TrainingHook):
        """Sees each real batch as the trainer loaded it (first of the hooks)."""

        def __init__(self) -> None:
            self.layouts: list[bool] = []

        def process_real(self, images: torch.Tensor) -> torch.Tensor:
            self.layouts.append(_is_channels_last(images))
            return images

    def weights(name: str, module: torch.nn.Module) -> None:
        not_converted.extend(f"{name}.{key}" for key, p in module.named_parameters()
                             if p.dim() == 4 and not p.is_contiguous(memory_format=torch.channels_last))

    def on_d(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        weights("D", module)
        fed.append(_is_channels_last(args[0]))

    real = RealBatches()
    trainer.hooks.insert(0, real)
    hooks = [trainer.D.register_forward_pre_hook(on_d),
             trainer.G.register_forward_pre_hook(lambda module, args: weights("G", module))]
    _watched_step(trainer, hooks)
    assert fed and real.layouts, "channels_last: the training step loaded no real batch or did not call D"
    assert not not_converted, f"channels_last did not take effect: {not_converted[0]} is not channels_last in training"
    assert all(real.layouts), "channels_last did not take effect: the trainer loaded real batches in the default layout"
    assert any(fed), "channels_last did not take effect: D was fed no channels_last images in a training step"


def _prove_amp(trainer: Any) -> None:
    """Every call of G and of D in the training step computes activations (outputs of its layers) in bfloat16."""
    calls: list[tuple[str, set[torch.dtype]]] = []
    hooks = []
    for name, module in (("G", trainer.G), ("D", trainer.D)):
        def start(module: torch.nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            calls.append((name, set()))

        hooks.append(module.register_forward_pre_hook(start))
        hooks += [layer.register_forward_hook(_record_dtypes(calls)) for layer in module.modules()]
    _watched_step(trainer, hooks)
    assert {name for name, _ in calls} == {"G", "D"}, "amp: G or D was not called in a training step"
    for name, seen in calls:
        assert torch.bfloat16 in seen, \
            f"amp did not take effect: a call of {name} computed in {sorted(map(str, seen))} in a training step"


def _record_dtypes(calls: list[tuple[str, set[torch.dtype]]]) -> Any:
    """A forward hook adding the dtypes of a layer's floating-point outputs to the current call's."""
    def record(layer: torch.nn.Module, args: tuple[Any, ...], out: Any) -> None:
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        calls[-1][1].update(t.dtype for t in outputs if torch.is_tensor(t) and t.is_floating_point())

    return record


#: the profiler's name for a frame that ran code torch.compile made (the compile id follows in newer torch)
COMPILED_REGION = "Torch-Compiled Region"


def _prove_compile(trainer: Any) -> None:
    """The calls of G and of D in the training step run code torch.compile made: the profiler records a compiled
    region inside a span around each call of the trainer's G and D, and, when the loss has a penalty (R1, R2, the
    gradient penalty: all due in the first step), around each call of the compiled function that gives a penalty
    D's logits and input gradient."""
    from torch.profiler import ProfilerActivity, profile, record_function

    open_spans: list[Any] = []

    def enter(name: str) -> Any:
        def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
            span = record_function(f"ganzoo.check_fast_paths.{name}")
            span.__enter__()
            open_spans.append(span)

        return hook

    def leave(module: torch.nn.Module, args: tuple[Any, ...], out: Any) -> None:
        open_spans.pop().__exit__(None, None, None)

    hooks = []
    for name, module in (("G", trainer.G_fn), ("D", trainer.D_fn)):
        hooks += [module.register_forward_pre_hook(enter(name)), module.register_forward_hook(leave)]
    names = ["G", "D"]
    loss_d = trainer._D  # what the loss calls: D's inputs, then D; its penalty path is a compiled function
    compiled_grad = getattr(loss_d, "_compiled_grad", None)
    if any(getattr(trainer.loss, key, 0) > 0 for key in ("gp_weight", "r1_gamma", "r2_gamma")):
        names.append("penalties")
        if compiled_grad is not None:
            def spanned(*args: Any, **kwargs: Any) -> Any:
                with record_function("ganzoo.check_fast_paths.penalties"):
                    return compiled_grad(*args, **kwargs)

            loss_d._compiled_grad = spanned
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            _watched_step(trainer, hooks)
    finally:
        if compiled_grad is not None:
            loss_d._compiled_grad = compiled_grad
    events = list(prof.events())
    regions = [e for e in events if e.name.startswith(COMPILED_REGION)]
    for name in names:
        spans = [e for e in events if e.name == f"ganzoo.check_fast_paths.{name}"]
        if name == "penalties":
            assert spans, "compile did not take effect: the loss's penalties ran no compiled code in a training step"
        assert spans, f"compile: {name} was not called in a training step"
        eager = [s for s in spans if not any(r.thread == s.thread and s.time_range.start <= r.time_range.start
                                             and r.time_range.end <= s.time_range.end for r in regions)]
        assert not eager, f"compile did not take effect: {len(eager)} of {len(spans)} calls of {name} in a " \
                          "training step ran no compiled code"


_FAST_PATH_PROOFS = {"channels_last": _prove_channels_last, "amp": _prove_amp, "compile": _prove_compile}


def check_shipped(name: str, n: int = 16) -> int:
    """A catalogue entry that ships its model folder in its plugin's package: the installed package holds it, every
    file ganzoo loads is pinned and matches its sha256, and it loads from there (no Hub involved) and samples `n`
    images of the entry's resolution. Returns the bytes the entry ships (every file of its folder)."""
    from ganzoo.api import load
    from ganzoo.hub import LOADED_FILES, SHIPPED_PREFIX, availability, sha256_of
    from ganzoo.registry import get_pretrained

    _, entry = get_pretrained(name)
    assert entry.shipped, f"{name} declares no shipped files (PretrainedCfg.files)"
    found = availability(name)
    assert found.where == "shipped" and found.folder is not None, f"{name}: {found.where}: {found.needs}"
    folder = found.folder
    for filename in LOADED_FILES:
        if (folder / filename).is_file():
            assert filename in entry.sha256, f"{name}: {filename} ships but is not pinned"
    for filename, digest in entry.sha256.items():
        assert (folder / filename).is_file(), f"{name}: pinned {filename} is not in {folder}"
        assert sha256_of(folder / filename) == digest, f"{name}: {filename} does not match its pinned sha256"
    model = load(name)
    assert model.info["source"] == f"{SHIPPED_PREFIX}{folder}", model.info["source"]
    images = model.sample(n, seed=0)
    assert images.shape == (n, model.img_shape[0], entry.resolution, entry.resolution), images.shape
    assert torch.isfinite(images).all() and images.min() >= -1 and images.max() <= 1
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())

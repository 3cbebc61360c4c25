"""`ganzoo train --arch pix2pix` on paired data and `ganzoo translate`: files and folders in, one PNG per input out,
and bad input as one-line errors (exit 2) that leave the disk as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import ganzoo
from ganzoo.cli import cli
from ganzoo.testing import paired_digits

TINY = ["--set", "g_width=4", "--set", "d_width=4", "--set", "d_layers=2", "--img-size", "16", "-b", "4"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def one_line_error(result, code, *fragments):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("p2p")
    data = paired_digits(root / "pairs", count=16)
    out = root / "run"
    result = invoke("train", "--arch", "pix2pix", "--data", data, "--steps", 2, "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    return out


def _images(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    for name, size in sizes.items():
        pixels = torch.randint(0, 256, (size, size, 3), generator=gen, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / name)


def _pixels(path):
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)


def test_train_saves_a_model_that_loads_and_translates(run):
    gan = ganzoo.load(run)
    assert (gan.architecture, gan.task, gan.img_shape) == ("pix2pix", "translate", (3, 16, 16))
    assert (run / "model" / "samples.png").is_file()


def test_translate_files_and_folders_one_png_per_input(run, tmp_path):
    _images(tmp_path / "in" / "sub", {"a.png": 16, "b.jpg": 32})
    _images(tmp_path / "single", {"c.png": 16})
    result = invoke("translate", run, tmp_path / "in", tmp_path / "single" / "c.png", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "wrote 3 translated images" in result.output
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["c.png", "sub/a.png", "sub/b.png"]
    gan = ganzoo.load(run)
    for source, target in ((tmp_path / "in" / "sub" / "b.jpg", "sub/b.png"), (tmp_path / "single" / "c.png",
                                                                               "c.png")):
        x = _pixels(source).float().div(127.5).sub(1)
        expected = gan.translate(x).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
        got = _pixels(tmp_path / "out" / target)
        assert got.shape == expected.shape  # the input's own size: 32x32 for b
        assert (got.int() - expected.int()).abs().max() <= 1


def test_size_fits_every_input_as_training_does(run, tmp_path):
    _images(tmp_path / "in", {"big.png": 72, "small.png": 24})
    one_line_error(invoke("translate", run, tmp_path / "in", "-o", tmp_path / "out"), 2, "fit every input with --size")
    result = invoke("translate", run, tmp_path / "in", "-o", tmp_path / "out", "--size", 32)
    assert result.exit_code == 0, result.output
    assert {p.name: Image.open(p).size for p in (tmp_path / "out").iterdir()} == {"big.png": (32, 32),
                                                                                 "small.png": (32, 32)}
    one_line_error(invoke("translate", run, tmp_path / "in", "-o", tmp_path / "o2", "--size", 20), 2,
                   "multiples of 16", "choose another --size")


def test_transparent_inputs_are_composited_as_in_training(run, tmp_path):
    (tmp_path / "in").mkdir()
    Image.new("RGBA", (16, 16), (0, 0, 0, 0)).save(tmp_path / "in" / "clear.png")
    Image.new("RGB", (16, 16), (0, 0, 0)).save(tmp_path / "in" / "black.png")
    Image.new("RGB", (16, 16), (255, 255, 255)).save(tmp_path / "in" / "white.png")
    assert invoke("translate", run, tmp_path / "in", "-o", tmp_path / "o1").exit_code == 0
    clear, white = (Image.open(tmp_path / "o1" / n).tobytes() for n in ("clear.png", "white.png"))
    assert clear == white != Image.open(tmp_path / "o1" / "black.png").tobytes()
    assert invoke("translate", run, tmp_path / "in", "-o", tmp_path / "o2", "--background", "black").exit_code == 0
    assert Image.open(tmp_path / "o2" / "clear.png").tobytes() == Image.open(tmp_path / "o2" / "black.png").tobytes()


def test_bad_input_is_one_line_and_writes_nothing(run, tmp_path):
    _images(tmp_path / "in", {"ok.png": 16, "odd.png": 24})
    one_line_error(invoke("translate", run, tmp_path / "in", "-o", tmp_path / "out"), 2, "odd.png", "24x24",
                   "multiples of 16")
    assert not (tmp_path / "out").exists()  # the good image was not written either
    one_line_error(invoke("translate", run, tmp_path / "in", "-o", tmp_path / "in" / "out"), 2, "overlaps the input")
    one_line_error(invoke("translate", run, tmp_path / "nowhere.png", "-o", tmp_path / "out"), 2, "does not exist")
    one_line_error(invoke("translate", run, tmp_path / "in", "-o", run / "model"), 2, "model's own files")
    (tmp_path / "clash").mkdir()
    _images(tmp_path / "clash", {"ok.jpg": 16})
    one_line_error(invoke("translate", run, tmp_path / "in" / "ok.png", tmp_path / "clash" / "ok.jpg", "-o",
                          tmp_path / "out"), 2, "would both be written to")
    assert not (tmp_path / "out").exists()


def test_commands_that_sample_from_noise_point_to_translate(run, tmp_path):
    for args in (("sample", run, "-o", tmp_path / "g.png"), ("interpolate", run, "-o", tmp_path / "w.gif"),
                 ("eval", run)):
        one_line_error(invoke(*args), 2, "translates images and cannot sample from noise", "ganzoo translate")
    _images(tmp_path / "in", {"x.png": 28})
    one_line_error(invoke("translate", "gan-mnist-5k", tmp_path / "in", "-o", tmp_path / "o"), 2,
                   "does not translate", "ganzoo sample")


def test_train_refuses_data_that_does_not_fit_the_task(tmp_path):
    one_line_error(invoke("train", "--arch", "pix2pix", "--data", "mnist-5k", "--steps", 1, "--out", tmp_path / "a",
                          *TINY), 2, "trains on pairs", "'twemoji>openmoji'")
    data = paired_digits(tmp_path / "pairs", count=16)
    one_line_error(invoke("train", "--arch", "pix2pix", "--data", data, "--steps", 1, "--out", tmp_path / "b",
                          "--eval-every", 1, *TINY), 2, "measures generated samples")
    one_line_error(invoke("train", "--arch", "pix2pix", "--data", data, "--stream", "--steps", 1, "--out",
                          tmp_path / "c", *TINY), 2, "is paired data, which is held in memory: drop --stream")
    inputs = data.split(">")[0]
    one_line_error(invoke("train", "--arch", "pix2pix", "--data", data, "--steps", 1, "--out", f"{inputs}/run",
                          *TINY), 2, "is inside the data")
    assert not any((tmp_path / name).exists() for name in "abc")
    assert not (tmp_path / "pairs" / "inputs" / "run").exists()

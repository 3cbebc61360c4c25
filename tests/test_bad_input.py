"""A corpus of broken inputs, each its own test case, fed to the CLI as a user would.

Every case checks the exit code (2: the request is wrong, 1: something failed while doing it), that the output is
one line of error naming the problem (and, with a fragment, the fix) with no traceback, and that no file the user
had is changed or lost: the files are hashed before and after.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file
from test_registry import THIRD_PARTY, install

import ganzoo
from ganzoo import registry
from ganzoo.cli import cli
from ganzoo.interfaces import PretrainedCfg

TINY = ["--set", "g_width=4", "--set", "d_width=4", "--set", "z_dim=8", "--img-size", "28", "-b", "8",
        "--device", "cpu"]


# --- helpers ---------------------------------------------------------------------------------------------------------


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file below `roots` (or of `roots` themselves when they are files)."""
    digests = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def assert_kept(before: dict[str, str]) -> None:
    """Every file of `before` still exists with the same bytes."""
    for name, digest in before.items():
        path = Path(name)
        assert path.is_file(), f"{name} was lost"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} was changed"


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def one_line_error(result, code: int, *fragments: str, caplog=None, after_progress: bool = False) -> str:
    """The result failed with `code` and printed one line, `Error: ...`, containing every fragment.

    With `caplog`, no warning was logged either: in a real process it would be a second line on the terminal.
    With `after_progress`, training's progress bar (its label, off a terminal) may come before the error.
    """
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    if after_progress:
        lines = [line for line in lines if not line.startswith("training")]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if caplog is not None:
        loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert not loud, loud
    return lines[0]


def run_cli(*args: object, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m ganzoo ARGS` in a real process (logging goes to the real stderr)."""
    return subprocess.run([sys.executable, "-m", "ganzoo", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


# --- weights and config.json of a model folder --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad-input") / "model"
    gan = ganzoo.create("dcgan", seed=0, **registry.get_architecture("dcgan").test_config)
    gan.save_pretrained(folder, samples=False)
    return folder


@pytest.fixture
def model(pristine_model, tmp_path) -> Path:
    """A fresh copy of a small dcgan model folder, the user's to break."""
    folder = tmp_path / "user" / "model"
    shutil.copytree(pristine_model, folder)
    return folder


def _state(folder: Path, name: str = "generator.safetensors") -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load((folder / name).read_bytes())  # not memory-mapped: the file is rewritten next


def _save(folder: Path, state: dict[str, torch.Tensor], name: str = "generator.safetensors") -> None:
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / name))


def _truncate(folder: Path, name: str = "generator.safetensors") -> None:
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])


def _replace_first(folder: Path, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    state = _state(folder)
    key = sorted(state)[0]
    state[key] = fn(state[key])
    _save(folder, state)


def _pickle_instead(folder: Path) -> None:
    """A torch.save (pickle) file under the safetensors name; loading it must not unpickle anything."""
    torch.save(_state(folder), folder / "generator.safetensors")


def _huge_header(folder: Path) -> None:
    path = folder / "generator.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 60) + b"{}")


def _bad_header_json(folder: Path) -> None:
    header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]'
    (folder / "generator.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)


def _header_past_the_end(folder: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode()
    (folder / "generator.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)


def _drop_first_key(folder: Path) -> None:
    state = _state(folder)
    state.pop(sorted(state)[0])
    _save(folder, state)


def _add_key(folder: Path) -> None:
    state = _state(folder)
    state["extra.weight"] = torch.zeros(2)
    _save(folder, state)


WEIGHTS_CASES = {
    "truncated": (_truncate, "not a readable safetensors file"),
    "empty-file": (lambda f: (f / "generator.safetensors").write_bytes(b""), "not a readable safetensors file"),
    "random-bytes": (lambda f: (f / "generator.safetensors").write_bytes(os.urandom(300)), "re-export or re-download"),
    "header-length-huge": (_huge_header, "not a readable safetensors file"),
    "header-not-json": (_bad_header_json, "not a readable safetensors file"),
    "header-past-end": (_header_past_the_end, "not a readable safetensors file"),
    "pickle-file": (_pickle_instead, "not a readable safetensors file"),
    "wrong-shape": (lambda f: _replace_first(f, lambda t: torch.zeros(3, 3)), "has shape (3, 3)"),
    "wrong-dtype": (lambda f: _replace_first(f, lambda t: t.double()), "dtype torch.float64"),
    "wrong-dtype-int": (lambda f: _replace_first(f, lambda t: t.to(torch.int32)), "dtype torch.int32"),
    "missing-key": (_drop_first_key, "missing keys"),
    "extra-key": (_add_key, "unexpected keys extra.weight"),
    "no-generator": (lambda f: (f / "generator.safetensors").unlink(), "no generator.safetensors"),
    "generator-is-a-folder": (lambda f: ((f / "generator.safetensors").unlink(),
                                        (f / "generator.safetensors").mkdir()), "generator.safetensors"),
    "truncated-discriminator": (lambda f: _truncate(f, "discriminator.safetensors"), "discriminator.safetensors"),
    "discriminator-of-other-size": (
        lambda f: _save(f, {"x": torch.zeros(1)}, "discriminator.safetensors"), "discriminator.safetensors"),
}


@pytest.mark.parametrize("case", WEIGHTS_CASES)
def test_broken_weights(case, model, tmp_path, caplog):
    breaker, fragment = WEIGHTS_CASES[case]
    breaker(model)
    before = snapshot(tmp_path / "user")
    line = one_line_error(invoke("sample", model, "-o", tmp_path / "user" / "grid.png"), 1, fragment, caplog=caplog)
    assert str(model) in line or "generator" in line or "discriminator" in line
    assert not (tmp_path / "user" / "grid.png").exists()
    assert_kept(before)


CONFIG_CASES = {
    "not-json": ("{not json", "not valid JSON"),
    "empty": ("", "not valid JSON"),
    "not-utf8": (b"\xff\xfe{\x00", "config.json"),
    "a-list": ('["dcgan"]', "'architecture'"),
    "no-architecture": ('{"config": {}}', "'architecture'"),
    "architecture-not-a-string": ('{"architecture": 7, "config": {}}', "'architecture'"),
    "unknown-architecture": ('{"architecture": "dcgna", "config": {}}', "did you mean 'dcgan'"),
    "import-path-colon": ('{"architecture": "os:system", "config": {}}', "unknown architecture 'os:system'"),
    "import-path-dotted": ('{"architecture": "ganzoo_dcgan.architecture", "config": {}}', "unknown architecture"),
    "import-path-builtins": ('{"architecture": "builtins.eval", "config": {}}', "unknown architecture"),
    "config-a-list": ('{"architecture": "dcgan", "config": [1, 2]}', "'config' must be a JSON object"),
    "field-wrong-type-str": ('{"architecture": "dcgan", "config": {"g_width": "8"}}', "g_width must be an integer"),
    "field-wrong-type-float": ('{"architecture": "dcgan", "config": {"img_size": 28.5}}',
                               "img_size must be an integer"),
    "field-wrong-type-bool": ('{"architecture": "dcgan", "config": {"z_dim": true}}', "z_dim must be an integer"),
    "field-wrong-type-null": ('{"architecture": "dcgan", "config": {"channels": null}}', "channels must be"),
    "unknown-field": ('{"architecture": "dcgan", "config": {"__class__": "os.system"}}', "unknown DCGANConfig field"),
    "unsupported-size": ('{"architecture": "dcgan", "config": {"img_size": 48}}', "img_size 48 is not supported"),
    "negative-channels": ('{"architecture": "dcgan", "config": {"channels": -1}}', "channels must be 1 or 3"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_broken_config_json(case, model, tmp_path, caplog):
    text, fragment = CONFIG_CASES[case]
    path = model / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = snapshot(tmp_path / "user")
    one_line_error(invoke("sample", model, "-o", tmp_path / "user" / "grid.png"), 2, fragment, caplog=caplog)
    assert not (tmp_path / "user" / "grid.png").exists()
    assert_kept(before)


def test_broken_weights_in_a_real_process(model, tmp_path):
    """In a real process, logging included, stderr is the one error line and stdout is empty."""
    _truncate(model)
    before = snapshot(tmp_path / "user")
    result = run_cli("sample", model, "-o", tmp_path / "user" / "grid.png")
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "safetensors" in lines[0], result.stderr
    assert_kept(before)


# --- data folders ----------------------------------------------------------------------------------------------------


def _png(path: Path, size=(28, 28), mode="L", seed=0) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode if mode in ("L", "RGB", "RGBA") else "RGB"]
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(array[..., 0] if channels == 1 else array)
    if mode not in ("L", "RGB", "RGBA"):
        image = image.convert(mode)
    image.save(path)


def _good_folder(folder: Path, n: int = 8) -> Path:
    for i in range(n):
        _png(folder / f"img{i}.png", seed=i)
    return folder


DATA_CASES = {
    "empty-folder": (lambda d: d.mkdir(parents=True), 2, "no readable images"),
    "no-image-files": (lambda d: (d.mkdir(parents=True), (d / "notes.txt").write_text("hi")), 2,
                       "accepted extensions"),
    "missing-folder": (lambda d: None, 2, "does not exist"),
    "a-file": (lambda d: (d.parent.mkdir(parents=True), d.write_text("x")), 2, "is a file, not a folder"),
    "corrupt-among-good": (lambda d: (_good_folder(d), (d / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")), 1,
                           "--on-bad-image skip"),
    "truncated-png": (lambda d: (_good_folder(d), (d / "cut.png").write_bytes((d / "img0.png").read_bytes()[:60])), 1,
                      "--on-bad-image skip"),
    "text-named-png": (lambda d: (_good_folder(d), (d / "readme.png").write_text("not an image")), 1, "readme.png"),
    "zero-byte-jpg": (lambda d: (_good_folder(d), (d / "empty.jpg").write_bytes(b"")), 1, "empty.jpg"),
    "all-corrupt": (lambda d: (d.mkdir(parents=True), (d / "a.png").write_bytes(b"junk"),
                               (d / "b.jpg").write_bytes(b"junk")), 2, "no readable images"),
    "too-few-for-batch": (lambda d: _good_folder(d, 3), 2, "fewer than the batch size"),
}


@pytest.mark.parametrize("case", DATA_CASES)
def test_bad_data(case, tmp_path, caplog):
    setup, code, fragment = DATA_CASES[case]
    data = tmp_path / "user" / "data"
    setup(data)
    before = snapshot(tmp_path / "user") if (tmp_path / "user").exists() else {}
    result = invoke("train", "--arch", "dcgan", "--data", data, "--steps", 2, "--out", tmp_path / "run", *TINY)
    one_line_error(result, code, fragment, caplog=caplog)
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert_kept(before)


def test_all_corrupt_with_skip_is_an_error(tmp_path):
    data = tmp_path / "user" / "data"
    DATA_CASES["all-corrupt"][0](data)
    before = snapshot(tmp_path / "user")
    result = invoke("train", "--arch", "dcgan", "--data", data, "--on-bad-image", "skip", "--steps", 2,
                    "--out", tmp_path / "run", *TINY)
    one_line_error(result, 2, "no readable images")
    assert_kept(before)


def test_corrupt_image_skipped_with_a_warning_and_a_count(tmp_path, caplog):
    data = tmp_path / "user" / "data"
    _good_folder(data)
    (data / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (data / "empty.jpg").write_bytes(b"")
    before = snapshot(tmp_path / "user")
    caplog.set_level(logging.WARNING)
    result = invoke("train", "--arch", "dcgan", "--data", data, "--on-bad-image", "skip", "--steps", 2,
                    "--out", tmp_path / "run", "--checkpoint-every", 1, *TINY)
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("skipped 2 unreadable image(s) of 10" in w for w in warnings), warnings
    plan = json.loads((tmp_path / "run" / "config.json").read_text())
    assert plan["data"]["skipped"] == 2 and plan["data"]["images"] == 8
    assert_kept(before)


def _vanished(data: Path, monkeypatch) -> tuple[str, str]:
    """A file that is listed but gone when it is read: a dangling symlink named like an image (real, even as root)."""
    (data / "img7.png").unlink()
    (data / "img7.png").symlink_to(data / "deleted.png")
    return "img7.png", "FileNotFoundError"


def _read_fails(code: int):
    def make(data: Path, monkeypatch) -> tuple[str, str]:
        """Reading img7.png fails with `code`, as chmod 000 (which does not stop root, as CI may run) or a failing
        disk would make it: the one read ganzoo's image readers make of a file is patched to fail."""
        read_bytes = Path.read_bytes

        def failing(path: Path) -> bytes:
            if path.name == "img7.png":
                raise OSError(code, os.strerror(code), str(path))
            return read_bytes(path)

        monkeypatch.setattr(Path, "read_bytes", failing)
        return "img7.png", os.strerror(code)
    return make


READ_ERRORS = {"vanished": _vanished, "permission-denied": _read_fails(errno.EACCES), "eio": _read_fails(errno.EIO)}


@pytest.mark.parametrize("stream", [False, True], ids=["memory", "stream"])
@pytest.mark.parametrize("on_bad_image", ["fail", "skip"])
@pytest.mark.parametrize("cause", READ_ERRORS)
def test_a_file_that_cannot_be_read_stops_training_even_under_skip(tmp_path, monkeypatch, cause, on_bad_image,
                                                                   stream):
    """Only decode failures are skipped: a read error stops the run (exit 1) with one line naming the file and the
    cause, in memory and streamed (where it is met by the up-front check under skip, by a worker under fail)."""
    data = _good_folder(tmp_path / "user" / "data")  # 8 images: the one batch of 8 holds them all
    if cause == "permission-denied" and os.geteuid() != 0:  # the real thing too, where it works
        os.chmod(_good_folder(tmp_path / "user" / "real")  / "img7.png", 0)
        real = invoke("train", "--arch", "dcgan", "--data", tmp_path / "user" / "real", "--on-bad-image",
                      on_bad_image, "--steps", 1, "--out", tmp_path / "real-run", *TINY)
        one_line_error(real, 1, "cannot read image", "img7.png", "PermissionError", after_progress=True)
    if cause == "vanished":  # the setup changes the folder
        name, reason = READ_ERRORS[cause](data, monkeypatch)
        before = snapshot(tmp_path / "user")
    else:  # the setup patches reading
        before = snapshot(tmp_path / "user")
        name, reason = READ_ERRORS[cause](data, monkeypatch)
    result = invoke("train", "--arch", "dcgan", "--data", data, *(["--stream", "--data-workers", 1] if stream else []),
                    "--on-bad-image", on_bad_image, "--steps", 2, "--out", tmp_path / "run", *TINY)
    line = one_line_error(result, 1, "cannot read image", name, reason, after_progress=True)
    assert "cannot decode" not in line
    assert not (tmp_path / "run" / "checkpoints").exists()
    monkeypatch.undo()
    assert_kept(before)


@pytest.mark.parametrize("stream", [False, True], ids=["memory", "stream"])
def test_a_folder_that_cannot_be_listed_stops_training(tmp_path, monkeypatch, stream):
    """A sub-folder that cannot be listed (permission denied) would drop its images without a word: it stops the
    run, skip or not, naming the folder."""
    data = _good_folder(tmp_path / "user" / "data")
    _good_folder(data / "more", 2)
    scandir = os.scandir

    def failing(path=".") -> object:
        if Path(path).name == "more":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", failing)
    result = invoke("train", "--arch", "dcgan", "--data", data, *(["--stream"] if stream else []), "--on-bad-image",
                    "skip", "--steps", 1, "--out", tmp_path / "run", *TINY)
    one_line_error(result, 1, "cannot read the folder", str(data / "more"), "Permission denied")


def test_read_and_decode_failures_in_zips_and_data_prepare(tmp_path, monkeypatch):
    """A zip member whose bytes are damaged (its CRC fails) is a read error; `ganzoo data prepare` skips what fails to
    decode and stops, writing nothing, on what cannot be read."""
    data = _good_folder(tmp_path / "user" / "data")
    (data / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    prepared = invoke("data", "prepare", data, tmp_path / "ok.zip", "--size", 28)
    assert prepared.exit_code == 0 and "skipped 1 unreadable file(s):" in prepared.stdout, prepared.output
    with zipfile.ZipFile(tmp_path / "ok.zip") as archive:
        assert len([n for n in archive.namelist() if n.endswith(".png")]) == 8
    damaged = bytearray((tmp_path / "ok.zip").read_bytes())
    with zipfile.ZipFile(tmp_path / "ok.zip") as archive:
        info = archive.getinfo("00000/img00000003.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    damaged[start + 100] ^= 0xFF  # inside the stored PNG: the member's CRC-32 no longer matches
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    for on_bad_image in ("fail", "skip"):
        result = invoke("train", "--arch", "dcgan", "--data", tmp_path / "damaged.zip", "--on-bad-image",
                        on_bad_image, "--data-workers", 0, "--steps", 1, "--out", tmp_path / f"run-{on_bad_image}",
                        *TINY)
        one_line_error(result, 1, "cannot read image", "img00000003.png", "Bad CRC-32", after_progress=True)
    name, reason = _read_fails(errno.EIO)(data, monkeypatch)
    stopped = invoke("data", "prepare", data, tmp_path / "never.zip", "--size", 28)
    assert stopped.exit_code == 1 and "Traceback" not in stopped.output
    lines = [line for line in stopped.output.splitlines() if line.strip() and line != "preparing"]  # its bar
    assert len(lines) == 1 and all(f in lines[0] for f in ("Error: cannot read image", name, reason)), lines
    # run-skip stopped while checking every image up front, before it wrote anything: the folder it made is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.zip", "ok.zip", "run-fail", "user"]


def test_mixed_image_sizes_and_modes_are_fitted(tmp_path):
    data = tmp_path / "user" / "data"
    shapes = [((28, 28), "L"), ((40, 30), "RGB"), ((17, 64), "RGBA"), ((100, 100), "P"), ((29, 31), "LA"),
              ((28, 28), "I;16"), ((64, 48), "CMYK"), ((5, 5), "1")]
    for i, (size, mode) in enumerate(shapes):
        _png(data / f"img{i}.{'jpg' if mode == 'CMYK' else 'png'}", size=size, mode=mode, seed=i)
    before = snapshot(tmp_path / "user")
    result = invoke("train", "--arch", "dcgan", "--data", data, "--steps", 1, "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 0, result.output
    plan = json.loads((tmp_path / "run" / "config.json").read_text())
    assert plan["data"]["images"] == len(shapes) and plan["data"]["skipped"] == 0
    assert ganzoo.load(tmp_path / "run").img_shape == (plan["config"]["channels"], 28, 28)
    assert_kept(before)


# --- numbers and sizes -----------------------------------------------------------------------------------------------

NUMBER_CASES = {
    "steps-zero": (["--steps", "0"], "--steps"),
    "steps-negative": (["--steps", "-3"], "--steps"),
    "steps-not-a-number": (["--steps", "many"], "--steps"),
    "steps-set-zero": (["--set", "steps=0"], "steps must be at least 1"),
    "batch-zero": (["--batch-size", "0"], "--batch-size"),
    "batch-negative": (["-b", "-8"], "--batch-size"),
    "batch-set-negative": (["--set", "batch_size=-1"], "batch_size must be at least 1"),
    "batch-set-float": (["--set", "batch_size=8.5"], "batch_size must be an integer"),
    "g-lr-zero": (["--g-lr", "0"], "--g-lr"),
    "d-lr-negative": (["--d-lr", "-0.001"], "--d-lr"),
    "g-lr-nan": (["--g-lr", "nan"], "g_lr"),
    "d-lr-inf": (["--d-lr", "inf"], "d_lr"),
    "lr-set-string": (["--set", "g_lr=fast"], "g_lr must be a number"),
    "lr-set-negative": (["--set", "d_lr=-1"], "d_lr must be a positive number"),
    "d-steps-zero": (["--d-steps", "0"], "--d-steps"),
    "img-size-unsupported": (["--img-size", "48"], "img_size 48 is not supported"),
    "img-size-tiny": (["--img-size", "2"], "--img-size"),
    "img-size-set-huge": (["--set", "img_size=4096"], "img_size 4096 is not supported"),
    "channels-set-2": (["--set", "channels=2"], "channels must be 1 or 3"),
    "checkpoint-every-zero": (["--checkpoint-every", "0"], "--checkpoint-every"),
    "unknown-loss": (["--loss", "hinj"], "did you mean 'hinge'"),
    "unknown-preset": (["--preset", "nope"], "unknown preset"),
    "unknown-field": (["--set", "g_widht=4"], "did you mean 'g_width'"),
}


@pytest.mark.parametrize("case", NUMBER_CASES)
def test_bad_numbers(case, tmp_path, caplog):
    args, fragment = NUMBER_CASES[case]
    result = invoke("train", "--arch", "dcgan", "--out", tmp_path / "run", *TINY, *args)
    one_line_error(result, 2, fragment, caplog=caplog)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("arch, size, fragment", [
    ("progan", 24, "power of two"),
    ("cgan", 64, "img_size 64 is not supported"),
    ("stylegan-lite", 12, "img_size"),
])
def test_an_image_size_the_architecture_cannot_make(arch, size, fragment, tmp_path):
    one_line_error(invoke("train", "--arch", arch, "--img-size", size, "--out", tmp_path / "run"), 2, fragment)
    assert not (tmp_path / "run").exists()


# --- output folders --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad-input-run") / "run"
    result = invoke("train", "--arch", "dcgan", "--steps", 2, "--out", out, "--checkpoint-every", 1, *TINY)
    assert result.exit_code == 0, result.output
    return out


def test_an_existing_run_folder_is_refused_and_kept(finished_run, tmp_path, caplog):
    run = tmp_path / "user" / "run"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    one_line_error(invoke("train", "--arch", "dcgan", "--steps", 2, "--out", run, *TINY), 2, "already exists",
                   "--resume", "--overwrite", caplog=caplog)
    assert_kept(before)
    assert snapshot(run) == before  # nothing added either


def test_a_folder_of_user_files_is_refused_and_kept(tmp_path):
    out = tmp_path / "user" / "thesis"
    out.mkdir(parents=True)
    (out / "chapter1.tex").write_text("precious")
    before = snapshot(out)
    one_line_error(invoke("train", "--arch", "dcgan", "--out", out, *TINY), 2, "already exists")
    assert snapshot(out) == before


def test_overwrite_replaces_the_run_but_keeps_the_users_other_files(finished_run, tmp_path):
    run = tmp_path / "user" / "run"
    shutil.copytree(finished_run, run)
    (run / "notes.md").write_text("my notes")
    result = invoke("train", "--arch", "dcgan", "--steps", 1, "--out", run, "--overwrite", *TINY)
    assert result.exit_code == 0, result.output
    assert (run / "notes.md").read_text() == "my notes"
    assert json.loads((run / "config.json").read_text())["recipe"]["steps"] == 1


def test_a_resume_of_something_that_is_not_a_run(tmp_path):
    out = tmp_path / "user" / "folder"
    out.mkdir(parents=True)
    (out / "data.csv").write_text("1,2")
    before = snapshot(out)
    one_line_error(invoke("train", "--resume", "--out", out), 2, "not a ganzoo run folder")
    assert snapshot(out) == before


OUT_CASES = {
    "out-is-a-file": (lambda u: u / "file.txt", 2, "is a file"),
    "out-below-a-file": (lambda u: u / "file.txt" / "run", 2, "choose another --out"),
    "out-deep-below-a-file": (lambda u: u / "file.txt" / "a" / "b", 2, "choose another --out"),
    "out-in-dev-null": (lambda u: Path("/dev/null/run"), 2, "choose another --out"),
    "out-in-proc": (lambda u: Path("/proc/ganzoo-run"), 2, "choose another --out"),
}


@pytest.mark.parametrize("case", OUT_CASES)
def test_an_output_path_that_is_not_writable(case, tmp_path, caplog):
    user = tmp_path / "user"
    user.mkdir()
    (user / "file.txt").write_text("keep me")
    where, code, fragment = OUT_CASES[case]
    before = snapshot(user)
    one_line_error(invoke("train", "--arch", "dcgan", "--steps", 1, "--out", where(user), *TINY), code, fragment,
                   caplog=caplog)
    assert snapshot(user) == before


@pytest.mark.parametrize("command", [
    lambda u: ["sample", u / "model", "-o", u / "file.txt" / "grid.png"],
    lambda u: ["interpolate", u / "model", "-o", u / "file.txt" / "walk.gif", "-n", 2, "--keyframes", 2,
               "--frames", 1],
    lambda u: ["sample", u / "model", "-o", u / "model"],
], ids=["sample-below-a-file", "gif-below-a-file", "sample-onto-a-folder"])
def test_an_output_file_that_cannot_be_written(command, model, tmp_path):
    user = tmp_path / "user"
    (user / "file.txt").write_text("keep me")
    before = snapshot(user)
    one_line_error(invoke(*command(user)), 2, "-o")
    assert_kept(before)


def test_a_disk_that_fills_during_a_checkpoint(tmp_path, monkeypatch):
    """ENOSPC while the second checkpoint is written: one line, the first checkpoint intact, then resume works."""
    from ganzoo import serialization

    real = serialization.atomic_path
    writes = []
    kept: dict[str, str] = {}  # the checkpoints on disk when the disk filled up

    import contextlib

    @contextlib.contextmanager
    def filling_disk(target):
        with real(target) as tmp:
            yield tmp
            if Path(target).parent.name == "checkpoints":
                writes.append(target)
                if len(writes) == 2:  # the disk is full from the second checkpoint on
                    kept.update(snapshot(*Path(target).parent.glob("step-*.safetensors")))
                    with open(tmp, "r+b") as fh:
                        fh.truncate(100)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    monkeypatch.setattr(serialization, "atomic_path", filling_disk)
    run = tmp_path / "run"
    result = invoke("train", "--arch", "dcgan", "--steps", 4, "--checkpoint-every", 2, "--out", run, *TINY)
    line = one_line_error(result, 1, "No space left on device", "step-0000004.safetensors", "free", after_progress=True)
    assert "--resume" in line
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["step-0000002.safetensors"], checkpoints  # no temporary file left behind
    assert len(kept) == 1
    assert_kept(kept)
    from ganzoo.trainer.checkpoint import Checkpoint

    assert Checkpoint.load(run / "checkpoints" / checkpoints[0]).meta["step"] == 2
    monkeypatch.setattr(serialization, "atomic_path", real)  # space freed
    result = invoke("train", "--resume", "--out", run)
    assert result.exit_code == 0, result.output
    assert ganzoo.load(run).info["training"]["steps"] == 4


def test_a_disk_that_fills_while_writing_the_run_config(tmp_path, monkeypatch):
    from ganzoo import _io

    def full(target, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    import ganzoo.trainer.run as run_module

    monkeypatch.setattr(run_module, "write_json", full)
    one_line_error(invoke("train", "--arch", "dcgan", "--steps", 1, "--out", tmp_path / "run", *TINY), 1,
                   "No space left on device")
    del _io


# --- plugins ---------------------------------------------------------------------------------------------------------


_MODULES = itertools.count()


def _plugin(site: Path, name: str, source: str, dist: str | None = None, version: str = "0.1") -> None:
    """Install a distribution `dist` (default `<name>plugin`) whose entry point `name` points into `source`."""
    module = f"{name}_mod_{next(_MODULES)}"  # a fresh module name: sys.modules outlives each test
    install(site, dist or f"{name}plugin", version, {name: f"{module}:architecture"}, {module: source})


BAD_BUILDER = THIRD_PARTY.replace("build_generator=TinyG", "build_generator=lambda cfg: torch.nn.Linear(2, 2)")
WRONG_SHAPE = THIRD_PARTY.replace("super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))",
                                  "super().__init__(cfg.z_dim, (cfg.channels, 2 * cfg.img_size, cfg.img_size))")

PLUGIN_CASES = {
    "raises-on-import": (lambda s: _plugin(s, "boom", "raise RuntimeError('plugin exploded')\n"),
                         "boom", "plugin exploded"),
    "raises-multiline": (lambda s: _plugin(s, "boom", "raise RuntimeError('first line\\nsecond line\\nthird')\n"),
                         "boom", "first line"),
    "missing-dependency": (lambda s: _plugin(s, "boom", "import a_module_nobody_has\n"), "boom",
                           "a_module_nobody_has"),
    "syntax-error": (lambda s: _plugin(s, "boom", "def broken(:\n"), "boom", "SyntaxError"),
    "exits-on-import": (lambda s: _plugin(s, "boom", "import sys\nsys.exit(0)\n"), "boom", "SystemExit"),
    "missing-attribute": (lambda s: _plugin(s, "boom", "x = 1\n"), "boom", "reinstall or fix boomplug"),
    "not-an-architecture": (lambda s: _plugin(s, "boom", "architecture = {'name': 'boom'}\n"), "boom",
                            "not a ganzoo.interfaces.Architecture"),
    "name-mismatch": (lambda s: _plugin(s, "boom", THIRD_PARTY.format(name="other")), "boom", "must agree"),
    "two-with-one-name": (lambda s: (_plugin(s, "twin", THIRD_PARTY.format(name="twin"), "first-dist", "1.0"),
                                     _plugin(s, "twin", THIRD_PARTY.format(name="twin"), "second-dist", "2.0")),
                          "twin", "first-dist 1.0"),
    "builder-returns-wrong-type": (lambda s: _plugin(s, "boom", BAD_BUILDER.format(name="boom")), "boom",
                                   "Generator"),
    "generator-wrong-shape": (lambda s: _plugin(s, "boom", WRONG_SHAPE.format(name="boom")), "boom", "img_shape"),
}


@pytest.mark.parametrize("case", PLUGIN_CASES)
@pytest.mark.parametrize("command", ["train", "create"])
def test_broken_plugins(case, command, fake_site, tmp_path, caplog):
    setup, name, fragment = PLUGIN_CASES[case]
    setup(fake_site)
    if command == "train":
        result = invoke("train", "--arch", name, "--steps", 1, "-b", 8, "--out", tmp_path / "run", "--device", "cpu")
    else:
        result = invoke("info", name) if case not in ("builder-returns-wrong-type", "generator-wrong-shape") \
            else invoke("train", "--arch", name, "--dry-run")
    if case in ("builder-returns-wrong-type", "generator-wrong-shape") and command == "create":
        # the plugin object is fine; only building a model reveals the problem
        assert result.exit_code == 0, result.output
        return
    one_line_error(result, 1, fragment, caplog=caplog)
    assert not (tmp_path / "run" / "checkpoints").exists()
    # one bad plugin never breaks the rest
    assert "dcgan" in invoke("list").output
    plugins = invoke("plugins")
    assert plugins.exit_code == 0, plugins.output
    assert name in plugins.output and ("ERROR" in plugins.output or "CONFLICT" in plugins.output or
                                       case in ("builder-returns-wrong-type", "generator-wrong-shape"))


def test_a_plugin_that_exits_on_import_in_a_real_process(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _plugin(site, "boom", "import sys\nsys.exit(0)\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    result = run_cli("info", "boom", env=env)
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: plugin 'boom'"), result.stderr
    result = run_cli("list", env=env)
    assert result.returncode == 0 and "boom" in result.stdout and "dcgan" in result.stdout


# --- the Hub ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def online(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", hub.write_token)
    return hub


@pytest.fixture
def no_sleep(monkeypatch):
    """Record huggingface_hub's back-off waits instead of sleeping them."""
    from huggingface_hub.utils import _http

    waits: list[float] = []
    monkeypatch.setattr(_http, "time", SimpleNamespace(sleep=waits.append))
    return waits


@pytest.fixture
def published(online, pristine_model):
    """A repo holding a small model, as `ganzoo push` writes it."""
    files = {name: (pristine_model / name).read_bytes() for name in ("config.json", "generator.safetensors",
                                                                     "discriminator.safetensors")}
    online.put("tester/tiny", files)
    return online


def _sample(name: str, tmp_path: Path, *extra: object):
    return invoke("sample", name, "-n", 4, "-o", tmp_path / "grid.png", *extra)


def test_hub_unknown_repo(online, tmp_path):
    one_line_error(_sample("nobody/nothing", tmp_path), 2, "no local folder or Hub repo named 'nobody/nothing'")


def test_hub_unknown_revision(published, tmp_path):
    one_line_error(invoke("pull", "tester/tiny", "--revision", "v9"), 2, "no revision 'v9'")


def test_hub_not_a_repo_id(online):
    one_line_error(invoke("pull", "a/b/c"), 2, "does not exist")
    one_line_error(invoke("pull", "hf-hub:not a repo"), 2, "not a Hub repository id")


def test_hub_missing_weights_file(online, pristine_model, tmp_path):
    online.put("tester/partial", {"config.json": (pristine_model / "config.json").read_bytes()})
    line = one_line_error(_sample("tester/partial", tmp_path), 1, "generator.safetensors")
    assert "push" in line or "re-" in line


def test_hub_broken_config(online, pristine_model, tmp_path):
    online.put("tester/badcfg", {"config.json": b'{"architecture": "os:system"}',
                                 "generator.safetensors": (pristine_model / "generator.safetensors").read_bytes()})
    one_line_error(_sample("tester/badcfg", tmp_path), 2, "unknown architecture 'os:system'")


@pytest.mark.parametrize("status", [500, 501, 502, 503])
def test_hub_server_error(status, published, no_sleep, tmp_path):
    published.fail_next(status, count=None)
    line = one_line_error(_sample("tester/tiny", tmp_path), 1, str(status))
    assert "tester/tiny" in line
    published.clear_failures()
    assert not (tmp_path / "grid.png").exists()


def test_hub_server_error_on_the_download_only(published, no_sleep, tmp_path):
    published.fail_next(500, count=None, path_contains="/resolve/")
    line = one_line_error(_sample("tester/tiny", tmp_path), 1, "500")
    assert "tester/tiny" in line
    assert no_sleep  # huggingface_hub retried with back-off (without sleeping here)


def test_hub_flaky_server_recovers(published, no_sleep, tmp_path):
    published.fail_next(503, count=2, path_contains="/resolve/")
    result = _sample("tester/tiny", tmp_path)
    assert result.exit_code == 0, result.output
    assert no_sleep  # it recovered by retrying with back-off


def test_hub_timeout(published, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 0.5)
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.5)
    published.delay(120)  # far longer than the command may take, however slow the machine is today
    import time

    start = time.monotonic()
    line = one_line_error(_sample("tester/tiny", tmp_path), 1, "tester/tiny")
    assert time.monotonic() - start < 60  # it gave up instead of waiting for the Hub's answer
    assert "network" in line or "time" in line


def test_hub_unreachable(tmp_path, hub, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port held (so nobody else can listen on it) where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        one_line_error(_sample("tester/tiny", tmp_path), 1, "cannot reach the Hub", "not cached")


def test_hub_checksum_mismatch_keeps_the_cache(published, tmp_path, monkeypatch):
    commit = published.commits("tester/tiny")[-1]
    entry = PretrainedCfg(name="tiny-pinned", repo_id="tester/tiny", dataset="mnist-5k", revision=commit,
                          sha256={"generator.safetensors": "0" * 64})
    original = registry._catalogue
    monkeypatch.setattr(registry, "_catalogue", lambda: {**original(), entry.name: ("dcgan", entry)})
    assert invoke("pull", "tester/tiny").exit_code == 0  # the user already has the repo in the cache
    cache = Path(os.environ["HF_HUB_CACHE"])
    before = snapshot(cache)
    assert any(name.endswith("generator.safetensors") for name in before)
    one_line_error(_sample("tiny-pinned", tmp_path), 1, "sha256 of generator.safetensors", "pull again")
    after = snapshot(cache)
    assert {name: after.get(name) for name in before} == before  # nothing the user had was changed or deleted


def test_hub_corrupted_in_transit(published, tmp_path):
    blob = published.files("tester/tiny")["generator.safetensors"]
    published.tamper("tester/tiny", "generator.safetensors", blob[:-8] + b"\0" * 8)
    one_line_error(_sample("tester/tiny", tmp_path), 1, "generator.safetensors")


def test_hub_offline_and_not_cached(published, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    seen = len(published.requests)
    one_line_error(_sample("tester/tiny", tmp_path), 1, "offline", "not in the local cache")
    assert len(published.requests) == seen


def test_hub_push_without_a_token(online, model, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    before = snapshot(model)
    one_line_error(invoke("push", model, "--repo", "tester/denied"), 1, "log in")
    assert "tester/denied" not in online.repos
    assert snapshot(model) == before


def test_hub_push_of_a_broken_model_sends_nothing(online, model):
    _truncate(model)
    seen = len(online.requests)
    one_line_error(invoke("push", model, "--repo", "tester/broken"), 1, "safetensors")
    assert len(online.requests) == seen


def test_hub_push_to_a_bad_repo_id(online, model):
    one_line_error(invoke("push", model, "--repo", "not a repo"), 2, "not a Hub repository id")

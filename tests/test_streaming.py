"""Streamed data: `ganzoo data prepare` zips, streamed image folders and Hugging Face datasets, read by DataLoader
workers in an order that is a pure function of seed and step (so resume and distributed rows are exact)."""

from __future__ import annotations

import importlib.util
import io
import json
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import require
from PIL import Image

import ganzoo
from ganzoo import data as data_module
from ganzoo.cli import cli
from ganzoo.data import load_dataset, native_channels, open_dataset
from ganzoo.errors import DataError, GanzooUsageError
from ganzoo.streaming import StreamBatches, StreamingDataset, _BatchReader, epoch_order, prepare_zip
from ganzoo.testing import assert_same_state, tiny_train
from ganzoo.trainer.loop import _Batches

CPU = torch.device("cpu")
TINY_DCGAN = {"img_size": 28, "g_width": 4, "d_width": 4, "z_dim": 8}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def make_folder(root: Path, per_class: int = 12, classes: tuple[str, ...] = ("cat", "dog", "eel"),
                gray: bool = False) -> Path:
    """Noise images of varied sizes and aspect ratios, one sub-folder per class."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            height, width = 20 + 3 * i, 24 + 2 * c + i % 5
            shape = (height, width) if gray else (height, width, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / name / f"{i:02d}.png")
    return root


def read_zip(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    with zipfile.ZipFile(path) as archive:
        images = {n: np.asarray(Image.open(io.BytesIO(archive.read(n)))) for n in archive.namelist()
                  if n.endswith(".png")}
        meta = json.loads(archive.read("dataset.json"))
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    return images, meta


# ------------------------------------------------------------------------------------------- ganzoo data prepare


def test_prepare_writes_a_stylegan_zip_with_labels_crops_and_a_summary(tmp_path):
    folder = make_folder(tmp_path / "src", per_class=4, classes=("cat", "dog"))
    (folder / "dog" / "broken.png").write_bytes(b"not a png")
    (folder / "dog" / "notes.txt").write_text("not an image: not even looked at")
    out = tmp_path / "out" / "data.zip"
    result = invoke("data", "prepare", folder, out, "--size", 16, "--labels", "from-folders")
    assert result.exit_code == 0, result.output
    assert "wrote 8 images (16x16, 3 channels, 2 classes)" in result.stdout
    assert "skipped 1 unreadable file(s):" in result.stdout and "broken.png" in result.stdout
    images, meta = read_zip(out)
    names = sorted(images)
    assert names == [f"00000/img{i:08d}.png" for i in range(8)]
    assert meta["labels"] == [[n, 0 if i < 4 else 1] for i, n in enumerate(names)]
    assert meta["class_names"] == ["cat", "dog"] and meta["ganzoo"]["skipped"] == 1
    # crop: exactly what training does to the same file (shorter side to 16, centre crop)
    expected = load_dataset(str(folder), img_size=16, on_bad_image="skip")
    for i, name in enumerate(names):
        assert images[name].shape == (16, 16, 3)
        assert np.array_equal(images[name], expected.images[i].permute(1, 2, 0).numpy())
    assert not list(out.parent.glob(".*.tmp"))  # written to a temporary file, then renamed


def test_prepare_pads_keeps_gray_and_refuses_what_it_cannot_do(tmp_path):
    src = tmp_path / "flat"
    src.mkdir()
    Image.fromarray(np.full((10, 20), 200, dtype=np.uint8)).save(src / "wide.png")  # gray, 2:1
    summary = prepare_zip(str(src), tmp_path / "pad.zip", size=8, fit="pad")
    assert (summary.images, summary.channels, summary.class_names, summary.skipped) == (1, 1, None, [])
    images, meta = read_zip(tmp_path / "pad.zip")
    image = images["00000/img00000000.png"]
    assert meta["labels"] is None and image.shape == (8, 8)
    assert (image[:2] == 0).all() and (image[6:] == 0).all() and (image[2:6] == 200).all()  # letterboxed
    line = invoke("data", "prepare", src, tmp_path / "x.zip", "--size", 8, "--labels", "from-folders")
    assert line.exit_code == 2 and "has no class sub-folders" in line.stderr and "Traceback" not in line.output
    assert invoke("data", "prepare", src, tmp_path / "x.tar", "--size", 8).exit_code == 2
    missing = invoke("data", "prepare", tmp_path / "nowhere", tmp_path / "x.zip", "--size", 8)
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    assert not (tmp_path / "x.zip").exists()


def test_prepare_reads_zip_and_tar_archives(tmp_path):
    import tarfile

    folder = make_folder(tmp_path / "src", per_class=2, classes=("a", "b"))
    with tarfile.open(tmp_path / "src.tar.gz", "w:gz") as tar:
        for path in sorted(folder.rglob("*.png")):
            tar.add(path, arcname=str(path.relative_to(folder)))
    summary = prepare_zip(str(tmp_path / "src.tar.gz"), tmp_path / "from-tar.zip", size=12, labels="from-folders")
    assert summary.images == 4 and summary.class_names == ["a", "b"]
    again = prepare_zip(str(tmp_path / "from-tar.zip"), tmp_path / "again.zip", size=12)  # a zip is a source too
    assert again.images == 4
    first, _ = read_zip(tmp_path / "from-tar.zip")
    second, _ = read_zip(tmp_path / "again.zip")
    assert all(np.array_equal(first[n], second[n]) for n in first)  # same size: nothing changes


# ---------------------------------------------------------------------------------------- streamed = in memory


def test_streamed_batches_equal_in_memory_batches_across_epochs_restarts_and_rows(tmp_path):
    folder = make_folder(tmp_path / "src")
    memory = load_dataset(str(folder), img_size=16)
    streamed = open_dataset(f"stream:{folder}", img_size=16)
    assert isinstance(streamed, StreamingDataset) and len(streamed) == len(memory) == 36
    assert streamed.num_classes == 3 and streamed.class_names == ["cat", "dog", "eel"] and streamed.channels == 3
    assert torch.equal(streamed.labels, memory.labels)
    in_memory = _Batches(memory, 8, 5, CPU, torch.contiguous_format)
    workers = StreamBatches(streamed, 8, 5, CPU, torch.contiguous_format, workers=2)
    # 4 batches an epoch: 0..9 crosses two epoch boundaries; then a jump back (a resume) and forward
    for index in [*range(10), 2, 3, 17]:
        x, labels = in_memory.get(index)
        y, streamed_labels = workers.get(index)
        assert x.dtype == y.dtype == torch.float32 and torch.equal(x, y), index
        assert torch.equal(labels, streamed_labels), index
    workers.close()
    # a distributed process keeps its rows of the global batch, decoded in its own workers
    half = StreamBatches(streamed, 8, 5, CPU, torch.contiguous_format, rows=slice(4, 8), workers=0)
    for index in (0, 5):
        assert torch.equal(half.get(index)[0], in_memory.get(index)[0][4:8])
    # one permutation function for both paths
    assert torch.equal(epoch_order(36, 5, 1), torch.randperm(36, generator=torch.Generator().manual_seed(5_000_016)))


def test_training_on_a_streamed_folder_equals_training_in_memory(tmp_path):
    folder = make_folder(tmp_path / "src", gray=True)
    assert native_channels(f"stream:{folder}") == 1
    runs = {}
    for name, spec, workers in (("memory", str(folder), {}), ("stream", f"stream:{folder}", {"data_workers": 1})):
        runs[name] = tiny_train("dcgan", tmp_path / name, steps=6, data=spec, log_every=2, config=TINY_DCGAN, **workers)
    assert_same_state(runs["memory"].generator, runs["stream"].generator)
    assert_same_state(runs["memory"].discriminator, runs["stream"].discriminator)
    plan = json.loads((tmp_path / "stream" / "config.json").read_text())
    assert plan["data"] == {"name": f"stream:{folder}", "images": 36, "classes": 3, "skipped": 0, "held_out": 0}


# ---------------------------------------------------------------------------------------------------- resume


def test_resume_on_a_zip_is_bit_identical(tmp_path):
    folder = make_folder(tmp_path / "src")
    prepare_zip(str(folder), tmp_path / "data.zip", size=28, labels="from-folders")
    spec = str(tmp_path / "data.zip")
    kwargs = {"data": spec, "data_workers": 1, "log_every": 2,
              "config": {"g_width": 8, "d_width": 8, "num_classes": 0}}
    whole = tiny_train("cgan", tmp_path / "whole", steps=10, **kwargs)
    tiny_train("cgan", tmp_path / "split", steps=5, **kwargs)  # 36 images / batch 8: epochs end at 4 and 8
    resumed = ganzoo.train(out=tmp_path / "split", steps=10, resume=True, data_workers=2)  # workers may change
    assert whole.num_classes == 3
    for name in ("generator", "discriminator", "ema"):
        if getattr(whole, name) is not None:
            assert_same_state(getattr(whole, name), getattr(resumed, name))

    def logged(run: str) -> dict[int, dict]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        records = [{k: v for k, v in json.loads(line).items() if k not in ("time_s", "img_per_s")} for line in lines]
        return {r["step"]: r for r in records}

    whole_log, split_log = logged("whole"), logged("split")
    assert sorted(split_log) == [2, 4, 5, 6, 8, 10]  # the split run also logged its last step, 5
    for step in (2, 4, 8, 10):  # step 6 of the split averages one step, the whole run's two
        assert whole_log[step] == split_log[step], step


@pytest.mark.slow
def test_sigkill_and_resume_on_a_streamed_zip_is_bit_identical(tmp_path):
    harness_path = Path(__file__).resolve().parents[1] / "benchmarks" / "kill_resume.py"
    spec = importlib.util.spec_from_file_location("kill_resume", harness_path)
    kill_resume = importlib.util.module_from_spec(spec)
    sys.modules["kill_resume"] = kill_resume
    spec.loader.exec_module(kill_resume)
    folder = make_folder(tmp_path / "src", per_class=6, gray=True)
    prepare_zip(str(folder), tmp_path / "data.zip", size=28)
    run_args = [*kill_resume.RUN_ARGS, "--data", str(tmp_path / "data.zip"), "--data-workers", "1"]
    for attempt, seed in enumerate((3, 11)):  # a try whose run ended before its kill proves nothing: once more
        lines = []
        report = kill_resume.kill_and_resume(tmp_path / f"work-{attempt}", kills=2, steps=10, seed=seed,
                                             modes=["step", "write"], log=lines.append, run_args=run_args)
        if report.finished_early == 0:
            break
    summary = "\n".join(lines)
    assert not report.unreadable, summary
    assert report.identical, summary + "\n" + "\n".join(report.differences)
    # on a fast step the second attempt may finish before its kill (seen with one math thread); one SIGKILL that
    # landed, resumed bit-identically, is the claim
    assert report.kills >= 1, summary
    plan = json.loads((tmp_path / f"work-{attempt}" / "run" / "config.json").read_text())
    assert plan["data"]["name"] == f"zip:{tmp_path / 'data.zip'}"


# ------------------------------------------------------------------------------------------ Hugging Face datasets


@pytest.fixture
def offline_datasets(monkeypatch):
    datasets = require("datasets")  # the hf extra, in dev: a failure under CI, a skip elsewhere
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    return datasets


def test_hf_imagefolder_and_parquet_read_offline_equal_the_folder_and_train(tmp_path, offline_datasets):
    folder = make_folder(tmp_path / "src", per_class=4)
    memory = load_dataset(str(folder), img_size=28)
    streamed = open_dataset(f"hf:{folder}", img_size=28)
    assert (len(streamed), streamed.num_classes, streamed.class_names) == (12, 3, ["cat", "dog", "eel"])
    assert torch.equal(torch.stack([streamed.read(i) for i in range(12)]), memory.images)
    assert torch.equal(streamed.labels, memory.labels)
    # a parquet file holding the image bytes (as Hub datasets do)
    table = offline_datasets.load_dataset("imagefolder", data_dir=str(folder))["train"]
    table = table.cast_column("image", offline_datasets.Image(decode=False))
    table = table.map(lambda row: {"image": {"bytes": Path(row["image"]["path"]).read_bytes(), "path": None}})
    table.to_parquet(str(tmp_path / "data.parquet"))
    parquet = load_dataset(f"hf:{tmp_path / 'data.parquet'}", img_size=28)  # read whole, into memory
    assert torch.equal(parquet.images, memory.images) and torch.equal(parquet.labels, memory.labels)
    assert native_channels(f"hf:{tmp_path / 'data.parquet'}") == 3
    model = tiny_train("cgan", tmp_path / "run", steps=2, data=f"hf:{folder}", data_workers=1,
                       config={"g_width": 8, "d_width": 8, "num_classes": 0})
    assert model.num_classes == 3
    missing = invoke("train", "--arch", "dcgan", "--data", "hf:nobody/no-such-dataset", "--steps", 1,
                     "--out", tmp_path / "x")
    assert missing.exit_code == 1 and "cannot load the Hugging Face dataset nobody/no-such-dataset" in missing.stderr
    assert "Traceback" not in missing.output and missing.stderr.count("\n") == 1


def test_hf_without_the_datasets_package_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets now fails
    with pytest.raises(DataError, match=r"needs the Hugging Face datasets package: pip install 'ganzoo\[hf\]'"):
        open_dataset(f"hf:{tmp_path}", img_size=16)


# ------------------------------------------------------------------------------------------ memory, errors, CLI


def test_the_streaming_source_holds_no_images(tmp_path):
    """A proxy for flat memory: what the trainer and each worker hold is a few dozen bytes an image (names and
    labels), against 3 KiB an image that the decoded 32 px RGB data would take."""
    folder = make_folder(tmp_path / "src")
    streamed = open_dataset(f"stream:{folder}", img_size=32)
    reader = _BatchReader(streamed, 8, 0, slice(None))
    reader.indices(0)
    tensors = [v for v in vars(streamed).values() if isinstance(v, torch.Tensor)]
    tensors += [v for v in vars(reader).values() if isinstance(v, torch.Tensor)]
    assert max(t.numel() for t in tensors) <= len(streamed)  # labels and one epoch's order: one number an image
    per_image = len(pickle.dumps(reader)) / len(streamed)
    assert per_image < 300, per_image
    assert 3 * 32 * 32 / per_image > 10


def class_folder(root: Path, per_class: int = 3) -> Path:
    """Solid 16 px images whose colour tells their class (a red, b green, c blue), a different shade each."""
    for c, name in enumerate(("a", "b", "c")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.zeros((16, 16, 3), dtype=np.uint8)
            pixels[..., c] = 100 + 40 * i
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    return root


def class_of(images: torch.Tensor) -> list[int]:
    """The class each image's colour tells (its brightest channel), for uint8 or [-1, 1] batches."""
    return images.float().mean((-2, -1)).argmax(-1).tolist()


def test_a_skipped_image_takes_no_label_with_it(tmp_path):
    """The bad files are the last of their classes, so an image that took a neighbour's place would come from the
    next class: under skip every image returned, alone or in batches, must carry its own class; and the streamed
    folder stays, bit for bit, the folder in memory."""
    folder = class_folder(tmp_path / "src")
    (folder / "a" / "02.png").write_bytes(b"broken")
    (folder / "b" / "02.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    failing = open_dataset(f"stream:{folder}", img_size=16)
    with pytest.raises(DataError) as caught:
        failing.read(2)
    assert "cannot decode image" in str(caught.value) and "02.png" in str(caught.value)
    assert "\n" not in str(caught.value) and "--on-bad-image skip" in str(caught.value)
    batches = StreamBatches(failing, 9, 0, CPU, torch.contiguous_format, workers=1)
    with pytest.raises(DataError, match="cannot decode image"):
        batches.get(0)  # the one batch of 9 holds every image
    skipping = open_dataset(f"stream:{folder}", img_size=16, on_bad_image="skip")
    assert (len(skipping), skipping.skipped, skipping.num_classes) == (7, 2, 3)
    assert skipping.labels.tolist() == [0, 0, 1, 1, 2, 2, 2]
    images = torch.stack([skipping.read(i) for i in range(len(skipping))])
    assert class_of(images) == skipping.labels.tolist()
    memory = load_dataset(str(folder), img_size=16, on_bad_image="skip")
    assert torch.equal(images, memory.images) and torch.equal(skipping.labels, memory.labels)
    assert memory.skipped == 2
    in_memory = _Batches(memory, 3, 1, CPU, torch.contiguous_format)
    streamed = StreamBatches(skipping, 3, 1, CPU, torch.contiguous_format, workers=1)
    for index in range(6):  # two batches an epoch: three epochs
        x, labels = streamed.get(index)
        assert class_of(x) == labels.tolist(), index
        y, memory_labels = in_memory.get(index)
        assert torch.equal(x, y) and torch.equal(labels, memory_labels), index
    streamed.close()


def test_streamed_and_in_memory_runs_record_what_they_skipped(tmp_path):
    """config.json's data.skipped counts the files left out, streamed (the count made where the images are checked,
    before the DataLoader's worker processes start) as in memory, and from a zip."""
    folder = class_folder(tmp_path / "src", per_class=4)
    (folder / "a" / "03.png").write_bytes(b"not an image")
    (folder / "c" / "01.png").write_bytes((folder / "c" / "00.png").read_bytes()[:60])  # truncated
    with zipfile.ZipFile(tmp_path / "data.zip", "w") as archive:
        for i, path in enumerate(sorted(folder.rglob("*.png"))):
            archive.write(path, f"00000/img{i:08d}.png")
    common = ["--arch", "dcgan", "--steps", 2, "--on-bad-image", "skip", "--img-size", 28, "-b", 4, "--set",
              "g_width=4", "--set", "d_width=4", "--set", "z_dim=8", "--device", "cpu"]
    records = {}
    workers = ["--data-workers", 1]  # streamed only: data held in memory has nothing to decode, and refuses them
    for name, data in (("memory", [folder]), ("stream", [folder, "--stream", *workers]),
                       ("zip", [tmp_path / "data.zip", *workers])):
        result = invoke("train", *common, "--data", *data, "--out", tmp_path / name)
        assert result.exit_code == 0, (name, result.output)
        records[name] = json.loads((tmp_path / name / "config.json").read_text())["data"]
    for name, record in records.items():
        assert (record["skipped"], record["images"]) == (2, 10), (name, record)
    assert records["stream"]["classes"] == records["memory"]["classes"] == 3


def test_cli_stream_flag_and_data_errors(tmp_path):
    folder = make_folder(tmp_path / "src", per_class=4, classes=("a", "b"))
    result = invoke("train", "--arch", "dcgan", "--data", folder, "--stream", "--dry-run")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["options"]["data"] == f"stream:{folder}" and plan["config"]["channels"] == 3
    named = invoke("train", "--arch", "dcgan", "--stream", "--steps", 1)
    assert named.exit_code == 2 and "--stream reads an image folder" in named.stderr
    no_zip = invoke("train", "--arch", "dcgan", "--data", tmp_path / "none.zip", "--steps", 1)
    assert no_zip.exit_code == 2 and "data zip" in no_zip.stderr and "does not exist" in no_zip.stderr
    (tmp_path / "bad.zip").write_bytes(b"PK not really")
    bad = invoke("train", "--arch", "dcgan", "--data", tmp_path / "bad.zip", "--steps", 1)
    assert bad.exit_code == 1 and "cannot read the zip" in bad.stderr and bad.stderr.count("\n") == 1
    with pytest.raises(GanzooUsageError, match="hf:someone/data"):
        data_module.native_channels("someone/data")


@pytest.mark.slow
def test_two_processes_on_a_streamed_folder_train_as_on_the_folder_in_memory(tmp_path):
    """`ganzoo train --nproc 2`: each process decodes only its rows of every global batch, in its own workers, and
    the weights equal a 2-process run on the same folder held in memory."""
    import os
    import subprocess

    folder = make_folder(tmp_path / "src", per_class=6)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT", "GROUP_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    common = ["--nproc", "2", "--arch", "dcgan", "--batch-size", "8", "--device", "cpu", "--set", "g_width=4",
              "--set", "d_width=4", "--set", "z_dim=8", "--img-size", "28", "--steps", "3", "--log-every", "1"]
    for name, extra in (("memory", ["--data", str(folder)]), ("stream", ["--data", str(folder), "--stream",
                                                                            "--data-workers", "1"])):
        done = subprocess.run([sys.executable, "-m", "ganzoo", "train", *common, *extra, "--out", str(tmp_path / name)],
                              cwd=tmp_path, env=env, text=True, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    a, b = ganzoo.load(str(tmp_path / "memory")), ganzoo.load(str(tmp_path / "stream"))
    assert_same_state(a.generator, b.generator)
    assert_same_state(a.discriminator, b.discriminator)


def test_bad_folders_streamed_fail_in_one_line_with_the_in_memory_exit_codes(tmp_path):
    """tests/test_bad_input.py's bad folders, trained with --stream: the same exit codes, one line each; a corrupt
    image is met when its batch is drawn and named."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from test_bad_input import DATA_CASES, TINY
    finally:
        sys.path.pop(0)
    streamed_fragment = {"empty-folder": "contains no images", "all-corrupt": "no readable images among its first"}
    for case, (setup, code, fragment) in DATA_CASES.items():
        data = tmp_path / case / "data"
        setup(data)
        result = invoke("train", "--arch", "dcgan", "--data", data, "--stream", "--data-workers", 1, "--steps", 2,
                        "--out", tmp_path / case / "run", *TINY)
        assert result.exit_code == code, (case, result.output)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1 and "Traceback" not in result.output, (case, result.stderr)
        assert streamed_fragment.get(case, fragment) in errors[0], (case, errors[0])


def test_the_lean_folder_scan_keeps_the_in_memory_order(tmp_path):
    """A streamed folder keeps relative names as strings, sorted without a tuple per file: the order must still be
    that of sorting by path parts, where 'a/x' comes before 'a-b/x' although '-' sorts before '/'."""
    from ganzoo._imagefiles import _scan_folder, _scan_folder_names

    names = ["a/x.png", "a-b/x.png", "a.png", "a/b/x.png", "a b/y.PNG", "ab/z.jpg", "A/x.png", "a/.hidden.png"]
    for name in names:
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_bytes(b"")
    (tmp_path / "src" / ".git").mkdir()
    (tmp_path / "src" / ".git" / "x.png").write_bytes(b"")
    got = _scan_folder_names(tmp_path / "src")
    expected = sorted((n for n in names if ".hidden" not in n), key=lambda n: Path(n).parts)
    assert got == expected and got[:3] == ["A/x.png", "a/b/x.png", "a/x.png"]
    assert _scan_folder(tmp_path / "src") == [tmp_path / "src" / n for n in expected]


def test_data_workers_with_data_held_in_memory_is_refused_before_a_run_folder(tmp_path):
    """Workers decode streamed data; in-memory data has nothing for them to do, so asking for them is an error."""
    folder = make_folder(tmp_path / "src", per_class=3)
    for data in ("mnist-5k", str(folder)):
        with pytest.raises(GanzooUsageError, match="data_workers sets the processes that decode streamed data"):
            tiny_train("dcgan", tmp_path / "run", steps=1, data=data, data_workers=2, config=TINY_DCGAN)
        assert not (tmp_path / "run").exists()
    result = invoke("train", "--arch", "dcgan", "--data-workers", 1, "--steps", 1, "--out", tmp_path / "cli",
                    "--set", "g_width=4", "--set", "d_width=4", "--device", "cpu")
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert result.exit_code == 2 and len(errors) == 1 and "--data-workers" in errors[0], result.output
    assert not (tmp_path / "cli").exists()
    streamed = tiny_train("dcgan", tmp_path / "stream", steps=1, data=f"stream:{folder}", data_workers=0,
                          config=TINY_DCGAN)  # where there is something to decode, any number is fine
    assert streamed.generator is not None


def test_data_workers_is_the_number_of_decoding_processes_the_trainer_starts(tmp_path, monkeypatch):
    """The option reaches the loader: the streamed batches of a run get exactly the workers asked for (the default
    when none is given), which the DataLoader then starts."""
    from ganzoo.streaming import default_workers
    from ganzoo.trainer import loop

    seen = []

    class Counting(StreamBatches):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.workers)

    monkeypatch.setattr(loop, "StreamBatches", Counting)
    folder = make_folder(tmp_path / "src", per_class=3)
    for workers in (2, 0, None):
        extra = {} if workers is None else {"data_workers": workers}
        tiny_train("dcgan", tmp_path / f"run-{workers}", steps=1, data=f"stream:{folder}", config=TINY_DCGAN, **extra)
    assert seen == [2, 0, default_workers()]

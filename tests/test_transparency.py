"""Transparency is composited over a background, never dropped: in memory, streamed, zipped, through Hugging Face
datasets and `ganzoo data prepare` alike, with the background the user chose, recorded by the run.

Expected values are computed here independently of ganzoo's code: the nearest integer to a * colour + (1 - a) *
background (a = alpha / 255) in floating point, and PIL's own conversion to gray."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganzoo._imagefiles import _decode_bytes, _read_mode, background_hex, parse_background
from ganzoo.cli import cli
from ganzoo.data import ImageDataset, load_dataset, open_dataset
from ganzoo.errors import ConfigError
from ganzoo.streaming import prepare_zip
from ganzoo.testing import tiny_train

TINY = ["--set", "g_width=4", "--set", "d_width=4", "--set", "z_dim=8", "--img-size", "28", "-b", "4",
        "--device", "cpu", "--log-every", "1", "--sample-every", "100", "--checkpoint-every", "1"]


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def over(colour: np.ndarray, alpha: np.ndarray, background: tuple[int, ...]) -> np.ndarray:
    """(H, W, C) colours with (H, W) alpha over an opaque background: the nearest integer of the exact blend."""
    a = alpha.astype(np.float64)[..., None]
    bg = np.asarray(background, dtype=np.float64)
    return np.floor((colour.astype(np.float64) * a + bg * (255 - a)) / 255 + 0.5).astype(np.uint8)


def as_gray(rgb: np.ndarray) -> np.ndarray:
    """PIL's ITU-R 601 luma of an (H, W, 3) uint8 image: an independent reference for a 1-channel target."""
    return np.asarray(Image.fromarray(rgb, "RGB").convert("L"))


def encode(image: Image.Image, fmt: str = "png", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_by_hand(samples: np.ndarray, color_type: int, trns: bytes | None = None) -> bytes:
    """A PNG written byte by byte (PIL cannot write 16-bit colour with alpha): (H, W, C) uint8 or uint16 samples,
    filter 0 on every row, an optional tRNS chunk."""
    height, width = samples.shape[:2]
    depth = 16 if samples.dtype == np.uint16 else 8
    rows = b"".join(b"\0" + samples[y].astype(">u2" if depth == 16 else np.uint8).tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + (chunk(b"tRNS", trns) if trns else b"")
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def decode(data: bytes, channels: int = 3, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """ganzoo's decoding of one encoded image, as (H, W, C) numpy."""
    return _decode_bytes(data, _read_mode(channels), channels, "test", background).permute(1, 2, 0).numpy()


def rgba_sprite(hidden: tuple[int, int, int], size: int = 16, seed: int = 0) -> np.ndarray:
    """An RGBA sprite: an opaque noisy disc, a half-transparent ring around it, and transparent corners whose stored
    colour is `hidden` (what a transparent pixel 'happens to store')."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2)
    pixels = np.zeros((size, size, 4), dtype=np.uint8)
    pixels[..., :3] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    pixels[..., 3] = np.where(radius < size / 4, 255, np.where(radius < size / 3, 128, 0))
    pixels[pixels[..., 3] == 0, :3] = hidden
    return pixels


# ------------------------------------------------------------------------------------------------- the maths


def test_transparent_pixels_do_not_keep_the_colour_they_happen_to_store(tmp_path):
    """Two RGBA files that differ only in the colours under alpha 0 train as the same tensors, at the file's size
    and resized (the compositing comes first, so the resize filter never mixes a hidden colour in)."""
    for name, hidden in (("green", (0, 90, 0)), ("magenta", (255, 0, 255))):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(rgba_sprite(hidden, size=40, seed=i), "RGBA").save(tmp_path / name / f"{i}.png")
    for size in (40, 16):  # 40: no resize, 16: the antialiasing filter spans several source pixels
        for channels in (3, 1):
            green = load_dataset(str(tmp_path / "green"), img_size=size, channels=channels)
            magenta = load_dataset(str(tmp_path / "magenta"), img_size=size, channels=channels)
            assert torch.equal(green.images, magenta.images), (size, channels)
    corners = load_dataset(str(tmp_path / "magenta"), img_size=40, channels=3).images[:, :, 0, 0]
    assert (corners == 255).all()  # white, the default background


def test_partial_alpha_is_the_exact_blend_over_the_chosen_background():
    colour = np.array([[[200, 10, 90], [0, 255, 33], [17, 17, 17], [250, 128, 3]]], dtype=np.uint8)
    alpha = np.array([[128, 64, 191, 255]], dtype=np.uint8)  # 128 is 50.2 %
    data = encode(Image.fromarray(np.dstack([colour, alpha]), "RGBA"))
    for background in ((255, 255, 255), (0, 0, 0), (32, 64, 255)):
        expected = over(colour, alpha, background)
        assert np.array_equal(decode(data, 3, background), expected), background
        assert np.array_equal(decode(data, 1, background)[..., 0], as_gray(expected)), background  # gray: after
    # 50 % of 200 over white is 227.39...: 227; over black 100.39...: 100
    assert decode(data, 3, (255, 255, 255))[0, 0, 0] == 227 and decode(data, 3, (0, 0, 0))[0, 0, 0] == 100


def test_a_palette_with_a_transparent_index():
    """Twemoji's case: a palette PNG whose index 0 (dark green) is transparent; GIF's transparent index too; and a
    palette whose tRNS gives an entry partial alpha."""
    palette = Image.new("P", (4, 3))
    palette.putpalette([0, 90, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    palette.putpixel((1, 1), 1)
    palette.putpixel((2, 1), 2)
    for fmt in ("png", "gif"):
        got = decode(encode(palette, fmt, transparency=0), 3, (10, 20, 30))
        assert got[0, 0].tolist() == [10, 20, 30] and got[1, 1].tolist() == [255, 0, 0], fmt
        assert got[1, 2].tolist() == [0, 0, 255], fmt
    partial = decode(encode(palette, "png", transparency=bytes([0, 255, 64])), 3, (255, 255, 255))
    assert partial[1, 2].tolist() == over(np.array([[[0, 0, 255]]]), np.array([[64]]), (255, 255, 255))[0, 0].tolist()
    assert partial[0, 0].tolist() == [255, 255, 255]


def test_gray_with_alpha_and_gray_or_rgb_with_a_transparent_colour():
    gray, alpha = np.array([[77, 200, 5]], dtype=np.uint8), np.array([[128, 255, 0]], dtype=np.uint8)
    la = encode(Image.fromarray(np.dstack([gray, alpha]), "LA"))
    assert np.array_equal(decode(la, 1, (100, 100, 100))[..., 0], over(gray[..., None], alpha, (100,))[..., 0])
    # over a coloured background a gray image becomes colour; a 1-channel target takes the luma of that
    coloured = over(np.repeat(gray[..., None], 3, axis=2), alpha, (255, 0, 0))
    assert np.array_equal(decode(la, 3, (255, 0, 0)), coloured)
    assert np.array_equal(decode(la, 1, (255, 0, 0))[..., 0], as_gray(coloured))
    # a gray PNG whose value 50 is transparent, and an RGB one whose (1, 2, 3) is
    keyed = Image.fromarray(np.array([[50, 60]], dtype=np.uint8))
    assert decode(encode(keyed, transparency=50), 1, (9, 9, 9))[..., 0].tolist() == [[9, 60]]
    rgb = Image.fromarray(np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint8))
    assert decode(encode(rgb, transparency=(1, 2, 3)), 3, (9, 8, 7)).tolist() == [[[9, 8, 7], [4, 5, 6]]]


def test_sixteen_bit_with_alpha():
    """16-bit RGBA and gray + alpha PNGs (the high byte, as 16-bit images are read) and a 16-bit gray PNG with a
    transparent value, which PIL alone would clip to white."""
    rgba = np.array([[[51400, 2570, 65535, 32896], [1000, 2000, 3000, 0]]], dtype=np.uint16)
    got = decode(png_by_hand(rgba, 6), 3, (0, 0, 0))
    high = (rgba >> 8).astype(np.uint8)
    assert np.array_equal(got, over(high[..., :3], high[..., 3], (0, 0, 0)))
    assert got[0, 1].tolist() == [0, 0, 0]  # alpha 0: the stored colour is gone
    gray_alpha = np.array([[[40000, 65535], [40000, 0]]], dtype=np.uint16)
    got = decode(png_by_hand(gray_alpha, 4), 1, (255, 255, 255))
    assert got[..., 0].tolist() == [[156, 255]]
    keyed = np.array([[[5000], [30000]]], dtype=np.uint16)
    got = decode(png_by_hand(keyed, 0, trns=struct.pack(">H", 5000)), 1, (0, 0, 0))
    assert got[..., 0].tolist() == [[0, 30000 >> 8]]


def test_backgrounds_are_names_or_hex_and_anything_else_is_one_line():
    assert parse_background("white") == (255, 255, 255) and parse_background(" Orange ") == (255, 165, 0)
    assert parse_background("#FF8000") == (255, 128, 0) and parse_background("#f80") == (255, 136, 0)
    assert background_hex("black") == "#000000"
    for bad in ("nope", "#12345", "#gggggg", "rgb(1,2,3)", "", 7, None):
        with pytest.raises(ConfigError, match="is not a colour") as caught:
            parse_background(bad)
        assert "\n" not in str(caught.value)


# ------------------------------------------------------------------------------------------------ every path


@pytest.fixture
def offline_datasets(monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    return datasets


def sprites(folder: Path, size: int = 16) -> list[np.ndarray]:
    """Three RGBA sprites in `folder` (a class sub-folder each, so the hf image folder has labels too), stored at
    `size` (no resize: exact values), in sorted order; returns their pixels."""
    pixels = [rgba_sprite((0, 90, 0), size, seed=i) for i in range(3)]
    for i, p in enumerate(pixels):
        (folder / f"class{i}").mkdir(parents=True)
        Image.fromarray(p, "RGBA").save(folder / f"class{i}" / f"{i}.png")
    return pixels


def stylegan_zip(folder: Path, out: Path) -> Path:
    """A zip in StyleGAN's layout holding the RGBA files themselves (not prepared by ganzoo)."""
    with zipfile.ZipFile(out, "w") as archive:
        for i, path in enumerate(sorted(folder.rglob("*.png"))):
            archive.write(path, f"00000/img{i:08d}.png")
    return out


@pytest.mark.parametrize("background", ["#204080", "orange"])
def test_every_data_path_composites_over_the_chosen_background(tmp_path, offline_datasets, background):
    folder = tmp_path / "src"
    pixels = sprites(folder)
    rgb = parse_background(background)
    expected = torch.stack([torch.from_numpy(over(p[..., :3], p[..., 3], rgb)).permute(2, 0, 1) for p in pixels])
    table = offline_datasets.load_dataset("imagefolder", data_dir=str(folder))["train"]
    table = table.cast_column("image", offline_datasets.Image(decode=False))
    table = table.map(lambda row: {"image": {"bytes": Path(row["image"]["path"]).read_bytes(), "path": None}})
    table.to_parquet(str(tmp_path / "data.parquet"))
    zipped = stylegan_zip(folder, tmp_path / "raw.zip")
    for spec in (str(folder), f"stream:{folder}", str(zipped), f"hf:{folder}", f"hf:{tmp_path / 'data.parquet'}"):
        whole = load_dataset(spec, img_size=16, channels=3, background=background)
        assert torch.equal(whole.images, expected), spec
        opened = open_dataset(spec, img_size=16, channels=3, background=background)  # what training reads
        images = opened.images if isinstance(opened, ImageDataset) else torch.stack([opened.read(i) for i in
                                                                                    range(len(opened))])
        assert torch.equal(images, expected), spec
    # ganzoo data prepare: the PNGs it writes, and what it records
    prepared = tmp_path / "prepared.zip"
    result = invoke("data", "prepare", folder, prepared, "--size", 16, "--background", background)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(prepared) as archive:
        meta = json.loads(archive.read("dataset.json"))
        written = [np.asarray(Image.open(io.BytesIO(archive.read(f"00000/img{i:08d}.png")))) for i in range(3)]
    assert meta["ganzoo"]["background"] == background_hex(background)
    assert all(np.array_equal(w, e.permute(1, 2, 0).numpy()) for w, e in zip(written, expected, strict=True))
    assert prepare_zip(str(folder), tmp_path / "default.zip", size=16).out.exists()
    with zipfile.ZipFile(tmp_path / "default.zip") as archive:
        assert json.loads(archive.read("dataset.json"))["ganzoo"]["background"] == "#ffffff"


def test_a_bad_background_is_one_line_and_touches_nothing(tmp_path):
    folder = tmp_path / "src"
    sprites(folder)
    train = invoke("train", "--arch", "dcgan", "--data", folder, "--background", "chartreuse-ish", "--steps", 1,
                   "--out", tmp_path / "run", *TINY)
    assert train.exit_code == 2 and train.stderr.count("\n") == 1 and "is not a colour" in train.stderr
    prepare = invoke("data", "prepare", folder, tmp_path / "out.zip", "--size", 16, "--background", "#12")
    assert prepare.exit_code == 2 and prepare.stderr.count("\n") == 1 and "is not a colour" in prepare.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


# ------------------------------------------------------------------------------------------- runs record it


@pytest.mark.parametrize("stream", [False, True])
def test_a_run_trains_on_its_background_records_it_and_resumes_only_with_it(tmp_path, stream):
    from ganzoo.trainer.run import _setup

    folder = tmp_path / "src"
    for i in range(4):
        (folder / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgba_sprite((0, 90, 0), size=28, seed=i), "RGBA").save(folder / "a" / f"{i}.png")
    run = tmp_path / "run"
    data = [folder, "--stream"] if stream else [folder]
    first = invoke("train", "--arch", "dcgan", "--data", *data, "--background", "Navy", "--steps", 1, "--out", run,
                   *TINY)
    assert first.exit_code == 0, first.output
    plan = json.loads((run / "config.json").read_text())
    assert plan["options"]["background"] == "#000080"
    # the data the run's plan opens is composited over navy: the sprite's transparent corners
    dataset = _setup(plan, None)[4]
    corner = (dataset.images[0] if not stream else dataset.read(0))[:, 0, 0]
    assert corner.tolist() == [0, 0, 128]
    other = invoke("train", "--resume", "--out", run, "--background", "white", "--steps", 2)
    assert other.exit_code == 2 and "cannot change background when resuming" in other.stderr
    assert other.stderr.count("\n") == 1
    same = invoke("train", "--resume", "--out", run, "--background", "#000080", "--steps", 2)
    assert same.exit_code == 0, same.output
    plain = invoke("train", "--resume", "--out", run, "--steps", 3)
    assert plain.exit_code == 0, plain.output
    assert json.loads((run / "config.json").read_text())["options"]["background"] == "#000080"


def test_the_python_api_takes_the_background(tmp_path):
    folder = tmp_path / "src"
    for i in range(8):
        (folder / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgba_sprite((0, 90, 0), size=28, seed=i), "RGBA").save(folder / "a" / f"{i}.png")
    tiny_train("dcgan", tmp_path / "run", steps=1, data=str(folder), background="black",
               config={"channels": 3})
    plan = json.loads((tmp_path / "run" / "config.json").read_text())
    assert plan["options"]["background"] == "#000000"
    assert load_dataset(str(folder), img_size=28, background="black").images[:, :, 0, 0].eq(0).all()

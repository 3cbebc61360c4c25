"""The yardstick ranks as a person would: the digits extractor's FD and KID on image sets of known order (the ladder
of `ganzoo.metrics.ladder`) and on a DCGAN trained for longer and longer (fixtures: its grids show the order)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo.data import load_dataset
from ganzoo.metrics import Evaluator
from ganzoo.metrics.ladder import ORDERS, WORST, build_ladder, score_ladder, violations

FIXTURES = Path(__file__).parent / "fixtures" / "dcgan-ladder"


@pytest.fixture(scope="module")
def ladder():
    return build_ladder()


def _table(scores: dict[str, dict[str, float]]) -> str:
    return "\n".join(f"  {name:<14} FD {v['fid']:9.3f}  KID {v['kid']:8.4f}" for name, v in scores.items())


def test_the_ladder_is_what_it_says(ladder):
    test = load_dataset("mnist-5k", img_size=28, channels=1, split="test")
    train = load_dataset("mnist-5k", img_size=28, channels=1, split="train")
    assert torch.equal(ladder.reference, test.images)
    rungs = ladder.rungs
    assert set(rungs) == {name for chain in ORDERS for name in chain} | set(WORST)
    assert all(images.shape == (400, 1, 28, 28) and images.dtype == torch.uint8 for images in rungs.values())
    real = rungs["real"].float()
    # the real rung is train-part digits, 40 of every class, none of them in the reference
    assert train.labels is not None
    first_40 = torch.cat([train.images[train.labels == c][:40] for c in range(10)])
    assert torch.equal(rungs["real"], first_40)
    assert not (rungs["real"].flatten(1)[:, None] == ladder.reference.flatten(1)[None]).all(-1).any()
    # blur keeps the ink but spreads it: fewer saturated pixels, more the stronger the blur
    saturated = [float((rungs[name] > 250).float().mean()) for name in ("real", "blur 0.5", "blur 1", "blur 2")]
    assert saturated == sorted(saturated, reverse=True) and saturated[-1] < saturated[0] / 5
    for name, fraction in (("noise 10%", 0.1), ("noise 30%", 0.3)):
        changed = float((rungs[name].float() != real).float().mean())
        assert fraction * 0.85 < changed < fraction  # a replaced pixel keeps its value 1 time in 256 (or by chance)
    assert torch.equal(rungs["only 3"], train.images[train.labels == 3][:400])
    assert int(rungs["blank"].max()) == 0
    assert 120 < float(rungs["uniform noise"].float().mean()) < 135
    assert torch.equal(build_ladder().rungs["noise 30%"], rungs["noise 30%"])  # fixed sets: the same every time


def test_the_digits_extractor_ranks_the_ladder_as_a_person_would(ladder):
    scores = score_ladder("digits", ladder, kid_subsets=20)
    print("\ndigits extractor, 400 images per rung against mnist-5k's test part:\n" + _table(scores))
    assert violations(scores, "fid") == []
    assert violations(scores, "kid") == []
    fid = {name: v["fid"] for name, v in scores.items()}
    # the cases the old feature space got wrong: blank images ranked above one class of real digits, strongly
    # blurred digits (all classified "8") nearly as bad as blank
    assert fid["blank"] > 1.5 * max(fid[f"only {c}"] for c in range(10))
    assert fid["blur 2"] < fid["blank"] / 10
    # the real rung is the floor, train-part digits against the test part: near zero on this scale
    assert fid["real"] < 2.0 and abs(scores["real"]["kid"]) < 0.01


def test_violations_name_what_is_out_of_order():
    scores = {name: {"fid": 1.0 + i, "kid": 0.1 * i} for i, name in enumerate(
        ["real", "blur 0.5", "blur 1", "blur 2", "noise 10%", "noise 30%", *(f"only {c}" for c in range(10)),
         "blank", "uniform noise"])}
    assert violations(scores, "fid") == [] and violations(scores, "kid") == []
    scores["blur 1"]["fid"] = 1.2  # better than blur 0.5
    scores["blank"]["kid"] = 0.5  # better than noise 30% (and more)
    assert violations(scores, "fid") == ["fid: blur 1 (1.2) is not worse than blur 0.5 (2)"]
    assert violations(scores, "kid") == ["kid: blank (0.5) is not worse than only 9 (1.5)"]


def test_a_dcgan_trained_longer_scores_better():
    """One small DCGAN untrained, after 150 and after 600 steps (tests/fixtures/dcgan-ladder, written by
    scripts/make_ladder_fixtures.py): its samples.png grids show flat grey, then faint grey blobs, then white
    digit-like strokes on black. FD and KID against mnist-5k's test part rank them so."""
    reference = load_dataset("mnist-5k", img_size=28, channels=1)
    evaluator = Evaluator(reference, "fid,kid", num_samples=400, split="test")
    results = {name: evaluator.evaluate(ganzoo.load(FIXTURES / name, device="cpu")).values
               for name in ("untrained", "150", "600")}
    print("\n" + "\n".join(f"  {name:<10} FD {v['fid']:8.3f}  KID {v['kid']:.4f}" for name, v in results.items()))
    for metric in ("fid", "kid"):
        assert results["untrained"][metric] > results["150"][metric] > results["600"][metric]
    assert results["600"]["fid"] < results["untrained"]["fid"] / 3  # strokes against grey: far apart

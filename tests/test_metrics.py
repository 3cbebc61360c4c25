"""Metrics: the formulas against independent computations, the digits extractor, caching, provenance, the CLI and
evaluation during training."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from click.testing import CliRunner

import ganzoo
from ganzoo.cli import cli
from ganzoo.data import ImageDataset, load_dataset
from ganzoo.errors import GanzooError, GanzooUsageError, WeightsError
from ganzoo.metrics import (
    Evaluator,
    class_histogram,
    extract_features,
    frechet_distance,
    get_extractor,
    to_uint8,
)
from ganzoo.metrics import digits as digits_module
from ganzoo.testing import tiny_config, tiny_train


def _subset(n: int = 400, img_size: int = 28) -> ImageDataset:
    data = load_dataset("mnist-5k", img_size=img_size, channels=1)
    idx = torch.arange(n) * (len(data) // n)  # every class represented
    return ImageDataset(data.images[idx], data.labels[idx], data.num_classes, "mnist-5k")


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T


def _frechet_by_hand(a: torch.Tensor, b: torch.Tensor) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), in float64 with symmetric square roots."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)
    root_a = _sqrtm_psd(s_a)
    cross = _sqrtm_psd(root_a @ s_b @ root_a)
    return float((mu_a - mu_b).pow(2).sum() + torch.trace(s_a) + torch.trace(s_b) - 2 * torch.trace(cross))


def test_frechet_distance_matches_an_independent_computation():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(500, 8, generator=gen)
    b = torch.randn(400, 8, generator=gen) * 1.5 + 0.3
    assert frechet_distance(a, b) == pytest.approx(_frechet_by_hand(a, b), rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kid_matches_the_unbiased_mmd_with_the_cubic_kernel():
    from ganzoo.metrics.evaluation import _kid

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(60, 5, generator=gen)
    y = torch.randn(60, 5, generator=gen) + 0.5
    d = x.shape[1]

    def k(a, b):
        return (a.double() @ b.double().T / d + 1) ** 3

    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    mmd = ((kxx.sum() - kxx.trace()) / (m * (m - 1)) + (kyy.sum() - kyy.trace()) / (m * (m - 1))
           - 2 * kxy.mean())
    # subsets as large as the sets are permutations of them, so every subset gives the full unbiased estimate
    got = _kid(x, y, seed=0)
    assert got["kid"] == pytest.approx(float(mmd), rel=1e-6)
    assert got["kid_std"] < 1e-5 * max(1.0, abs(float(mmd)))  # float32 round-off only


def test_inception_score_of_confident_uniform_and_collapsed_predictions():
    import numpy as np

    from ganzoo.metrics.evaluation import _inception_score

    logits = torch.full((1000, 10), -30.0)
    logits[torch.arange(1000), torch.arange(1000) % 10] = 30.0
    # confident predictions: each split of 100 scores exp(entropy of its class histogram), 10 when it is uniform
    shuffled = logits.argmax(1)[torch.from_numpy(np.random.RandomState(0).permutation(1000))]
    scores = []
    for chunk in shuffled.chunk(10):
        q = torch.bincount(chunk, minlength=10).double() / len(chunk)
        scores.append(math.exp(float(-(q[q > 0] * q[q > 0].log()).sum())))
    got = _inception_score(logits, seed=0)
    assert got["is"] == pytest.approx(sum(scores) / 10, rel=1e-6)
    assert 9.0 < got["is"] <= 10.0
    collapsed = torch.zeros(1000, 10)
    collapsed[:, 3] = 30.0
    assert _inception_score(collapsed, seed=0)["is"] == pytest.approx(1.0, rel=1e-3)


def test_precision_and_recall_of_a_set_against_itself_and_a_far_set():
    from ganzoo.metrics.evaluation import _precision_recall

    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(2))
    assert _precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}
    far = _precision_recall(x + 100.0, x)
    assert far["precision"] == 0.0 and far["recall"] == 0.0


def test_class_histogram_entropy_and_coverage():
    logits = torch.zeros(200, 10)
    logits[:182, 0] = 1.0  # 182 zeros, then classes 1..9 twice each, one of them three times
    logits[torch.arange(182, 191), torch.arange(1, 10)] = 1.0
    logits[torch.arange(191, 200), torch.arange(1, 10)] = 1.0
    logits[199] = 0.0
    logits[199, 0] = 1.0  # class 9 keeps one image, class 0 gets 183
    diag = class_histogram(logits, 10)
    assert diag["class_histogram"] == [183] + [2] * 8 + [1]
    # a fair share is 20 images; a class needs a tenth of it (2) to count as covered
    assert diag["classes_covered"] == 9
    p = torch.tensor([183] + [2] * 8 + [1], dtype=torch.float64) / 200
    assert diag["entropy"] == pytest.approx(float(-(p * p.log()).sum()), abs=1e-4)
    uniform = torch.eye(10).repeat(10, 1)
    assert class_histogram(uniform, 10)["entropy"] == pytest.approx(math.log(10), abs=1e-4)
    assert class_histogram(uniform, 10)["classes_covered"] == 10
    collapsed = class_histogram(torch.eye(10)[[8] * 50], 10)
    assert collapsed["classes_covered"] == 1 and f"{collapsed['entropy']:.3f}" == "0.000"  # not "-0.000"


def test_shipped_digits_classifier_matches_its_pin_and_its_accuracy():
    path = digits_module.weights_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digits_module.SHA256
    model = digits_module.load_shipped()
    _, _, x_test, y_test = digits_module.holdout_split()
    accuracy = digits_module.accuracy(model, x_test, y_test)
    assert accuracy == pytest.approx(digits_module.HELD_OUT_ACCURACY, abs=1e-3)
    assert accuracy >= 0.98


def test_a_replaced_digits_classifier_is_refused(tmp_path):
    fake = tmp_path / "digits.safetensors"
    fake.write_bytes(digits_module.weights_path().read_bytes()[:-1] + b" ")
    with pytest.raises(WeightsError, match="sha256"):
        digits_module.load_shipped(fake)


def test_digits_extractor_takes_gray_or_rgb_of_any_size():
    extractor = get_extractor("digits")
    data = _subset(20)
    gray = extractor(data.images)
    rgb = extractor(data.images.expand(-1, 3, -1, -1).contiguous())
    assert gray["features"].shape == (20, 128) and gray["logits"].shape == (20, 10)
    assert torch.allclose(gray["features"], rgb["features"], atol=1e-5)
    big = torch.nn.functional.interpolate(data.images.float(), size=32, mode="nearest").to(torch.uint8)
    assert extractor(big)["features"].shape == (20, 128)
    with pytest.raises(GanzooUsageError, match="uint8"):
        extractor(data.images.float())


def test_unknown_metric_and_extractor_names_are_one_line_errors():
    with pytest.raises(GanzooUsageError, match="fid"):
        Evaluator(_subset(10), metrics="fdi")
    with pytest.raises(GanzooError, match="inception"):
        Evaluator(_subset(10), extractor="inceptoin")


def test_inception_offline_and_not_cached_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(GanzooError, match="not cached"):
        get_extractor("inception")


def test_evaluator_values_provenance_diagnostics_and_cache(monkeypatch):
    data = _subset(300)
    gan = ganzoo.create("dcgan", seed=0, **tiny_config("dcgan", img_size=28))
    evaluator = Evaluator(data, metrics="fid,kid,is,pr", num_samples=200, seed=5)
    result = evaluator.evaluate(gan)
    assert set(result.values) == {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall"}
    assert all(math.isfinite(v) for v in result.values.values())
    prov = result.provenance
    assert prov["extractor"] == "digits" and prov["extractor_weights_sha256"] == digits_module.SHA256
    assert (prov["real_images"], prov["fake_images"], prov["seed"], prov["real_data"]) == (300, 200, 5, "mnist-5k")
    assert sum(result.diagnostics["class_histogram"]) == 200
    assert result.diagnostics["real_class_histogram"] is not None

    # the same seed gives the same numbers; a second evaluator reads the real features from the cache
    calls = []
    import ganzoo.metrics.evaluation as evaluate_module

    real_extract = evaluate_module.extract_features
    monkeypatch.setattr(evaluate_module, "extract_features",
                        lambda ex, images, bs=250: calls.append(len(images)) or real_extract(ex, images, bs))
    again = Evaluator(data, metrics="fid,kid,is,pr", num_samples=200, seed=5).evaluate(gan)
    assert calls == [200]  # only the generated images were run through the extractor
    assert again.values == result.values


def test_conditional_models_report_class_control():
    data = _subset(200)
    gan = ganzoo.create("cgan", seed=0, **tiny_config("cgan"))
    result = Evaluator(data, num_samples=100).evaluate(gan)
    assert 0.0 <= result.diagnostics["class_control"] <= 1.0


def test_torch_fidelity_on_the_same_images_gives_the_same_numbers():
    """ganzoo's digits extractor is registered with torch-fidelity; its own pipeline agrees with ganzoo's."""
    import torch_fidelity

    data = _subset(300)
    gan = ganzoo.create("dcgan", seed=0, **tiny_config("dcgan", img_size=28))
    evaluator = Evaluator(data, metrics="fid,kid,is", num_samples=300, seed=0, cache=False)
    ours = evaluator.evaluate(gan)
    fake, _ = evaluator.generate(gan)

    class Images(torch.utils.data.Dataset):
        def __init__(self, images):
            self.images = images

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            return self.images[i]

    theirs = torch_fidelity.calculate_metrics(
        input1=Images(fake), input2=Images(data.images), feature_extractor="ganzoo-digits", fid=True, kid=True,
        isc=True, kid_subset_size=300, cuda=False, cache=False, save_cpu_ram=True, verbose=False, rng_seed=0)
    assert ours.values["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-4)
    assert ours.values["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-4)
    assert ours.values["is"] == pytest.approx(theirs["inception_score_mean"], rel=1e-4)


def test_to_uint8_rounds_like_an_image_file():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5])
    assert to_uint8(x).tolist() == [0, 0, 128, 191, 255, 255]


def test_extract_features_batches_give_the_same_features():
    extractor = get_extractor("digits")
    images = _subset(50).images
    assert torch.allclose(extract_features(extractor, images, 7)["features"],
                          extract_features(extractor, images, 50)["features"], atol=1e-5)


# ------------------------------------------------------------------------------------------------------- the CLI


def test_eval_command_prints_records_and_updates_the_card(tmp_path):
    run = tmp_path / "run"
    tiny_train("cgan", run, steps=2)
    result = CliRunner().invoke(cli, ["eval", str(run), "--metrics", "fid,kid,is,pr", "-n", "100",
                                      "--json", str(tmp_path / "eval.json"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "fid" in result.output and "classes" in result.output and "requested class" in result.output
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["provenance"]["fake_images"] == 100
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert {r["name"] for r in line["eval"]} >= {"fid", "kid", "is", "precision", "recall"}
    assert line["step"] == 2 and line["kimg"] > 0 and line["diagnostics"]["classes_covered"] >= 1
    meta = json.loads((run / "model" / "config.json").read_text())
    assert {m["name"] for m in meta["metrics"]} >= {"fid", "recall"}
    card = (run / "model" / "README.md").read_text()
    assert "## Evaluation" in card and "model-index" in card and "digits features" in card
    # evaluating again replaces, not duplicates, the same metric
    assert CliRunner().invoke(cli, ["eval", str(run), "-n", "100", "--device", "cpu"]).exit_code == 0
    meta = json.loads((run / "model" / "config.json").read_text())
    assert [m["name"] for m in meta["metrics"]].count("fid") == 1
    assert ganzoo.load(run).info["metrics"] == meta["metrics"]


@pytest.mark.parametrize("args, message", [
    (["--metrics", "fidd"], "unknown metric"),
    (["--extractor", "nope"], "unknown feature extractor"),
    (["-n", "1"], "1"),
])
def test_eval_command_bad_input(tmp_path, args, message):
    run = tmp_path / "run"
    tiny_train("dcgan", run, steps=1)
    before = (run / "model" / "config.json").read_bytes()
    result = CliRunner().invoke(cli, ["eval", str(run), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert (run / "model" / "config.json").read_bytes() == before


# ------------------------------------------------------------------------------------------- during training


def test_evaluation_during_training_logs_keeps_the_best_and_resumes(tmp_path):
    run = tmp_path / "run"
    options = {"eval_every": 2, "eval_samples": 64, "keep_best": "fid", "checkpoint_every": 2}
    tiny_train("dcgan", run, steps=4, config={"img_size": 28}, **options)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [line for line in lines if "eval" in line]
    assert [line["step"] for line in evals] == [2, 4]
    fids = [next(r["value"] for r in line["eval"] if r["name"] == "fid") for line in evals]
    best_meta = json.loads((run / "best" / "config.json").read_text())
    best = min(fids)
    assert next(m["value"] for m in best_meta["metrics"] if m["name"] == "fid") == best
    assert best_meta["training"]["steps"] == 2 * (fids.index(best) + 1)
    final = json.loads((run / "model" / "config.json").read_text())
    assert final["metrics"][0]["provenance"]["fake_images"] == 64
    # trained on all of mnist-5k, compared with its test part, as `ganzoo eval` compares
    assert (final["metrics"][0]["provenance"]["split"], final["metrics"][0]["provenance"]["real_images"]) == \
        ("test", 1000)

    # resuming keeps the best so far and evaluates the new steps
    ganzoo.train(out=run, resume=True, steps=6)
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert [line["step"] for line in evals] == [2, 4, 6]


@pytest.mark.parametrize("args, fragment", [
    (["--keep-best", "kid"], "the evaluation reports fid"),  # not evaluated
    (["--eval-metrics", "pr", "--keep-best", "pr"], "reports precision, recall"),  # a metric, not one of its values
    (["--eval-metrics", "bogus"], "unknown metric 'bogus'"),
    (["--eval-extractor", "nosuch"], "unknown feature extractor 'nosuch'"),
])
def test_bad_evaluation_options_fail_before_a_run_folder_exists(tmp_path, args, fragment):
    out = tmp_path / "r"
    result = CliRunner().invoke(cli, ["train", "--arch", "dcgan", "--eval-every", "5", *args, "--out", str(out),
                                      "--steps", "1"])
    assert result.exit_code == 2, result.output
    assert fragment in result.output and "Traceback" not in result.output
    assert not (out / "config.json").exists()  # a retry with fixed options is not refused


def test_trainer_and_eval_command_log_evaluations_alike(tmp_path):
    run = tmp_path / "run"
    tiny_train("cgan", run, steps=2, eval_every=2, eval_samples=40)
    assert CliRunner().invoke(cli, ["eval", str(run), "-n", "40", "--device", "cpu"]).exit_code == 0
    by_trainer, by_command = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                              if '"eval"' in line]
    assert set(by_trainer) - {"time_s"} == set(by_command) == {"step", "kimg", "eval", "diagnostics"}
    assert by_trainer["step"] == by_command["step"] and by_trainer["kimg"] == by_command["kimg"]
    assert by_trainer["diagnostics"].keys() == by_command["diagnostics"].keys() and by_command["diagnostics"]
    for line in (by_trainer, by_command):
        assert [set(r) for r in line["eval"]] == [{"name", "value", "provenance"}]


def test_keep_best_on_a_value_of_a_metric_with_two(tmp_path):
    run = tmp_path / "run"
    tiny_train("dcgan", run, steps=2, config={"img_size": 28}, eval_every=1, eval_samples=32, eval_metrics="pr",
               keep_best="precision")
    best = json.loads((run / "best" / "config.json").read_text())
    assert {m["name"] for m in best["metrics"]} == {"precision", "recall"}


def test_timm_extractor_features_logits_and_provenance(monkeypatch):
    """A timm model as the feature space (the path `dinov2` takes), built here without its pretrained weights."""
    import timm

    from ganzoo.metrics import extractors

    create = timm.create_model
    monkeypatch.setattr(timm, "create_model", lambda name, pretrained=False, **kw: create(name, pretrained=False, **kw))
    extractors._build.cache_clear()
    try:
        extractor = get_extractor("timm:test_vit.r160_in1k")
        gray = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
        out = extractor(gray)
        model = extractor.network.model
        assert out["features"].shape == (3, model.num_features)
        assert out["logits"].shape == (3, model.num_classes)
        # gray images are the same image repeated to RGB
        rgb = extractor(gray.expand(-1, 3, -1, -1).contiguous())
        assert torch.allclose(out["features"], rgb["features"], atol=1e-5)
        prov = extractor.provenance()
        assert prov["extractor"] == "timm:test_vit.r160_in1k" and len(prov["extractor_weights_sha256"]) == 64
        assert f"resize to {extractor.network.size[0]}x{extractor.network.size[1]}" in prov["preprocessing"]
    finally:
        extractors._build.cache_clear()


def test_timm_extractor_offline_and_not_cached_is_one_line(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from ganzoo.metrics import extractors

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    extractors._build.cache_clear()
    with pytest.raises(GanzooError, match="cannot load the pretrained weights of timm model test_vit") as err:
        get_extractor("timm:test_vit.r160_in1k")
    assert "\n" not in str(err.value) and "--extractor digits" in str(err.value)
    with pytest.raises(GanzooUsageError, match="unknown timm model"):
        get_extractor("timm:no_such_model_anywhere")


def test_a_headless_timm_model_gives_features_only(monkeypatch):
    import timm

    from ganzoo.metrics import extractors

    create = timm.create_model
    monkeypatch.setattr(timm, "create_model",
                        lambda name, pretrained=False, **kw: create(name, pretrained=False, num_classes=0, **kw))
    extractors._build.cache_clear()
    try:
        extractor = get_extractor("timm:test_vit.r160_in1k")
        assert not extractor.has_logits
        assert set(extractor(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))) == {"features"}
        data = _subset(40)
        gan = ganzoo.create("dcgan", seed=0, **tiny_config("dcgan", img_size=28))
        with pytest.raises(GanzooUsageError, match="Inception Score needs class logits"):
            Evaluator(data, metrics="is", extractor="timm:test_vit.r160_in1k", num_samples=8).evaluate(gan)
    finally:
        extractors._build.cache_clear()


# ------------------------------------------------------------------------------------------------- the split


def test_the_classifier_trains_on_the_train_part_and_evaluation_uses_the_test_part(monkeypatch):
    x_train, y_train, x_test, y_test = digits_module.holdout_split()
    train = load_dataset("mnist-5k", img_size=28, channels=1, split="train")
    test = load_dataset("mnist-5k", img_size=28, channels=1, split="test")
    assert torch.equal(x_test, test.images.float().div(127.5).sub(1)) and torch.equal(y_test, test.labels)
    assert torch.equal(y_train, train.labels) and len(x_train) == 4000
    gan = ganzoo.create("dcgan", seed=0, **tiny_config("dcgan", img_size=28))
    result = ganzoo.evaluate(gan, "mnist-5k", "fid", num_samples=50)
    assert (result.provenance["split"], result.provenance["real_images"]) == ("test", 1000)
    seen = []
    import ganzoo.metrics.evaluation as evaluate_module

    real_extract = evaluate_module.extract_features
    monkeypatch.setattr(evaluate_module, "extract_features",
                        lambda ex, images, bs=250: seen.append(images) or real_extract(ex, images, bs))
    on_train = ganzoo.evaluate(gan, "mnist-5k", "fid", num_samples=50, split="train")
    assert (on_train.provenance["split"], on_train.provenance["real_images"]) == ("train", 4000)
    assert torch.equal(seen[0], train.images)  # the train part's features: not the cached test part's
    assert on_train.values["fid"] != result.values["fid"]


def test_evaluate_loads_names_at_the_top_and_metrics_take_a_model(tmp_path, monkeypatch):
    """`ganzoo.evaluate` takes anything `ganzoo.load` does; `ganzoo.metrics.evaluate` only a loaded model, since
    resolving a name is the caller's job (the metrics layer does not import the loading layer)."""
    import ganzoo.api
    from ganzoo.metrics import evaluate as evaluate_model

    gan = ganzoo.create("dcgan", seed=0, **tiny_config("dcgan", img_size=28))
    folder = gan.save_pretrained(tmp_path / "model", samples=False)
    by_path = ganzoo.evaluate(str(folder), "mnist-5k", "fid,kid", num_samples=50)
    by_model = evaluate_model(gan, "mnist-5k", "fid,kid", num_samples=50)
    assert by_path.values == by_model.values and by_path.values["fid"] > 0
    assert by_path.provenance == by_model.provenance
    with pytest.raises(GanzooUsageError, match="takes a loaded model, not a str"):
        evaluate_model(str(folder), "mnist-5k", "fid", num_samples=50)
    loaded = []
    monkeypatch.setattr(ganzoo.api, "load", lambda *a, **k: loaded.append(a) or gan)
    with pytest.raises(GanzooError, match="fdi"):  # name errors come before any loading
        ganzoo.evaluate(str(folder), "mnist-5k", "fdi")
    with pytest.raises(GanzooError, match="extractor"):
        ganzoo.evaluate(str(folder), "mnist-5k", "fid", extractor="nope")
    assert loaded == []


def test_evaluator_split_selects_records_and_keys_the_cache(tmp_path):
    whole = load_dataset("mnist-5k", img_size=28, channels=1)
    gan = ganzoo.create("dcgan", seed=0, **tiny_config("dcgan", img_size=28))
    paths = {}
    for split, size in (("test", 1000), ("train", 4000), ("all", 5000)):
        evaluator = Evaluator(whole, "fid", num_samples=20, split=split)
        assert len(evaluator.dataset) == size and evaluator.dataset.split == split
        result = evaluator.evaluate(gan)
        assert (result.provenance["split"], result.provenance["real_images"]) == (split, size)
        paths[split] = evaluator._cache_path(get_extractor("digits"))
        assert paths[split].is_file()
    assert len(set(paths.values())) == 3
    # the same images called another split get their own cache entry: the split is part of the key
    test = Evaluator(whole, split="test").dataset
    relabelled = ImageDataset(test.images, test.labels, 10, "mnist-5k", split="all")
    assert Evaluator(relabelled)._cache_path(get_extractor("digits")) != paths["test"]
    with pytest.raises(GanzooUsageError, match="load it with load_dataset"):
        Evaluator(test, split="train")
    with pytest.raises(GanzooUsageError, match="unknown split"):
        Evaluator(whole, split="validation")


def test_an_image_folder_has_no_test_split(tmp_path):
    from PIL import Image

    from ganzoo.data import eval_split

    for i in range(3):
        Image.new("L", (28, 28), 40 * i).save(tmp_path / f"{i}.png")
    assert eval_split(str(tmp_path)) == "all" and eval_split("mnist-5k") == "test"
    with pytest.raises(GanzooUsageError, match="has no test split; use split 'all'"):
        load_dataset(str(tmp_path), img_size=28, split="test")
    assert load_dataset(str(tmp_path), img_size=28, split="all").split == "all"


# ---------------------------------------------------------------------------------- digit diagnostics only


def _renamed(data: ImageDataset, name: str, class_names: list[str] | None = None) -> ImageDataset:
    return ImageDataset(data.images, data.labels, data.num_classes, name, class_names or data.class_names)


@pytest.mark.parametrize("name, class_names, digits", [
    ("mnist-5k", None, True),
    ("mnist", None, True),
    ("folder:/data/digits", [str(i) for i in range(10)], True),
    ("fashion-mnist", ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                       "Ankle boot"], False),
    ("cifar10", [f"c{i}" for i in range(10)], False),
    ("folder:/data/clothes", [f"kind{i}" for i in range(10)], False),
])
def test_class_diagnostics_only_for_digit_data(name, class_names, digits, caplog):
    data = _renamed(_subset(200), name, class_names)
    assert digits_module.is_digit_data(data) is digits
    gan = ganzoo.create("cgan", seed=0, **tiny_config("cgan"))
    result = Evaluator(data, num_samples=50).evaluate(gan)
    if digits:
        assert sum(result.diagnostics["class_histogram"]) == 50 and "class_control" in result.diagnostics
        assert "trained on handwritten digits" not in caplog.text
    else:
        assert result.diagnostics == {}
        assert "trained on handwritten digits" in caplog.text


def test_eval_command_on_other_data_says_no_classes(tmp_path):
    from PIL import Image

    run = tmp_path / "run"
    tiny_train("dcgan", run, steps=1, config={"img_size": 28})
    folder = tmp_path / "clothes"
    for kind in ("shirt", "shoe"):
        (folder / kind).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (28, 28), 30 * i + (100 if kind == "shoe" else 0)).save(folder / kind / f"{i}.png")
    result = CliRunner().invoke(cli, ["eval", str(run), "-d", str(folder), "-n", "8", "--device", "cpu",
                                      "--no-save"])
    assert result.exit_code == 0, result.output
    assert "(all split)" in result.output and "is not digit data" in result.output
    assert "histogram" not in result.output
    bad = CliRunner().invoke(cli, ["eval", str(run), "-d", str(folder), "--split", "test"])
    assert bad.exit_code == 2 and "has no test split" in bad.output and "Traceback" not in bad.output


# ------------------------------------------------------------------------------------------------- record()


def test_record_keeps_values_measured_differently(tmp_path):
    from ganzoo.metrics.evaluation import EvalResult, record

    run = tmp_path / "run"
    tiny_train("dcgan", run, steps=1)

    def result(fid: float, n: int, split: str = "test", extractor: str = "digits") -> EvalResult:
        prov = {"extractor": extractor, "extractor_weights_sha256": "ab" * 32, "real_data": "mnist-5k",
                "split": split, "fake_images": n, "real_images": 1000, "seed": 0}
        return EvalResult({"fid": fid}, prov)

    def stored() -> list[tuple[float, int, str, str]]:
        meta = json.loads((run / "model" / "config.json").read_text())
        return sorted((m["value"], m["provenance"]["fake_images"], m["provenance"]["split"],
                       m["provenance"]["extractor"]) for m in meta["metrics"] if m["name"] == "fid")

    record(result(3.0, 2000), run)
    record(result(9.0, 100), run)  # a 100-sample FID does not replace the 2,000-sample one
    assert stored() == [(3.0, 2000, "test", "digits"), (9.0, 100, "test", "digits")]
    record(result(4.0, 2000, split="train"), run)
    record(result(5.0, 2000, extractor="inception"), run)
    assert len(stored()) == 4
    record(result(2.5, 2000), run)  # measured alike: replaces
    assert stored() == [(2.5, 2000, "test", "digits"), (4.0, 2000, "train", "digits"),
                        (5.0, 2000, "test", "inception"), (9.0, 100, "test", "digits")]
    card = (run / "model" / "README.md").read_text()
    assert "2000 generated" in card and "100 generated" in card


# --------------------------------------------------------------------------------------------------- dinov2


def test_dinov2_follows_the_fd_dinov2_protocol(monkeypatch):
    """224x224 input (not timm's 518), the class token as features; built without its pretrained weights."""
    import timm

    from ganzoo.metrics import extractors

    create = timm.create_model
    calls = []

    def offline(name, pretrained=False, **kw):
        calls.append((name, kw))
        return create(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", offline)
    extractors._build.cache_clear()
    try:
        extractor = get_extractor("dinov2-small")
        assert calls == [("vit_small_patch14_dinov2.lvd142m", {"img_size": 224})]
        model = extractor.network.model
        assert extractor.network.size == (224, 224) and tuple(model.patch_embed.img_size) == (224, 224)
        assert model.pos_embed.shape[1] == 1 + 16 * 16  # the class token and a 16x16 grid of 14-pixel patches
        seen = []
        model.patch_embed.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
        images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
        features = extractor(images)["features"]
        assert seen == [(2, 3, 224, 224)] and features.shape == (2, 384)
        with torch.no_grad():  # the class token after the final norm, as DINOv2's own forward returns it
            x = images.float().div(255).expand(-1, 3, -1, -1)
            x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bicubic", antialias=True).clamp(0, 1)
            token = model.forward_features((x - extractor.network.mean) / extractor.network.std)[:, 0]
        assert torch.allclose(features, token, atol=1e-4)
        prov = extractor.provenance()["preprocessing"]
        assert "resize to 224x224" in prov and "FD-DINOv2 protocol" in prov and "37x37 to 16x16" in prov
        assert "not PIL's" in prov
    finally:
        extractors._build.cache_clear()
    assert not extractors.is_dinov2("test_vit.r160_in1k")

"""Evaluation of a generator against a dataset: FID, KID, Inception Score, precision/recall, mode-collapse diagnostics,
and the perceptual path length (`ganzoo.metrics.ppl`), which looks at the generator alone.

The metric formulas are torch-fidelity's (`fid_statistics_to_metric`, `kid_features_to_metric`,
`isc_features_to_metric`, `prc_features_to_metric`), applied to features that ganzoo extracts itself, because
torch-fidelity's own input and caching layer reads its cache in a way that can run code stored in the files and
starts DataLoader worker processes. What ganzoo adds:

- a fixed real reference: by default the dataset's test split (`ganzoo.data.SPLITS`; for mnist-5k the 1,000 digits
  the `digits` classifier never saw, see `ganzoo.data`), so a generator that memorises its training images is not
  rewarded and the floor (train against test) is honest;
- real features per (dataset content, split, image size, extractor, weights) cached as safetensors under
  `$GANZOO_HOME/metrics/`, so a second evaluation does not recompute them;
- generated images drawn with a fixed seed (class labels cycling through the classes for conditional models) and
  rounded to uint8 as a saved PNG would be, the same quantisation as the real images;
- a provenance record with every result: extractor and its weights' sha256, feature layer, numbers of real and
  generated images, which split, how images were resized, seed, library versions;
- on stacked-mnist, the metric "modes": how many of its 1,000 digit triples the samples cover and how evenly, over all
  samples and over those read with confidence (`ganzoo.metrics.modes`), with the digit classifier's calibration on
  real test stacks and the count by softmax confidence alone as diagnostics;
- where the extractor's classifier reads the data's own classes (digit data, `ganzoo.metrics.digits.is_digit_data`:
  mnist-5k, mnist, an image folder with sub-folders 0 to 9, under the `digits` extractor; the emoji sets, whose
  labels are Unicode groups, under the `colour` extractor's group head), the class histogram of generated images,
  its entropy and how many classes are covered, and for conditional models how often the requested class is what the
  classifier sees, beside how often it reads the real images' labels right. Other data gets none of these: a digit
  classifier says nothing about the classes of clothes, objects or faces.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganzoo import __version__
from ganzoo.errors import GanzooUsageError
from ganzoo.metrics.colour import is_emoji_data
from ganzoo.metrics.digits import is_digit_data
from ganzoo.metrics.extractors import Extractor, canonical_name, default_extractor, get_extractor

if TYPE_CHECKING:
    from ganzoo.data import ImageDataset
    from ganzoo.model import GANModel

__all__ = ["COMPARABLE_FIELDS", "METRICS", "EvalResult", "Evaluator", "comparable", "evaluate", "extract_features",
           "frechet_distance", "higher_is_better", "parse_metrics", "record"]

logger = logging.getLogger(__name__)

#: metric -> (values it produces, whether higher is better for the headline value)
METRICS: dict[str, tuple[tuple[str, ...], bool]] = {
    "fid": (("fid",), False),
    "kid": (("kid", "kid_std"), False),
    "is": (("is", "is_std"), True),
    "pr": (("precision", "recall"), True),
    # StackedMNIST mode coverage (`ganzoo.metrics.modes`): read from the images by the digit classifier, channel by
    # channel, whatever the extractor; stacked-mnist only
    "modes": (("confident_modes", "confident_kl", "confident_fraction", "modes", "modes_kl"), True),
    # perceptual path length (`ganzoo.metrics.ppl`): "full" paths in Z (every generator), path ends in W (StyleGAN2's)
    "ppl": (("ppl",), False),
    "ppl-w": (("ppl_w",), False),
}
_HIGHER_IS_BETTER = {"fid": False, "kid": False, "kid_std": False, "is": True, "is_std": False, "precision": True,
                     "recall": True, "confident_modes": True, "confident_kl": False, "confident_fraction": True,
                     "modes": True, "modes_kl": False, "ppl": False, "ppl_w": False}
#: the metrics that compare features of the extractor (all but "modes")
_FEATURE_METRICS = ("fid", "kid", "is", "pr")
KID_SUBSET_SIZE = 1000
KID_SUBSETS = 100
IS_SPLITS = 10
PR_NEIGHBOURHOOD = 3


def higher_is_better(name: str) -> bool:
    """Whether a larger value of a reported value (fid, kid, is, precision, recall, ...) is better."""
    return _HIGHER_IS_BETTER[name]


def parse_metrics(metrics: str | Iterable[str]) -> list[str]:
    """Metric names from "fid,kid" or a sequence; unknown names are a usage error naming the known ones."""
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in names if m]
    if not names:
        raise GanzooUsageError(f"no metric named; choose from {', '.join(METRICS)}")
    for name in names:
        if name not in METRICS:
            from ganzoo.errors import unknown_name

            raise unknown_name("metric", name, list(METRICS))
    return list(dict.fromkeys(names))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as uint8 in [0, 255], rounded the way an 8-bit image file stores them."""
    return images.float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def extract_features(extractor: Extractor, images: torch.Tensor, batch_size: int = 250) -> dict[str, torch.Tensor]:
    """Features (and logits, when the extractor has them) of uint8 images (N, C, H, W), batch by batch."""
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(images), batch_size):
        for key, value in extractor(images[start:start + batch_size]).items():
            parts.setdefault(key, []).append(value)
    return {key: torch.cat(values) for key, values in parts.items()}


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D): FID when the features are Inception's."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    stats_a = fid_features_to_statistics(features_a.double())
    stats_b = fid_features_to_statistics(features_b.double())
    return float(next(iter(fid_statistics_to_metric(stats_a, stats_b, False).values())))


def _kid(fake: torch.Tensor, real: torch.Tensor, seed: int, subsets: int = KID_SUBSETS) -> dict[str, float]:
    from torch_fidelity.metric_kid import kid_features_to_metric

    subset = min(KID_SUBSET_SIZE, len(fake), len(real))
    out = kid_features_to_metric(fake, real, kid_subsets=subsets, kid_subset_size=subset, rng_seed=seed,
                                 verbose=False)
    return {"kid": out["kernel_inception_distance_mean"], "kid_std": out["kernel_inception_distance_std"]}


def _inception_score(logits: torch.Tensor, seed: int) -> dict[str, float]:
    from torch_fidelity.metric_isc import isc_features_to_metric

    out = isc_features_to_metric(logits, splits=IS_SPLITS, shuffle=True, rng_seed=seed)
    return {"is": out["inception_score_mean"], "is_std": out["inception_score_std"]}


def _precision_recall(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    from torch_fidelity.metric_prc import prc_features_to_metric

    out = prc_features_to_metric(fake, real, prc_neighborhood=PR_NEIGHBOURHOOD, prc_batch_size=2000,
                                 save_cpu_ram=True, verbose=False)
    return {"precision": out["precision"], "recall": out["recall"]}


def class_histogram(logits: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """Mode-collapse diagnostics from classifier logits of generated images.

    `entropy` is in nats (ln K for a uniform histogram); a class is `covered` when it gets at least a tenth of its
    fair share (n / K / 10) of the images, so a few stray misclassifications do not count as coverage.
    """
    counts = torch.bincount(logits.argmax(1), minlength=num_classes)[:num_classes]
    p = counts.double() / max(1, int(counts.sum()))
    entropy = float(-(p[p > 0] * p[p > 0].log()).sum()) + 0.0  # + 0.0: one class gives 0, not -0
    threshold = len(logits) / num_classes / 10
    return {"class_histogram": counts.tolist(), "entropy": round(entropy, 4),
            "max_entropy": round(math.log(num_classes), 4),
            "classes_covered": int((counts >= threshold).sum()), "num_classes": num_classes}


def _versions() -> dict[str, str]:
    try:
        fidelity = metadata.version("torch-fidelity")
    except metadata.PackageNotFoundError:
        fidelity = "not installed"
    return {"ganzoo": __version__, "torch": torch.__version__, "torch_fidelity": fidelity}


@dataclass
class EvalResult:
    """Metric values, diagnostics and how they were obtained."""

    values: dict[str, float]
    provenance: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """One {"name", "value", "provenance", "higher_is_better"} per value: metrics.jsonl and model card form."""
        return [{"name": name, "value": round(value, 6), "provenance": self.provenance,
                 "higher_is_better": higher_is_better(name)} for name, value in self.values.items()]

    def stored_records(self) -> list[dict[str, Any]]:
        """`records()` as config.json and the model card keep them: {"name", "value", "provenance"} per value."""
        return [{k: v for k, v in r.items() if k != "higher_is_better"} for r in self.records()]

    def log_line(self, step: int, **extra: Any) -> dict[str, Any]:
        """The run's metrics.jsonl line for this result, the same whoever writes it (the trainer or `record`):
        {"step", **extra (kimg, time_s), "eval": stored_records(), "diagnostics"}."""
        return {"step": step, **extra, "eval": self.stored_records(), "diagnostics": self.diagnostics}

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "diagnostics": self.diagnostics, "provenance": self.provenance}


class Evaluator:
    """Evaluates generators against one dataset; the real features are computed (or read from the cache) once.

    Args:
        dataset: the real images (an `ImageDataset`, at the resolution and channels the generators produce).
        split: compare with this part of `dataset` ("train", "test", "all"; see `ganzoo.data.select_split`);
            None: the dataset as given. Its `split` is recorded in the provenance and is part of the cache key.
        metrics: names from `METRICS`, as a list or "fid,kid".
        extractor: a feature extractor name (see `ganzoo.metrics.extractors`); None: `default_extractor` of the
            dataset's name (`colour` for the emoji sets, `digits` otherwise).
        num_samples: generated images per evaluation (default: as many as there are real images, at most 50,000).
        seed: seed of the generated images and of KID's and IS's random subsets.
        batch_size: images per generator and extractor call.
        device: where the extractor runs (default: the generator's device at evaluation time).
        cache: read and write cached real features.
        generator_kwargs: passed to `GANModel.sample` (e.g. truncation=0.7).
    """

    def __init__(self, dataset: ImageDataset, metrics: str | Sequence[str] = "fid", extractor: str | None = None,
                 num_samples: int | None = None, seed: int = 0, batch_size: int = 250,
                 device: str | torch.device | None = None, cache: bool = True, *, split: str | None = None,
                 **generator_kwargs: Any) -> None:
        from ganzoo.data import select_split

        self.dataset = select_split(dataset, split) if split is not None else dataset
        dataset = self.dataset
        self.metrics = parse_metrics(metrics)
        self.extractor_name = canonical_name(extractor or default_extractor(dataset.name))
        self.num_samples = num_samples or min(len(dataset), 50_000)
        if self.num_samples < 2:
            raise GanzooUsageError(f"need at least 2 generated images to estimate statistics, got {self.num_samples}")
        if len(dataset) < 2:
            raise GanzooUsageError(f"{dataset.name} has {len(dataset)} image(s); metrics need at least 2 real images")
        self.seed = seed
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else None
        self.cache = cache
        self.generator_kwargs = generator_kwargs
        self._real: dict[str, torch.Tensor] | None = None
        if "modes" in self.metrics and dataset.name != "stacked-mnist":
            raise GanzooUsageError(f"the modes metric counts StackedMNIST's 1,000 digit triples; {dataset.name} has "
                                   "none: evaluate a model trained on stacked-mnist with --data stacked-mnist")

    # ------------------------------------------------------------------------------------------------------ real

    def _cache_key(self, extractor: Extractor) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps({"extractor": extractor.name, "weights": extractor.weights_sha256,
                                  "layer": extractor.feature_layer, "shape": list(self.dataset.images.shape),
                                  "preprocessing": extractor.preprocessing, "data": self.dataset.name,
                                  "split": self.dataset.split}, sort_keys=True).encode())
        digest.update(self.dataset.images.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def _cache_path(self, extractor: Extractor) -> Path:
        from ganzoo.data import cache_dir

        folder = extractor.name.replace(":", "-").replace("/", "-")
        return cache_dir().parent / "metrics" / folder / f"{self._cache_key(extractor)[:32]}.safetensors"

    def real_features(self, extractor: Extractor) -> dict[str, torch.Tensor]:
        """Features of the real images: from memory, else the cache, else computed (and cached)."""
        if self._real is not None:
            return self._real
        path = self._cache_path(extractor) if self.cache else None
        if path is not None and path.is_file():
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                self._real = load_file(str(path))
                logger.info("real features read from the cache %s", path)
                return self._real
            except (SafetensorError, OSError) as exc:
                logger.warning("ignoring an unreadable cache file %s (%s); recomputing", path, exc)
        self._real = extract_features(extractor, self.dataset.images, self.batch_size)
        if path is not None:
            from safetensors.torch import save

            from ganzoo._io import write_bytes

            write_bytes(path, save(self._real, metadata={"dataset": self.dataset.name, "split": self.dataset.split,
                                                         "extractor": extractor.name}))
            logger.info("real features cached in %s", path)
        return self._real

    # ------------------------------------------------------------------------------------------------------ fake

    def generate(self, model: GANModel) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`num_samples` generated uint8 images (on the CPU) and the labels asked for (conditional models)."""
        labels = torch.arange(self.num_samples) % model.num_classes if model.num_classes else None
        images = model.sample(self.num_samples, seed=self.seed, labels=labels, batch_size=self.batch_size,
                              **self.generator_kwargs)
        return to_uint8(images).cpu(), labels

    def evaluate(self, model: GANModel) -> EvalResult:
        shape = tuple(self.dataset.images.shape[1:])
        if tuple(model.img_shape) != shape:
            raise GanzooUsageError(f"the model makes {model.img_shape} images but the data was loaded as {shape}; "
                                   "load the data at the model's size and channels")
        paths = [m for m in self.metrics if m in ("ppl", "ppl-w")]
        if paths and self.extractor_name == "inception":  # before its weights are fetched
            raise GanzooUsageError("the perceptual path length needs a feature space that reads unrounded images, "
                                   "and torch-fidelity's Inception reads 8-bit ones only: use --extractor digits, "
                                   "colour or timm:<model>")
        extractor = get_extractor(self.extractor_name, self.device or model.device)
        if "is" in self.metrics and not extractor.has_logits:
            raise GanzooUsageError(f"the Inception Score needs class logits, which the {extractor.name} extractor "
                                   "does not have; use --extractor inception, digits or colour")
        uses_features = any(m in _FEATURE_METRICS for m in self.metrics)
        if extractor.name == "digits" and not is_digit_data(self.dataset) and (uses_features or paths):
            logger.warning("the digits extractor was trained on handwritten digits; on %s its distances mean little "
                           "and no class diagnostics are given; use --extractor inception or dinov2",
                           self.dataset.name)
        if extractor.name == "colour" and not is_emoji_data(self.dataset.name) and uses_features:
            logger.warning("the colour extractor was trained on emoji; on %s its distances are not checked against a "
                           "ladder and no class diagnostics are given; use --extractor inception or dinov2 where they "
                           "can be downloaded", self.dataset.name)
        real = self.real_features(extractor) if uses_features else {}
        images, labels = self.generate(model) if uses_features or "modes" in self.metrics else (None, None)
        fake = extract_features(extractor, images, self.batch_size) if uses_features else {}
        values: dict[str, float] = {}
        mode_provenance: dict[str, Any] = {}
        mode_diagnostics: dict[str, Any] = {}
        for metric in self.metrics:
            if metric == "modes":
                import ganzoo.metrics.digits as digits
                import ganzoo.metrics.modes as modes

                device = self.device or model.device
                coverage = modes.mode_coverage(images, device=device)
                values.update(coverage.values())
                mode_provenance = {"modes_reader": "digits classifier, per channel", "modes_reader_sha256":
                                   digits.SHA256, "modes_confidence": coverage.threshold, "modes_rule": modes.RULE}
                # what the softmax condition alone would count, and the classifier's reliability on real test
                # stacks (computed once per process and size), to read the count beside
                mode_diagnostics = {"modes_softmax_confident": {
                    "modes": coverage.softmax_confident_modes,
                    "fraction": round(coverage.softmax_confident_fraction, 5)},
                    "modes_calibration": modes.calibration(shape[-1], device)}
            elif metric in ("ppl", "ppl-w"):
                values[METRICS[metric][0][0]] = self._path_length(model, extractor, metric)
            elif metric == "fid":
                values["fid"] = frechet_distance(fake["features"], real["features"])
            elif metric == "kid":
                values.update(_kid(fake["features"], real["features"], self.seed))
            elif metric == "is":
                values.update(_inception_score(fake["logits"], self.seed))
            else:
                values.update(_precision_recall(fake["features"], real["features"]))
        diagnostics = {**self._diagnostics(extractor, fake, labels), **mode_diagnostics}
        provenance = {**extractor.provenance(), "real_data": self.dataset.name, "split": self.dataset.split,
                      "real_images": len(self.dataset), "fake_images": self.num_samples,
                      "image_size": f"{shape[1]}x{shape[2]}x{shape[0]}",
                      "real_resize": "to the model's size when loaded (antialiased), as in training",
                      "seed": self.seed, **mode_provenance,
                      **(_ppl_provenance(paths, self.num_samples) if paths else {}),
                      **({"generator_kwargs": self.generator_kwargs} if self.generator_kwargs else {}),
                      **_versions()}
        return EvalResult({k: float(v) for k, v in values.items()}, provenance, diagnostics)

    def _path_length(self, model: GANModel, extractor: Extractor, protocol: str) -> float:
        """The perceptual path length of the model's sampling generator (eval mode) over `num_samples` paths."""
        from ganzoo.metrics.ppl import perceptual_path_length

        G = model.sampler
        was_training = G.training
        G.eval()
        try:
            value, _ = perceptual_path_length(G, extractor.float_features, self.num_samples, protocol=protocol,
                                              seed=self.seed, batch_size=self.batch_size, **self.generator_kwargs)
        finally:
            G.train(was_training)
        return value

    def _diagnostics(self, extractor: Extractor, fake: dict[str, torch.Tensor],
                     labels: torch.Tensor | None) -> dict[str, Any]:
        """Class diagnostics where the extractor's classifier reads the data's classes: the digits classifier on
        digit data, the colour network's group head on the emoji sets (their labels are the Unicode groups). Beside
        `class_control` (how often the class asked of a conditional generator is the class read back),
        `real_class_control` is the classifier's accuracy on the real images compared with, labelled as they are:
        the ceiling that `class_control` should be read against (the group head reads unseen emoji far less
        reliably than the digits classifier reads unseen digits)."""
        classes = self.dataset.num_classes
        readable = ((extractor.name == "digits" and is_digit_data(self.dataset))
                    or (extractor.name == "colour" and is_emoji_data(self.dataset.name)))
        if not readable or "logits" not in fake:
            return {}
        result = class_histogram(fake["logits"], classes)
        real = self.real_features(extractor)
        if "logits" in real:
            read = real["logits"].argmax(1)
            result["real_class_histogram"] = torch.bincount(read, minlength=classes).tolist()
            if labels is not None and self.dataset.labels is not None:
                truth = self.dataset.labels.to(read.device)
                result["real_class_control"] = round(float((read == truth).float().mean()), 4)
        if labels is not None:
            result["class_control"] = round(float((fake["logits"].argmax(1) == labels).float().mean()), 4)
        return result

    def __call__(self, model: GANModel) -> EvalResult:
        """The trainer's evaluator interface (`evaluate`)."""
        return self.evaluate(model)


def evaluate(model: GANModel, data: str = "mnist-5k", metrics: str | Sequence[str] = ("fid",), *,
             extractor: str | None = None, num_samples: int | None = None, seed: int = 0,
             device: str | torch.device | None = None, batch_size: int = 250, cache: bool = True,
             split: str | None = None, **generator_kwargs: Any) -> EvalResult:
    """Evaluate a loaded generator against a dataset.

        result = ganzoo.metrics.evaluate(gan, "mnist-5k", ["fid", "kid"], extractor="digits")
        result.values        # {"fid": ..., "kid": ..., "kid_std": ...}
        result.diagnostics   # class histogram, entropy, classes covered (digit data only)
        result.provenance    # extractor, weights sha256, data and split, image counts, seed, versions

    The real images are `data`'s `split` ("train", "test", "all"; default: "test" where the data has a split,
    "all" for an image folder), loaded at the model's resolution and channels. `extractor` None is
    `default_extractor(data)`: `colour` for the emoji sets, `digits` otherwise. See `Evaluator` for the arguments.

    `model` is a `GANModel`: turning a name or folder into one is the caller's job (`ganzoo.evaluate` accepts
    anything `ganzoo.load` does and loads it first), so that metrics sit below the loading layer and never import it.
    """
    from ganzoo.data import eval_split, load_dataset
    from ganzoo.model import GANModel

    if not isinstance(model, GANModel):
        raise GanzooUsageError(f"ganzoo.metrics.evaluate takes a loaded model, not a {type(model).__name__}; use "
                               "ganzoo.evaluate(name_or_path, ...), or load it first with ganzoo.load")
    parse_metrics(metrics)
    extractor = canonical_name(extractor or default_extractor(data))
    split = eval_split(data, split)
    if device is not None:
        model = model.to(device)
    c, h, _ = model.img_shape
    dataset = load_dataset(data, img_size=h, channels=c, split=split)
    evaluator = Evaluator(dataset, metrics, extractor, num_samples, seed, batch_size, device, cache,
                          **generator_kwargs)
    return evaluator.evaluate(model)


def _ppl_provenance(protocols: list[str], paths: int) -> dict[str, Any]:
    """How the path lengths were measured: the protocol of each, epsilon, the distance and the trimming."""
    from ganzoo.metrics.ppl import EPSILON, PROTOCOLS, TRIM_PERCENT

    described = {"z": "slerp in Z on the sphere of radius sqrt(z_dim)", "w": "lerp in W (per layer)"}
    return {"ppl_protocol": {
        name: f"{described[PROTOCOLS[name][0]]}, t {'~ U(0, 1)' if PROTOCOLS[name][1] == 'full' else '= 0'}"
        for name in protocols},
        "ppl_epsilon": EPSILON, "ppl_paths": paths,
        "ppl_distance": "squared L2 distance of the extractor's features / epsilon^2 (not LPIPS)",
        "ppl_trim": f"values outside the {TRIM_PERCENT:g}st to {100 - TRIM_PERCENT:g}th percentiles dropped"}


#: provenance fields that must agree for two stored values of a metric to measure the same thing
COMPARABLE_FIELDS = ("extractor", "extractor_weights_sha256", "real_data", "split", "fake_images")
#: and for the values of the metric "modes", also the counting rule (a value counted by an earlier rule is kept)
MODES_COMPARABLE_FIELDS = ("modes_reader_sha256", "modes_rule")


def comparable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two stored records ({"name", "value", "provenance"}) are the same metric measured alike, so that the
    newer may replace the older: the same extractor and weights, data, split and number of generated images, and for
    the mode-coverage values the same reader and counting rule."""
    pa, pb = a.get("provenance") or {}, b.get("provenance") or {}
    fields = COMPARABLE_FIELDS + (MODES_COMPARABLE_FIELDS if a.get("name") in METRICS["modes"][0] else ())
    return a.get("name") == b.get("name") and all(pa.get(k) == pb.get(k) for k in fields)


def record(result: EvalResult, path: str | Path) -> list[Path]:
    """Store a result with the model it measured: a run folder gets a line in metrics.jsonl, and the model folder
    (the run's `model/`, or `path` itself) gets the metrics in config.json and in its model card. An earlier value
    is replaced only by one measured alike (`comparable`: the same metric, extractor and weights, data, split and
    number of generated images); values measured otherwise are kept beside it. Returns the files written."""
    from ganzoo._io import write_json, write_text
    from ganzoo.card import model_card
    from ganzoo.serialization import CARD_NAME, CONFIG_NAME, is_model_folder, read_model_folder

    path = Path(path)
    run = path if is_model_folder(path / "model") else None
    folder = path / "model" if run is not None else path
    if not is_model_folder(folder):
        raise GanzooUsageError(f"{path} is neither a run folder nor a model folder; results are stored only there")
    records = result.stored_records()
    written = []
    if run is not None:
        training = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8")).get("training", {})
        extra = {"kimg": round(training["images_seen"] / 1000, 3)} if "images_seen" in training else {}
        line = result.log_line(int(training.get("steps", 0)), **extra)
        with open(run / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        written.append(run / "metrics.jsonl")

    meta = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    kept = [m for m in meta.get("metrics", []) if isinstance(m, dict) and "name" in m and isinstance(
        m.get("provenance"), dict) and not any(comparable(m, r) for r in records)]
    meta["metrics"] = kept + records
    write_json(folder / CONFIG_NAME, meta)
    parts = read_model_folder(folder, discriminator=False)
    write_text(folder / CARD_NAME, model_card(parts, meta.get("training")))
    return [*written, folder / CONFIG_NAME, folder / CARD_NAME]

"""Model cards: the README.md of a model folder and of a Hub repository written by ganzoo.

The YAML front matter is made by huggingface_hub's `ModelCardData`, so the Hub reads it as it reads any model
card: `library_name: ganzoo`, tags, datasets, licence and, when the model was evaluated, a model-index with each
metric and where it came from.

A card is made from a bundle's parts: a `GANModel`, or the `ModelParts` that `ganzoo.serialization` reads from a
folder (what `ganzoo push` publishes); this module does not import either at run time.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganzoo.model import GANModel
    from ganzoo.serialization import ModelParts

__all__ = ["DATASET_LICENSES", "METRIC_LABELS", "model_card", "train_command"]

#: licences of the training data ganzoo knows; weights trained on them are published under the same terms (the emoji
#: sets' licence and attribution come from `ganzoo.emoji.data_terms`, or from what the run recorded: `_data_terms`)
DATASET_LICENSES = {"mnist-5k": "cc-by-sa-3.0", "stacked-mnist": "cc-by-sa-3.0", "mnist": "cc-by-sa-3.0",
                    "fashion-mnist": "mit", "celeba": "other", "twemoji": "cc-by-4.0", "openmoji": "cc-by-sa-4.0",
                    "noto-emoji": "ofl-1.1"}
#: display names of metric values; the card adds the feature space, since values in different ones do not compare
METRIC_LABELS = {"fid": "FID", "kid": "KID", "kid_std": "KID std", "is": "Inception Score", "is_std": "IS std",
                 "precision": "precision", "recall": "recall",
                 "confident_modes": "StackedMNIST modes read with confidence",
                 "confident_kl": "KL of confident modes from uniform",
                 "confident_fraction": "share read with confidence",
                 "modes": "StackedMNIST modes (argmax)", "modes_kl": "KL of modes from uniform"}


def _translates(model: GANModel | ModelParts) -> bool:
    from ganzoo.interfaces import Translator

    return isinstance(getattr(model, "generator", None), Translator)


def _task(model: GANModel | ModelParts) -> str:
    if _translates(model):
        return "image-to-image"
    return "conditional-image-generation" if model.num_classes else "unconditional-image-generation"


def _label(metric: Mapping[str, Any]) -> str:
    """`FID (digits features)`: the metric's display name and the feature space it was measured in."""
    name = str(metric["name"])
    label = str(metric.get("label") or METRIC_LABELS.get(name, name))
    extractor = metric.get("provenance", {}).get("extractor")
    return f"{label} ({extractor} features)" if extractor else label


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _setting(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return "--set " + shlex.quote(f"{key}={text}")


def train_command(model: GANModel | ModelParts, training: Mapping[str, Any]) -> str | None:
    """The `ganzoo train` command that reproduces this model's config and recipe, or None when unknown.

    Config and recipe fields that differ from the architecture's defaults become `--set KEY=VALUE`, so the command
    is exact whether the run used a preset, flags or `--set`.
    """
    from ganzoo.registry import get_architecture

    recipe, data = training.get("recipe"), training.get("data")
    if not isinstance(recipe, Mapping) or not data:
        return None
    arch = get_architecture(model.architecture)
    words = ["ganzoo", "train", "--arch", model.architecture, "--data", shlex.quote(str(data))]
    default_config = arch.make_config().to_dict()
    config = model.config.to_dict()
    if config["img_size"] != default_config["img_size"]:
        words += ["--img-size", str(config["img_size"])]
    if config["channels"] != default_config["channels"]:
        words += ["--channels", str(config["channels"])]
    words += ["--steps", str(recipe.get("steps", training.get("steps"))),
              "--batch-size", str(recipe.get("batch_size", training.get("batch_size")))]
    skip = {"img_size", "channels"} | ({"num_classes"} if arch.conditional else set())  # num_classes: from the data
    words += [_setting(k, v) for k, v in config.items() if k not in skip and v != default_config.get(k)]
    default_recipe = arch.make_recipe().to_dict()
    words += [_setting(k, v) for k, v in recipe.items() if k not in ("steps", "batch_size")
              and k in default_recipe and v != default_recipe[k]]
    if "seed" in training:
        words += ["--seed", str(training["seed"])]
    return " ".join(words)


def _data_terms(training: Mapping[str, Any]) -> dict[str, str] | None:
    """The licence and attribution of the training data: what the run recorded (``data_terms``: an emoji set, or a
    zip prepared from one), else what the data's name says."""
    recorded = training.get("data_terms")
    if isinstance(recorded, Mapping) and recorded.get("license"):
        return {str(k): str(v) for k, v in recorded.items()}
    from ganzoo.emoji import data_terms

    named = data_terms(str(training.get("data", "")))
    return named.to_dict() if named is not None else None


def _front_matter(model: GANModel | ModelParts, training: Mapping[str, Any], metrics: list[Mapping[str, Any]]) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    dataset = str(training.get("data", "")) or None
    results = []
    for metric in metrics:
        provenance = metric.get("provenance", {})
        results.append(EvalResult(
            task_type=_task(model),
            dataset_type=dataset or "unknown",
            dataset_name=dataset or "unknown",
            metric_type=str(metric["name"]),
            metric_value=metric["value"],
            metric_name=_label(metric),
            metric_config=json.dumps(provenance, sort_keys=True) if provenance else None,
        ))
    data = ModelCardData(
        library_name="ganzoo",
        license=DATASET_LICENSES.get(dataset or "") or (_data_terms(training) or {}).get("license"),
        tags=["gan", model.architecture, _task(model), "pytorch", "safetensors"],
        datasets=[dataset] if dataset and not dataset.startswith(("folder:", "/", ".")) else None,
        pipeline_tag=None,
        model_name=f"{model.architecture}-{dataset}" if dataset else model.architecture,
        eval_results=results or None,
    )
    return data.to_yaml()


def _measured(provenance: Mapping[str, Any]) -> str:
    """One line on how a metric was measured, from its provenance record."""
    if not provenance:
        return "not recorded"
    parts = []
    if "extractor" in provenance:
        digest = str(provenance.get("extractor_weights_sha256", ""))[:12]
        parts.append(f"{provenance['extractor']} features" + (f" (weights sha256 {digest}...)" if digest else ""))
    if "fake_images" in provenance:
        parts.append(f"{provenance['fake_images']} generated vs {provenance.get('real_images', '?')} real images of "
                     f"{provenance.get('real_data', '?')} ({provenance.get('split', '?')} split)")
    if "seed" in provenance:
        parts.append(f"seed {provenance['seed']}")
    return "; ".join(parts) or ", ".join(f"{k}: {v}" for k, v in provenance.items())


def model_card(model: GANModel | ModelParts, training: Mapping[str, Any] | None = None,
               repo_id: str | None = None) -> str:
    """The model card (Markdown with YAML front matter) for `model`, mentioning `repo_id` when it is known."""
    training = dict(training or {})
    metrics = list(model.info.get("metrics", []))
    where = repo_id or "path/to/this/folder"
    c, h, w = model.img_shape
    dataset = training.get("data", "")
    title = f"{model.architecture} trained on {dataset}" if dataset else model.architecture
    if _translates(model):
        what = f"An image-to-image {model.architecture} model that translates images with {c} channel" \
               f"{'s' if c > 1 else ''} (trained at {h}x{w})"
        use = ['images = ...  # (N, C, H, W) in [-1, 1]', "outputs = gan.translate(images)  # the same shape",
               "```", "", "```bash", f"ganzoo translate {where} INPUT_FOLDER -o OUTPUT_FOLDER", "```", ""]
        if getattr(model.generator, "two_way", False):  # CycleGAN: A to B by default, B to A with reverse
            use[1] = "outputs = gan.translate(images)  # domain A to B; reverse=True: B to A"
            use[5] = f"ganzoo translate {where} INPUT_FOLDER -o OUTPUT_FOLDER  # --reverse: B to A"
        shown = "![inputs and outputs](samples.png)"
    else:
        what = f"A {model.architecture} generator of {h}x{w} images with {c} channel{'s' if c > 1 else ''}" \
               + (f", conditioned on {model.num_classes} classes" if model.num_classes else "")
        use = ["images = gan.sample(16, seed=0)  # (16, C, H, W) in [-1, 1]", "```", "", "```bash",
               f"ganzoo sample {where} -n 64 -o grid.png", "```", ""]
        shown = "![samples](samples.png)"
    lines = ["---", _front_matter(model, training, metrics).strip(), "---", "", f"# {title}", "",
             what + ", trained and saved with [ganzoo](https://pypi.org/project/ganzoo/).", "",
             shown, "", "## Use", "", "```python", "import ganzoo", "", f'gan = ganzoo.load("{where}")', *use]
    if metrics:
        lines += ["## Evaluation", "", "| metric | value | how it was measured |", "| --- | --- | --- |"]
        for metric in metrics:
            how = _measured(metric.get("provenance", {}))
            lines.append(f"| {_label(metric)} | {_number(metric['value'])} | {how} |")
        lines += ["", "The full provenance of each value is in the metadata above (`metric_config`) and in "
                  "`config.json`.", ""]
    terms = _data_terms(training)
    if terms is not None:
        lines += ["## Training data: licence and attribution", "",
                  f"The training data ({dataset}) is licensed {terms['license']} ({terms['url']}). "
                  f"{terms['attribution']}."]
        if terms.get("note"):
            lines += ["", f"{terms['note'][:1].upper()}{terms['note'][1:]}."]
        lines.append("")
    if training:
        lines += ["## Training", "", "| setting | value |", "| --- | --- |"]
        lines += [f"| {key} | {value} |" for key, value in training.items() if not isinstance(value, dict)]
        command = train_command(model, training)
        if command:
            lines += ["", "Train it again (the same config and recipe; results vary with the hardware):", "",
                      "```bash", command, "```"]
        recipe = training.get("recipe")
        if isinstance(recipe, dict):
            lines += ["", "Recipe (the shared ganzoo trainer's settings):", "", "```json",
                      json.dumps(recipe, indent=2), "```"]
        lines.append("")
    lines += ["## Config", "", "```json", json.dumps(model.config.to_dict(), indent=2), "```", "",
              "Weights are safetensors only: `generator.safetensors` (the EMA generator when training kept one) and "
              "`discriminator.safetensors`.", ""]
    return "\n".join(lines)

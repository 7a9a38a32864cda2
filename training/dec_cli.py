"""`agriland train-dec`: pretrain the convolutional autoencoder and run DEC clustering on a folder of tiles."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.dec_config import BACKBONES, POOLINGS, PROFILES, get_profile


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agriland train-dec", description=__doc__)
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="tiles: a synthetic/EuroSAT-style folder, an image folder or a pairs CSV",
    )
    parser.add_argument("--run", type=Path, default=Path("runs/dec"), help="run folder for outputs (default runs/dec)")
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="quick",
        help="tiny: seconds (tests); quick: ~5 min on 2 CPU cores; full: the workflow's sizes (GPU)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the run folder's checkpoints (autoencoder epochs, DEC iteration)",
    )
    group = parser.add_argument_group("overrides (default: the profile's value)")
    group.add_argument("--tile-size", type=int, help="64..256, a multiple of 32")
    group.add_argument("--max-tiles", type=int, help="use at most this many tiles (seeded sample)")
    group.add_argument("--clusters", "-k", dest="n_clusters", type=int, help="number of clusters K")
    group.add_argument("--backbone", choices=BACKBONES)
    group.add_argument("--pooling", choices=POOLINGS, help="backbone features -> hidden Dense: flatten or avg")
    group.add_argument(
        "--train-backbone",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train the backbone during pretraining (--no-train-backbone: calibrate BatchNorm, freeze)",
    )
    group.add_argument("--encoder-weights", help="local weights file for the backbone (default: random init)")
    group.add_argument(
        "--head",
        choices=("pca", "mlp", "lda"),
        help="efficientnet-lite0: PCA-whitening head (default), a ReLU dense head on the features, "
        "or the linear discriminant head (labelled class folders only)",
    )
    group.add_argument("--views", type=int, choices=(1, 2, 4), help="efficientnet-lite0: flips averaged (4)")
    group.add_argument("--hidden-units", type=int, help="width of the dense layer after the backbone")
    group.add_argument("--embedding-dim", type=int, help="embedding size D")
    group.add_argument("--ae-epochs", type=int, help="autoencoder pretraining epochs")
    group.add_argument("--ae-batch-size", type=int)
    group.add_argument("--max-iter", type=int, help="DEC self-training iterations (batches)")
    group.add_argument("--update-interval", type=int, help="recompute the target distribution every N iterations")
    group.add_argument("--batch-size", type=int, help="DEC batch size")
    group.add_argument("--lr", dest="learning_rate", type=float, help="DEC SGD learning rate (0.01)")
    group.add_argument("--tol", type=float, help="stop when fewer than this fraction of assignments change")
    group.add_argument("--gamma", type=float, help="IDEC: weight of the reconstruction loss (0 = plain DEC)")
    group.add_argument("--alpha", type=float, help="Student-t degrees of freedom (1)")
    group.add_argument(
        "--no-augment", dest="augment", action="store_const", const=False, help="pretrain without augmentations"
    )
    group.add_argument("--seed", type=int)
    return parser


def main(argv: list[str] | None = None) -> int:
    from training.dec_run import SUMMARY_FILE, run_dec

    args = build_parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k not in {"data", "run", "profile", "resume"}}
    config = get_profile(args.profile).with_overrides(**overrides).validate()
    summary = run_dec(args.data, args.run, config, resume=args.resume, verbose=2)
    metrics = summary["metrics"]
    print(
        f"DEC: {summary['data']['n_tiles']} tiles -> K={config.n_clusters} clusters in "
        f"{summary['dec']['iterations']} iterations ({summary['dec']['stopped_by']})"
    )
    if "acc" in metrics:
        print(
            f"  against the known labels: ACC {metrics['acc']:.3f}  NMI {metrics['nmi']:.3f}  ARI {metrics['ari']:.3f}"
        )
    print(f"  run folder: {args.run} (inference_model.keras, assignments.csv, galleries/index.md, {SUMMARY_FILE})")
    print(
        f"  next: look at {args.run / 'galleries' / 'index.md'} and name clusters: "
        f"agriland clusters name 7=arable --run {args.run}"
    )
    return 0

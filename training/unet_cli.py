"""`agriland train-unet`: train the arable-land U-Net on image/mask pairs and evaluate it on a held-out split."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.seg_losses import LOSSES
from training.unet import ARCHS, ENCODER_ALIASES, ENCODERS
from training.unet_config import PROFILES, get_profile


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agriland train-unet", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="image/mask pairs: a pairs CSV (image,mask columns) or its folder")
    source.add_argument("--synthetic", type=int, metavar="N", help="generate N synthetic tiles with masks instead")
    parser.add_argument(
        "--run", type=Path, default=Path("runs/unet"), help="run folder for outputs (default runs/unet)"
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="quick",
        help="tiny: seconds (tests); quick: ~5 min on 2 CPU cores; full: the workflow's sizes (GPU)",
    )
    group = parser.add_argument_group("overrides (default: the profile's value)")
    group.add_argument(
        "--arch",
        choices=ARCHS,
        help="unet: segmentation-models U-Net; handbuilt: the workflow's InceptionV3 + Conv2DTranspose decoder",
    )
    group.add_argument(
        "--encoder",
        choices=(*ENCODERS, *ENCODER_ALIASES),
        help="efficientnet-lite0 (default; ImageNet weights from an installed package), inceptionv3, "
        "resnet50, vgg16, or none/untrained (plain conv U-Net encoder)",
    )
    group.add_argument(
        "--encoder-weights",
        help="local backbone weights file, e.g. a keras-applications *_notop.h5 "
        "(default: ImageNet for efficientnet-lite0, random init otherwise; "
        "nothing is downloaded)",
    )
    group.add_argument("--freeze-encoder-epochs", type=int, help="warm-up epochs with the encoder frozen")
    group.add_argument("--tile-size", type=int, help="a multiple of 32, >= 64")
    group.add_argument("--max-tiles", type=int, help="use at most this many pairs (seeded sample)")
    group.add_argument("--epochs", type=int)
    group.add_argument("--batch-size", type=int, help="16 as in the workflow")
    group.add_argument("--lr", dest="learning_rate", type=float, help="Adam learning rate (1e-3)")
    group.add_argument("--loss", choices=LOSSES, help="bce (default, as the workflow), bce_dice or focal")
    group.add_argument("--patience", type=int, help="early stopping patience on validation IoU (epochs)")
    group.add_argument("--val-fraction", type=float, help="share of tiles that picks the best epoch (0.15)")
    group.add_argument("--test-fraction", type=float, help="share of tiles held out for the final metrics (0.15)")
    group.add_argument("--bn-momentum", type=float, help="BatchNorm momentum (0.9 quick/tiny, 0.99 full)")
    group.add_argument("--threshold", type=float, help="probability threshold for the metrics (0.5)")
    group.add_argument("--overlays", dest="n_overlays", type=int, help="tiles in overlays.png")
    group.add_argument(
        "--no-augment",
        dest="augment",
        action="store_const",
        const=False,
        help="train without the joint image/mask augmentation",
    )
    group.add_argument("--seed", type=int)
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    from training.unet_data import load_segmentation_data
    from training.unet_train import SUMMARY_FILE, train_unet

    args = build_parser().parse_args(argv)
    skip = {"data", "synthetic", "run", "profile", "quiet"}
    overrides = {k: v for k, v in vars(args).items() if k not in skip}
    config = get_profile(args.profile).with_overrides(**overrides).validate()
    images, masks, info = load_segmentation_data(config, args.data, args.synthetic)
    summary = train_unet(images, masks, config, args.run, info, verbose=0 if args.quiet else 2)
    m = summary["metrics"]
    print(
        f"U-Net {summary['arch']}/{summary['encoder']} at {config.tile_size} px on {info['n_tiles']} tiles, "
        f"{summary['training']['epochs_run']} epochs ({summary['training']['fit_seconds']} s)"
    )
    print(
        f"  held-out {summary['metrics_split']} ({summary['data']['n_' + summary['metrics_split']]} tiles): "
        f"IoU {m['iou']:.3f}  F1 {m['f1']:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}  "
        f"pixel accuracy {m['pixel_accuracy']:.3f}"
    )
    print(f"  run folder: {args.run} (inference_model.keras, curve.png, overlays.png, {SUMMARY_FILE})")
    print(f"  next: agriland export unet --run {args.run}")
    return 0

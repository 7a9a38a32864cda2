"""The `agriland` console command: a thin dispatcher whose subcommands import their modules lazily."""

from __future__ import annotations

import importlib
import logging
import sys

from contract.errors import AgrilandError

# name -> ("module:function", help). Modules are imported only when their command runs, so serving
# commands never pull in TensorFlow.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("training.synthetic_cli:main", "write a synthetic farmland data set (scenes, tiles, masks)"),
    "via-to-masks": ("training.annotations_cli:main", "convert VGG Image Annotator JSON to PNG masks + pairs CSV"),
    "train-dec": ("training.dec_cli:main", "pretrain the autoencoder and run DEC clustering"),
    "clusters": ("training.clusters_cli:main", "inspect and name clusters (galleries, t-SNE, names)"),
    "mosaics": ("training.mosaics_cli:main", "arable-mask mosaics of real labeled tiles (split by source tile)"),
    "train-unet": ("training.unet_cli:main", "train the arable-land U-Net"),
    "train-fields": ("training.field_cli:main", "train the field model (interior / boundary) from field polygons"),
    "export": ("export.cli:main", "export a trained model to ONNX with a manifest"),
    "segment": ("agriland.segment_cli:main", "segment a GeoTIFF scene: mask GeoTIFF, GeoJSON, quick-look"),
    "batch": ("batch.cli:main", "segment many scenes on Ray Data: COGs, GeoParquet, run manifest, resume"),
    "client": ("agriland.client:main", "call a running agriland service"),
    "demo": ("agriland.demo:main", "post sample tiles and a scene to a running service and draw the result"),
    "quickstart": ("agriland.quickstart:main", "serve the release models (--rebuild: train the demonstration ones)"),
    "release": ("agriland.release_build:main", "release build --data DIR: train, measure, install the release models"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: agriland <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "Run `agriland <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand's `main(argv)`; user errors become one clear line and exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"agriland: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    target, _ = COMMANDS[name]
    module_name, func_name = target.split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        return int(func(rest) or 0)
    except AgrilandError as err:
        print(f"agriland {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

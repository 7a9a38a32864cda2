"""U-Net run configuration: one dataclass with `tiny` (tests), `quick` (2 CPU cores) and `full` (GPU) profiles."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from contract.errors import AgrilandError
from training.seg_losses import LOSSES, LossName
from training.unet import ARCHS, LITE0_DECODER_FILTERS, MIN_TILE, Arch, check_tile_size, normalize_encoder

MAX_TILE = 512


@dataclass(frozen=True)
class UnetConfig:
    """Everything that shapes a U-Net run: data size and split, model, loss and optimiser, outputs."""

    # data
    tile_size: int = 64
    max_tiles: int | None = None
    val_fraction: float = 0.15  # picks the best epoch (early stopping, checkpoint)
    test_fraction: float = 0.15  # held out: never trained on nor used to pick the checkpoint
    augment: bool = True
    photometric: bool = False  # colour/contrast/gamma jitter on top of the geometric augmentation
    min_crop_scale: float = 0.8  # random zoom: crops of this share of the tile edge, rescaled (scale augmentation)
    # model
    arch: Arch = "unet"
    encoder: str = "efficientnet-lite0"
    encoder_weights: str | None = None
    freeze_encoder_epochs: int = 0  # warm-up epochs with the encoder frozen (useful with pretrained weights)
    bn_momentum: float = 0.9  # BatchNorm moving-average momentum; Keras' 0.99 suits long runs only
    decoder_filters: tuple[int, ...] = LITE0_DECODER_FILTERS  # EfficientNet-Lite0 U-Net: widths of the 5 decoder stages
    # training
    loss: LossName = "bce"
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-3
    patience: int = 4  # early stopping on validation IoU
    threshold: float = 0.5
    # outputs
    n_overlays: int = 8
    seed: int = 0

    def validate(self) -> UnetConfig:
        """Raise AgrilandError naming the first bad field; return self for chaining."""
        check_tile_size(self.tile_size)
        if self.tile_size > MAX_TILE:
            raise AgrilandError(f"tile_size must be at most {MAX_TILE}, got {self.tile_size}")
        normalize_encoder(self.encoder)
        if self.arch not in ARCHS:
            raise AgrilandError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.arch == "handbuilt" and normalize_encoder(self.encoder) != "inceptionv3":
            raise AgrilandError(f"the hand-built U-Net has an InceptionV3 encoder; got encoder {self.encoder!r}")
        if self.loss not in LOSSES:
            raise AgrilandError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in ("epochs", "batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                raise AgrilandError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("freeze_encoder_epochs", "n_overlays"):
            if int(getattr(self, name)) < 0:
                raise AgrilandError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.freeze_encoder_epochs >= self.epochs:
            raise AgrilandError(
                f"freeze_encoder_epochs ({self.freeze_encoder_epochs}) must be smaller than epochs ({self.epochs})"
            )
        if self.max_tiles is not None and self.max_tiles < 4:
            raise AgrilandError(f"max_tiles must be >= 4, got {self.max_tiles}")
        fractions_ok = 0 < self.val_fraction < 1 and 0 <= self.test_fraction < 1
        if not fractions_ok or self.val_fraction + self.test_fraction >= 1:
            raise AgrilandError(
                f"val_fraction ({self.val_fraction}) must be in (0, 1), test_fraction "
                f"({self.test_fraction}) in [0, 1), and their sum below 1"
            )
        if not 0.2 <= self.min_crop_scale <= 1:
            raise AgrilandError(f"min_crop_scale must be in [0.2, 1], got {self.min_crop_scale}")
        if self.learning_rate <= 0:
            raise AgrilandError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 < self.bn_momentum < 1:
            raise AgrilandError(f"bn_momentum must be in (0, 1), got {self.bn_momentum}")
        if len(self.decoder_filters) != len(LITE0_DECODER_FILTERS) or min(self.decoder_filters) < 1:
            raise AgrilandError(
                f"decoder_filters must be {len(LITE0_DECODER_FILTERS)} positive widths, got {self.decoder_filters}"
            )
        if not 0 < self.threshold < 1:
            raise AgrilandError(f"threshold must be in (0, 1), got {self.threshold}")
        return self

    def to_dict(self) -> dict[str, object]:
        """Plain dict for training_summary.json."""
        return asdict(self)

    def with_overrides(self, **overrides: object) -> UnetConfig:
        """A copy with the non-None overrides applied (CLI flags left unset keep the profile's value)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise AgrilandError(f"unknown U-Net config field(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_QUICK = UnetConfig(
    tile_size=64,
    max_tiles=None,
    encoder="efficientnet-lite0",
    epochs=10,
    patience=4,
    freeze_encoder_epochs=1,
    batch_size=32,
    learning_rate=3e-4,
    photometric=True,
    min_crop_scale=0.5,
    loss="bce_dice",
)


PROFILES: dict[str, UnetConfig] = {
    # Seconds on a CPU: tests and pipeline smoke checks. The plain encoder keeps the model (and its ONNX) small.
    "tiny": UnetConfig(tile_size=MIN_TILE, encoder="none", epochs=2, patience=2, n_overlays=4),
    # Minutes on 2 CPU cores: the ImageNet EfficientNet-Lite0 encoder (frozen for the first epoch) under
    # segmentation-models' decoder blocks, 64 px mosaics of real tiles, photometric and scale augmentation.
    # Measured on 5,000 real-tile mosaics: lr 3e-4 reached held-out IoU 0.72 where 1e-3 stopped at 0.65.
    "quick": _QUICK,
    # The shipped release (agriland/release/unet): the quick recipe on every tile of a development set, with a
    # first decoder stage of 64 instead of 128 filters (its 3x3 conv on the 1,952 concatenated channels held 37 %
    # of the weights), so the three release models fit the package's 60 MB.
    "release": replace(_QUICK, epochs=12, decoder_filters=(64, 48, 32, 16, 16)),
    # The workflow's sizes, for a GPU: 256 px, every tile, up to 200 epochs with patience 20.
    "full": UnetConfig(
        tile_size=256,
        max_tiles=None,
        encoder="efficientnet-lite0",
        epochs=200,
        patience=20,
        freeze_encoder_epochs=2,
        bn_momentum=0.99,
        n_overlays=12,
        photometric=True,
        min_crop_scale=0.5,
    ),
}


def get_profile(name: str) -> UnetConfig:
    """The named profile; AgrilandError lists the choices for an unknown name."""
    if name not in PROFILES:
        raise AgrilandError(f"unknown U-Net profile {name!r}; choose one of {', '.join(sorted(PROFILES))}")
    return PROFILES[name]

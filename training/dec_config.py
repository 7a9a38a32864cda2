"""DEC run configuration: one dataclass with `quick` (2 CPU cores) and `full` (workflow, GPU) profiles."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

from contract.errors import AgrilandError

Backbone = Literal["efficientnet-lite0", "resnet50", "vgg16"]
BACKBONES: tuple[str, ...] = ("efficientnet-lite0", "resnet50", "vgg16")
# Backbones used as frozen, pretrained feature extractors: DEC trains a dense head on their pooled features.
FEATURE_BACKBONES: tuple[str, ...] = ("efficientnet-lite0",)
Pooling = Literal["flatten", "avg"]
POOLINGS: tuple[str, ...] = ("flatten", "avg")
MIN_TILE, MAX_TILE = 64, 256


@dataclass(frozen=True)
class DecConfig:
    """Everything that shapes a DEC run: data size, autoencoder, k-means and self-training."""

    # data
    tile_size: int = 64
    max_tiles: int | None = None
    # autoencoder
    backbone: Backbone = "efficientnet-lite0"
    encoder_weights: str | None = None  # None: ImageNet for efficientnet-lite0, random for the others; or a file
    views: int = 4  # efficientnet-lite0: features averaged over the tile and its flips (1, 2 or 4)
    # pretrained features -> embedding: PCA whitening, a ReLU Dense head, or (labelled tiles only) the linear
    # discriminant projection of the classes (the release DEC: clusters that keep the land covers apart)
    head: Literal["pca", "mlp", "lda"] = "pca"
    head_scale: float = 0.3  # PCA / LDA head: unit-variance components x this (sets the Student-t kernel's scale)
    pooling: Pooling = "flatten"  # last conv features -> hidden Dense: flattened (the workflow) or global average
    train_backbone: bool = True  # False: calibrate BatchNorm once, then train only the dense layers and decoder
    hidden_units: int = 256
    embedding_dim: int = 100
    ae_epochs: int = 3
    ae_batch_size: int = 32
    ae_learning_rate: float = 1e-3
    ae_patience: int = 3
    augment: bool = True
    # clustering
    n_clusters: int = 5
    kmeans_n_init: int = 10
    alpha: float = 1.0
    # self-training
    max_iter: int = 150
    update_interval: int = 30
    batch_size: int = 32
    learning_rate: float = 0.01
    optimizer: Literal["sgd", "adam"] = "sgd"  # DEC self-training optimiser
    momentum: float = 0.9
    tol: float = 0.001
    gamma: float = 0.0
    # outputs
    tsne_every: int = 3
    tsne_max_points: int = 1000
    gallery_size: int = 16
    seed: int = 0

    def validate(self) -> DecConfig:
        """Raise AgrilandError naming the first bad field; return self for chaining."""
        if not (MIN_TILE <= self.tile_size <= MAX_TILE) or self.tile_size % 32:
            raise AgrilandError(
                f"tile_size must be a multiple of 32 between {MIN_TILE} and {MAX_TILE}, got {self.tile_size}"
            )
        if self.backbone not in BACKBONES:
            raise AgrilandError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.head not in ("pca", "mlp", "lda"):
            raise AgrilandError(f"head must be pca, mlp or lda, got {self.head!r}")
        if self.head_scale <= 0:
            raise AgrilandError(f"head_scale must be > 0, got {self.head_scale}")
        if self.views not in (1, 2, 4):
            raise AgrilandError(f"views must be 1, 2 or 4, got {self.views}")
        if self.encoder_weights == "imagenet" and self.backbone not in FEATURE_BACKBONES:
            raise AgrilandError(
                f"no ImageNet weights can be downloaded for {self.backbone}: pass a local weights "
                f"file, or use --backbone efficientnet-lite0 (weights from an installed package)"
            )
        if self.pooling not in POOLINGS:
            raise AgrilandError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        positive = (
            "hidden_units",
            "embedding_dim",
            "ae_batch_size",
            "n_clusters",
            "kmeans_n_init",
            "update_interval",
            "batch_size",
            "gallery_size",
        )
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise AgrilandError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("ae_epochs", "max_iter", "ae_patience", "tsne_every"):
            if int(getattr(self, name)) < 0:
                raise AgrilandError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.kmeans_n_init < 10:
            raise AgrilandError(f"kmeans_n_init must be >= 10 (k-means restarts), got {self.kmeans_n_init}")
        if self.max_tiles is not None and self.max_tiles < 1:
            raise AgrilandError(f"max_tiles must be >= 1, got {self.max_tiles}")
        for name in ("alpha", "learning_rate", "ae_learning_rate"):
            if float(getattr(self, name)) <= 0:
                raise AgrilandError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.momentum < 1:
            raise AgrilandError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.optimizer not in ("sgd", "adam"):
            raise AgrilandError(f"optimizer must be sgd or adam, got {self.optimizer!r}")
        if self.tol < 0 or self.gamma < 0:
            raise AgrilandError(f"tol and gamma must be >= 0, got tol={self.tol}, gamma={self.gamma}")
        return self

    def to_dict(self) -> dict[str, object]:
        """Plain dict for training_summary.json."""
        return asdict(self)

    def with_overrides(self, **overrides: object) -> DecConfig:
        """A copy with the non-None overrides applied (CLI flags left unset keep the profile's value)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise AgrilandError(f"unknown DEC config field(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_QUICK = DecConfig(
    tile_size=64,
    max_tiles=None,
    views=4,
    embedding_dim=64,
    ae_epochs=0,
    augment=False,
    optimizer="adam",
    learning_rate=1e-4,
    batch_size=256,
    max_iter=3000,
    update_interval=140,
    n_clusters=50,
    tsne_every=10,
)


PROFILES: dict[str, DecConfig] = {
    # Seconds on a CPU: for tests and smoke checks of the whole pipeline, not for real clusters.
    "tiny": DecConfig(
        tile_size=64,
        max_tiles=None,
        views=2,
        hidden_units=32,
        embedding_dim=16,
        ae_epochs=1,
        ae_batch_size=16,
        max_iter=4,
        update_interval=2,
        batch_size=16,
        n_clusters=5,
        tsne_every=1,
        gallery_size=8,
    ),
    # A few minutes on 2 CPU cores: frozen ImageNet EfficientNet-Lite0 features of each 64 px tile and its
    # flips, a PCA-whitening head (the closed-form linear autoencoder), then DEC with Adam 1e-4. K=50 (several
    # clusters per land-cover class) names cropland better than K=10 (docs/dec_evaluation.md).
    "quick": _QUICK,
    # The shipped release (agriland/release/dec), trained on a labelled development set: the quick recipe with the
    # linear discriminant head. On held-out EuroSAT tiles (K=50 k-means, names by majority) cropland recall rose
    # from 0.84-0.87 (PCA head) to 0.95 at a false-cropland rate of 0.01-0.02; K from 10 to 80 measured alike.
    "release": replace(_QUICK, head="lda", head_scale=0.5),
    # The workflow's sizes, for a GPU: 256 px tiles, K=100, target updated every 100 iterations.
    "full": DecConfig(
        tile_size=256,
        max_tiles=None,
        views=4,
        embedding_dim=64,
        ae_epochs=0,
        augment=False,
        optimizer="adam",
        learning_rate=1e-4,
        batch_size=256,
        max_iter=20000,
        update_interval=100,
        n_clusters=100,
        tsne_every=20,
    ),
}


def get_profile(name: str) -> DecConfig:
    """The named profile; AgrilandError lists the choices for an unknown name."""
    if name not in PROFILES:
        raise AgrilandError(f"unknown DEC profile {name!r}; choose one of {', '.join(sorted(PROFILES))}")
    return PROFILES[name]

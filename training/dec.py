"""DEC self-training: k-means initialisation, target distribution updates, KL loss, tol stop, checkpoints."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras
from sklearn.cluster import KMeans
from tqdm import tqdm

from contract.errors import AgrilandError
from training.autoencoder import Autoencoder
from training.cluster_metrics import evaluate_clustering
from training.clustering_layer import ClusteringLayer, target_distribution
from training.dec_config import DecConfig

log = logging.getLogger(__name__)

DEC_WEIGHTS = "dec_weights.h5"  # legacy HDF5, matched by layer order
DEC_STATE = "dec_state.json"
DEC_OPTIMIZER = "dec_optimizer"  # tf.train.Checkpoint prefix of the optimizer state
# Called at every target update: (iteration, embeddings [N, D], assignments [N]).
UpdateHook = Callable[[int, np.ndarray, np.ndarray], None]


@dataclass
class DecResult:
    """Where self-training ended and what it produced."""

    iteration: int
    start_iteration: int
    stopped_by: str
    embeddings: np.ndarray
    q: np.ndarray
    assignments: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)


def build_dec_model(encoder: tf_keras.Model, n_clusters: int, alpha: float = 1.0) -> tf_keras.Model:
    """The inference model: uint8 `image` in; `embedding` [N, D] and `q` [N, K] out."""
    q = ClusteringLayer(n_clusters, alpha=alpha, name="q")(encoder.output)
    return tf_keras.Model(encoder.input, [encoder.output, q], name="dec")


def kmeans_init(z: np.ndarray, n_clusters: int, n_init: int, seed: int) -> KMeans:
    """scikit-learn k-means on the embeddings (n_init restarts); its centres seed the clustering layer."""
    if n_clusters > len(z):
        raise AgrilandError(f"n_clusters ({n_clusters}) is larger than the number of tiles ({len(z)})")
    return KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(z)


class DecTrainer:
    """Runs DEC (or IDEC with gamma > 0) on one autoencoder; checkpoints let a later run resume."""

    def __init__(self, ae: Autoencoder, config: DecConfig, checkpoint_dir: Path) -> None:
        self.ae = ae
        self.config = config
        self.checkpoint_dir = checkpoint_dir
        self.model = build_dec_model(ae.encoder, config.n_clusters, config.alpha)
        outputs = [self.model.get_layer("q").output]
        losses: list[str] = ["kld"]
        weights = [1.0]
        if config.gamma > 0:  # IDEC: keep the decoder's reconstruction loss to preserve local structure
            outputs.append(ae.autoencoder.output)
            losses.append("mse")
            weights.append(config.gamma)
        self.train_model = tf_keras.Model(self.model.input, outputs, name="dec_train")
        self.train_model.compile(
            optimizer=(
                tf_keras.optimizers.Adam(config.learning_rate)
                if config.optimizer == "adam"
                else tf_keras.optimizers.SGD(config.learning_rate, momentum=config.momentum)
            ),
            loss=losses,
            loss_weights=weights,
        )

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, q) for every tile."""
        z, q = self.model.predict(images, batch_size=max(64, self.config.batch_size), verbose=0)
        return np.asarray(z, np.float32), np.asarray(q, np.float32)

    def _save(self, iteration: int, assignments: np.ndarray, history: list[dict[str, float]]) -> None:
        """Weights and state, each written to a temporary file first and then renamed."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tmp_weights = self.checkpoint_dir / "dec_weights.partial.h5"
        self.train_model.save_weights(str(tmp_weights))
        tmp_weights.replace(self.checkpoint_dir / DEC_WEIGHTS)
        # The optimizer's moments/momentum too, so a resumed run continues the same trajectory.
        self._optimizer_checkpoint().write(str(self.checkpoint_dir / DEC_OPTIMIZER))
        state = {
            "iteration": iteration,
            "n_clusters": self.config.n_clusters,
            "gamma": self.config.gamma,
            "assignments": assignments.tolist(),
            "history": history,
        }
        tmp_state = self.checkpoint_dir / (DEC_STATE + ".tmp")
        tmp_state.write_text(json.dumps(state), encoding="utf-8")
        tmp_state.replace(self.checkpoint_dir / DEC_STATE)

    def _optimizer_checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(optimizer=self.train_model.optimizer)

    def _load(self, n_tiles: int) -> tuple[int, np.ndarray, list[dict[str, float]]] | None:
        state_path = self.checkpoint_dir / DEC_STATE
        if not state_path.is_file() or not (self.checkpoint_dir / DEC_WEIGHTS).is_file():
            return None
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("n_clusters") != self.config.n_clusters or len(state.get("assignments", [])) != n_tiles:
            raise AgrilandError(
                f"{state_path} was written for K={state.get('n_clusters')} and {len(state.get('assignments', []))} "
                f"tiles, not K={self.config.n_clusters} and {n_tiles}; use a new --run folder or drop --resume"
            )
        if (
            float(state.get("gamma", 0.0)) > 0
            and self.config.gamma <= 0
            or (self.config.gamma > 0 and float(state.get("gamma", 0.0)) <= 0)
        ):
            raise AgrilandError(f"{state_path}: DEC and IDEC (--gamma) checkpoints are not interchangeable")
        self.train_model.load_weights(str(self.checkpoint_dir / DEC_WEIGHTS))
        if (self.checkpoint_dir / f"{DEC_OPTIMIZER}.index").is_file():
            # Build the slots now so the restore is immediate (a deferred one would read the file after the
            # next _save has overwritten it).
            self.train_model.optimizer.build(self.train_model.trainable_variables)
            self._optimizer_checkpoint().read(str(self.checkpoint_dir / DEC_OPTIMIZER)).expect_partial()
            log.info("DEC: optimizer state restored from %s", self.checkpoint_dir / DEC_OPTIMIZER)
        return int(state["iteration"]), np.asarray(state["assignments"], np.int64), list(state.get("history", []))

    def _initialise(self, images: np.ndarray) -> np.ndarray:
        z = self.predict(images)[0]
        log.info(
            "DEC: k-means (K=%d, n_init=%d) on %d embeddings of size %d",
            self.config.n_clusters,
            self.config.kmeans_n_init,
            len(z),
            z.shape[1],
        )
        km = kmeans_init(z, self.config.n_clusters, self.config.kmeans_n_init, self.config.seed)
        self.model.get_layer("q").set_weights([km.cluster_centers_.astype(np.float32)])
        return km.labels_.astype(np.int64)

    def run(
        self,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        resume: bool = False,
        on_update: UpdateHook | None = None,
    ) -> DecResult:
        """Self-train until fewer than `tol` of the assignments change between updates, or `max_iter`."""
        cfg, n = self.config, len(images)
        loaded = self._load(n) if resume else None
        if loaded is None:
            iteration, history = 0, []
            y_last = self._initialise(images)
        else:
            iteration, y_last, history = loaded
            log.info("DEC: resumed from %s at iteration %d", self.checkpoint_dir, iteration)
        start = iteration
        order = np.random.default_rng(cfg.seed).permutation(n)
        p: np.ndarray | None = None
        stopped_by = "max_iter"
        bar = tqdm(total=max(cfg.max_iter - start, 0), desc="DEC", unit="it", leave=False)
        while True:
            if p is None or iteration % cfg.update_interval == 0 or iteration >= cfg.max_iter:
                z, q = self.predict(images)
                y = q.argmax(axis=1)
                delta = float(np.mean(y != y_last))
                entry = {"iteration": float(iteration), "delta": delta}
                if labels is not None:
                    entry.update(evaluate_clustering(labels, y))
                if p is not None or not history:
                    history.append(entry)
                    log.info(
                        "DEC: iteration %d, changed %.4f%s",
                        iteration,
                        delta,
                        "".join(f", {k} {v:.3f}" for k, v in entry.items() if k in ("acc", "nmi", "ari")),
                    )
                    if on_update is not None:
                        on_update(iteration, z, y)
                converged = p is not None and iteration > start and delta < cfg.tol
                y_last, p = y, target_distribution(q)
                self._save(iteration, y_last, history)
                if converged:
                    stopped_by = "tol"
                    log.info(
                        "DEC: stopped at iteration %d: %.4f < tol %.4f of assignments changed",
                        iteration,
                        delta,
                        cfg.tol,
                    )
                    break
                if iteration >= cfg.max_iter:
                    break
            batch = order[np.arange(iteration * cfg.batch_size, (iteration + 1) * cfg.batch_size) % n]
            x = images[batch]
            if cfg.gamma <= 0:
                targets = [p[batch]]
            else:  # IDEC reconstruction target: pixels in [0, 1], or the feature vectors themselves
                targets = [p[batch], x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x]
            loss = self.train_model.train_on_batch(x, targets)
            iteration += 1
            bar.update(1)
            bar.set_postfix(loss=float(np.ravel(loss)[0]))
        bar.close()
        return DecResult(
            iteration=iteration,
            start_iteration=start,
            stopped_by=stopped_by,
            embeddings=z,
            q=q,
            assignments=y_last,
            history=history,
        )

"""What a training run hands to export about its data: the typed `data` block of training_summary.json."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SyntheticTiles(BaseModel):
    """A run trained on freshly generated synthetic tiles: export regenerates the same set from these two numbers."""

    n_tiles: int = Field(ge=1)
    seed: int


class RunData(BaseModel):
    """The `data` block of a run summary: where the training tiles came from (a path, or a synthetic set)."""

    model_config = ConfigDict(extra="allow")  # counts, split, class names: recorded, not read back by export

    source: str = ""  # a folder or pairs CSV readable by training.data.load_tiles, or a label of the synthetic set
    synthetic: SyntheticTiles | None = None

    @classmethod
    def of_synthetic(cls, n_tiles: int, seed: int) -> RunData:
        """The data block of a run on `n_tiles` synthetic tiles generated with `seed`."""
        return cls(
            source=f"synthetic:{n_tiles} tiles (seed {seed})", synthetic=SyntheticTiles(n_tiles=n_tiles, seed=seed)
        )

    @classmethod
    def of_summary(cls, summary: dict) -> RunData:
        """The data block of a run summary (empty when the summary has none)."""
        return cls.model_validate(summary.get("data") or {})

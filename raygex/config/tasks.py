"""Task specs: the ``tasks:`` entries of a config, as pydantic models (a bad field is named in the error).

What each kind predicts is described in :mod:`raygex.data.tasks`, which turns a spec into arrays.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassifyTask(_Spec):
    """Predict a categorical label column."""

    name: str
    kind: Literal["classify"] = "classify"
    label: str
    min_samples_per_class: int = Field(10, ge=1)
    where: dict[str, Union[str, list[str]]] = Field(default_factory=dict)


class GeneInputs(_Spec):
    """Which genes a single-gene task sees (``graph`` names the graph used by ``neighbors`` and ``bfs``)."""

    mode: Literal["neighbors", "bfs", "all", "landmark"] = "all"
    size: int | None = Field(None, ge=1)
    graph: str | None = None
    landmark_file: str | None = None

    @field_validator("graph", mode="before")
    @classmethod
    def _graph_name(cls, value):
        # YAML reads an unquoted graph name `true` as a boolean.
        return str(value).lower() if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _check(self) -> "GeneInputs":
        if self.mode in ("neighbors", "bfs") and not self.graph:
            raise ValueError(f"inputs.graph is required for mode {self.mode!r}")
        if self.mode == "bfs" and self.size is None:
            raise ValueError("inputs.size (the number of BFS genes) is required for mode 'bfs'")
        if self.mode == "landmark" and not self.landmark_file:
            raise ValueError("inputs.landmark_file is required for mode 'landmark'")
        return self


class SingleGeneTask(_Spec):
    """Predict whether ``gene`` is above its (training) mean from other genes."""

    name: str
    kind: Literal["single_gene"] = "single_gene"
    gene: str
    inputs: GeneInputs = Field(default_factory=GeneInputs)


TaskSpec = Annotated[Union[ClassifyTask, SingleGeneTask], Field(discriminator="kind")]

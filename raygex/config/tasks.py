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

    name: str = Field(description="The task's name, unique in the config: names its study folder, its results and "
                      "its key under `reference`.")
    kind: Literal["classify"] = Field("classify", description="`classify`: predict the classes of a label column. "
                                      "Required in every `tasks` entry: it selects the entry's kind.")
    label: str = Field(description="The dataset's label column to predict (its values, as strings, are the classes); "
                       "samples whose label is missing or empty are dropped.")
    min_samples_per_class: int = Field(10, ge=1, description="Classes with fewer samples (after `where`) are dropped "
                                       "with their samples; at least 2 classes must remain.")
    where: dict[str, Union[str, list[str]]] = Field(
        default_factory=dict, description="Keep only the samples whose label column `column` has one of the given "
        "values (`{column: value}` or `{column: [value, ...]}`, compared as strings; every column must match), "
        "e.g. one TCGA cohort. Empty: every sample.")


class GeneInputs(_Spec):
    """Which genes a single-gene task sees (``graph`` names the graph used by ``neighbors`` and ``bfs``)."""

    mode: Literal["neighbors", "bfs", "all", "landmark"] = Field(
        "all", description="The input genes: `neighbors`: the target's first-degree neighbours in `graph`; `bfs`: "
        "the first `size` genes of a breadth-first search from the target in `graph`; `all`: every gene of the "
        "dataset; `landmark`: the genes listed in `landmark_file` (e.g. the 978 L1000 landmarks). The target itself "
        "is always input 0, its values masked to zero.")
    size: int | None = Field(None, ge=1, description="The most input genes, the target included: required for "
                             "`bfs`; for `neighbors` a cap (null: every neighbour); ignored by `all` and `landmark`.")
    graph: str | None = Field(None, description="A graph name of `graphs` whose edges `neighbors` and `bfs` follow "
                              "(required for those modes).")
    landmark_file: str | None = Field(None, description="Path of a text file of gene symbols, one a line (`#` "
                                      "starts a comment line), for mode `landmark` (required there); genes absent "
                                      "from the dataset are skipped.")

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

    name: str = Field(description="The task's name, unique in the config: names its study folder, its results and "
                      "its key under `reference`.")
    kind: Literal["single_gene"] = Field("single_gene", description="`single_gene`: predict whether `gene` is above "
                                         "its mean over the training samples, from other genes. Required in every "
                                         "`tasks` entry: it selects the entry's kind.")
    gene: str = Field(description="The target gene's symbol, a gene of the dataset.")
    inputs: GeneInputs = Field(default_factory=GeneInputs, description="Which genes the models see.")


TaskSpec = Annotated[Union[ClassifyTask, SingleGeneTask], Field(discriminator="kind")]

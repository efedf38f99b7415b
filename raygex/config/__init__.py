"""Experiment configs (``configs/*.yaml``): one pydantic model, so a bad key is named in the error.

Relative paths are resolved against the current working directory (as Ray Tune does for storage paths), so
``raygex search configs/demo.yaml`` run from the repository root reads ``data/demo/...``. ``--set a.b=value``
overrides any value before validation, so configs need no machine-specific paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Optional, Union

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from raygex.config.config_file import read_config_file
from raygex.config.tasks import ClassifyTask, SingleGeneTask, TaskSpec
from raygex.errors import ConfigError
from raygex.graphs.controls import CONTROL_KINDS, RESERVED_GRAPH_NAMES, control_choices
from raygex.metrics import MODE


def _control_kind(kind: str) -> str:
    """A ``controls:`` entry: a kind of the control registry."""
    if kind not in CONTROL_KINDS:
        raise ValueError(f"controls must be among {list(CONTROL_KINDS)}, but got {kind!r}")
    return kind


ControlKind = Annotated[str, AfterValidator(_control_kind)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Model):
    expression: str = Field(description="Dataset from `raygex data import` (a Parquet file or folder of parts): a "
                            "path, relative to the working directory, or an s3:// or gs:// URI.")
    in_memory_budget_mb: float = Field(1024.0, gt=0, description="MiB: a study whose sets (train + valid + test rows × "
                                       "input genes, float32) exceed it streams batches to its trials from Ray "
                                       "Datasets (no cross-validation then); below it, trials share arrays zero-copy.")
    read_in_driver_mb: float = Field(256.0, ge=0, description="MiB: a dataset whose matrix (samples × genes, float32) "
                                     "fits is read into the driver, which cuts small studies' sets from it (cheaper "
                                     "than Ray Data tasks); else Ray Data tasks read each study's rows; 0: always.")


AUTO_FOLDS = 5
AUTO_FOLDS_BELOW = 500  # labelled samples; at 500, one 20 % validation split holds 100 samples


class SplitConfig(_Model):
    train: Union[int, float, list[Union[int, float]]] = Field(
        0.6, description="Training-set size: a count (int) or a fraction of the task's samples (float in (0, 1)); a "
        "list of sizes (the low-data protocol) makes one study per size, `<task>-n<size>`.")
    valid: Union[int, float] = Field(0.2, description="Validation-set size, a count or a fraction (0: none).")
    test: Union[int, float, None] = Field(None, description="Test-set size, a count or a fraction (> 0); null: every "
                                          "sample train and valid leave.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1, description="Split seeds, each "
                             "resampling train and valid (never test): the sweep uses the first, the evaluation, graph "
                             "swap and verdict all (a verdict needs 2: split-to-split variance).")
    test_seed: int = Field(0, description="Seed of the test set, drawn once and kept for every split seed.")
    folds: Union[int, Literal["auto"], None] = Field("auto", description=(
        "Cross-validation: each trial trains on `folds` (≥ 2) stratified folds of the labelled (train + valid, never "
        f"test) samples, reporting the mean validation metric and its standard error. `auto`: {AUTO_FOLDS} folds below "
        f"{AUTO_FOLDS_BELOW} labelled samples (too few to rank on one split) or with `valid: 0`, else one split (a "
        "class rarer than the folds is validated in as many folds as it has samples); null: one split."))

    @field_validator("folds")
    @classmethod
    def _folds(cls, folds):
        if isinstance(folds, int) and not isinstance(folds, bool) and folds < 2:
            raise ValueError(f"split.folds must be at least 2 (or auto, or null for one split), but got {folds}")
        return folds

    @field_validator("test")
    @classmethod
    def _test(cls, test):
        # the evaluation, the graph swap and the verdict all score on the held-out test set: without one there is
        # nothing they could score honestly (validation data chose the winner, so it cannot judge it)
        if test is not None and test <= 0:
            raise ValueError(f"split.test must be positive (a fraction or a count of samples), but got {test}: the "
                             "evaluation, the graph swap and the verdict score each model on a test set that "
                             "selection never sees; to score on samples kept elsewhere, export the winner and run "
                             "'raygex predict' on them")
        return test

    @model_validator(mode="after")
    def _validation_somewhere(self) -> "SplitConfig":
        if self.folds is None and self.valid == 0:
            raise ValueError("split.valid is 0 and split.folds is null: there is no validation data; set "
                             "split.folds (cross-validation) or a validation size")
        return self

    def fold_count(self, n_labelled: int) -> int | None:
        """How many folds a study with ``n_labelled`` labelled samples uses (None: one train/valid split)."""
        if self.folds == "auto":
            return AUTO_FOLDS if (n_labelled < AUTO_FOLDS_BELOW or self.valid == 0) else None
        return self.folds

    @field_validator("train")
    @classmethod
    def _sizes(cls, train):
        if isinstance(train, list):
            if not train:
                raise ValueError("split.train must not be an empty list")
            if len(set(train)) != len(train):
                raise ValueError(f"split.train sizes must be distinct, but got {train}")
        return train

    @property
    def train_sizes(self) -> list[Union[int, float]]:
        return list(self.train) if isinstance(self.train, list) else [self.train]


class Study(NamedTuple):
    """One search: a task at one training-set size (``name`` is ``<task>-n<size>`` when there are several)."""

    name: str
    task: Union[ClassifyTask, SingleGeneTask]
    train: Union[int, float]


class TrainConfig(_Model):
    """Fixed training settings shared by every trial (the search varies the model's hyperparameters)."""

    max_epochs: int = Field(60, ge=1, description="The most epochs a trial trains.")
    patience: int = Field(10, ge=1, description="Epochs without a better validation `metric` before a trial stops.")
    batch_size: int = Field(32, ge=1, description="Samples per minibatch of the families Adam trains (GCN, MLP; "
                            "logistic regression on a streamed study only); `search.space` may vary it.")
    metric: Literal["auc", "accuracy", "balanced_accuracy", "loss"] = Field(
        "auc", description="Validation metric picking a trial's best epoch and stopping it early: `auc` (macro "
        "one-vs-rest ROC AUC), `accuracy`, `balanced_accuracy`, `loss` (cross-entropy, lower is better).")
    batched_folds: bool = Field(False, description="Train a cross-validated trial's folds as one batched model, not "
                                "one by one (equal to float tolerance; `raygex bench folds` says which is faster).")


class SchedulerConfig(_Model):
    kind: Literal["asha", "fifo"] = Field("asha", description="`asha`: Ray's ASHA stops unpromising trials at rungs "
                                          "(reduction factor 4); `fifo`: no early stopping by the scheduler.")
    grace_period: int = Field(5, ge=1, description="Epochs before ASHA may stop a trial: the first rung (then 4×, 16×, "
                              "... it, up to `max_epochs`).")
    max_epochs: int | None = Field(None, ge=1, description="The epoch at which ASHA ends every trial (max_t); null: "
                                   "`train.max_epochs`.")
    rungs: Literal["family", "study"] = Field("study", description="Whom ASHA ranks a trial against at a rung: `study` "
                                              "(every trial, as Ray's ASHAScheduler) or `family` (its model family's: "
                                              "a slow learner is not stopped for being slow).")


class SearchConfig(_Model):
    metric: str = Field("valid_auc", description="The metric trials are ranked on: `valid_` + `train.metric`.")
    num_samples: int = Field(16, ge=1, description="Trials per study (a task at one training-set size), at least the "
                             "start trials; capped at a finite space's size. `--num-samples` overrides it.")
    max_concurrent: int = Field(2, ge=1, description="Trials at once in the whole experiment: every study's sweep runs "
                                "side by side and draws from this one budget (raygex.search.slots).")
    max_concurrent_per_study: Optional[int] = Field(None, ge=1, description="Caps one study's share (null: no own "
                                                    "cap).")
    studies_at_once: Optional[int] = Field(None, ge=1, description="Studies sweeping at once (null: all; 1: one after "
                                           "another).")
    seed: int = Field(0, description="Seed of each study's Optuna TPE sampler.")
    start_trials: Literal["choices", "families"] = Field(
        "choices", description="Tried before TPE samples: `choices` (one trial per baseline family and GCN graph and "
        "control) or `families` (one per model family: graphs and controls are then scored by the graph swap alone; "
        "report and verdict hold all).")
    family_budget: Literal["dimensions", "equal", "tpe"] = Field(
        "dimensions", description="How trials are split between model families: `dimensions` (in proportion to the "
        "parameters each searches, at least 3 each where its space allows), `equal` (the same number each), each "
        "family with a TPE of its own; or `tpe` (one TPE samples `model` like any parameter, and may spend most "
        "trials on one family).")
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig, description="Early stopping of trials.")
    checkpoint_every: int = Field(5, ge=1, description="Epochs between trial checkpoints (failures, `raygex resume`).")
    checkpoint_min_s: float = Field(2.0, ge=0, description="Seconds at least between a trial's checkpoints (the last "
                                    "epoch and ASHA's stopping epochs always checkpoint): each copies to storage and "
                                    "snapshots Tune's state, which can cost more than 5 epochs of 10 ms.")
    max_failures: int = Field(3, ge=0, description="Restarts of a failed trial (its node lost, or it raised) from its "
                              "last checkpoint: preemptible nodes may be lost more than once.")
    select: Literal["one_se", "best"] = Field("one_se", description=(
        "Winner among real choices (controls never win): `one_se`, the simplest configuration (LR < MLP < GCN, then "
        "fewer parameters) within one standard error of the best (one split has none: the best), or `best`."))
    optuna_storage: Optional[str] = Field(None, description="Where studies' Optuna studies are saved (optuna-dashboard "
                                          "reads them): an RDB URL (e.g. postgresql://...); null: `<study>/optuna.db`.")
    space: dict[str, Any] = Field(default_factory=dict, description="Parameter → a list or `{choice: [...]}`, `{int: "
                                  "[lo, hi]}`, `{float: [lo, hi]}`, `{loguniform: [lo, hi]}`, `{logint: [lo, hi]}` or "
                                  "a constant; `model` picks families (gcn, mlp, lr), `graph: all` is every graph and "
                                  "control. Empty: the standard space.")


def standard_space(has_graphs: bool) -> dict:
    """The search space used when a config gives none: every family (the GCN on every graph and control when
    there are graphs), with the ranges the shipped configs use."""
    space = {"model": ["gcn", "mlp", "lr"] if has_graphs else ["mlp", "lr"],
             "depth": {"int": [1, 3]}, "channels": {"choice": [8, 16, 32]}, "embedding": {"choice": [1, 4, 8]},
             "dropout": {"float": [0.0, 0.5]}, "hidden": {"choice": [64, 256]},
             "lr": {"loguniform": [1.0e-4, 1.0e-2]}, "weight_decay": {"loguniform": [1.0e-8, 1.0e-3]},
             "C": {"loguniform": [1.0e-4, 1.0e4]}}  # logistic regression's only parameter (scikit-learn's Cs range)
    if has_graphs:
        space["graph"] = "all"
    return space


class ResourcesConfig(_Model):
    cpu: float = Field(1.0, gt=0, description="Ray CPUs per trial and later-stage training; torch threads: this "
                       "rounded down (≥ 1).")
    gpu: float = Field(0.0, ge=0, description="Ray GPUs per trial and later-stage training; a fraction shares a device "
                       "(0.5: two trials a GPU, each held to half its memory).")
    memory_mb: Union[Literal["auto"], Annotated[float, Field(gt=0)], None] = Field(None, description=(
        "MiB Ray reserves per trial and later-stage training: a node runs only as many at once as its memory holds "
        "and Ray queues the rest instead of its OOM monitor killing them; `auto`: each configuration's own estimate "
        "(its network, batch and the study's genes; see Search); null: none."))

    def ray_resources(self) -> dict:
        """The per-trial request in Tune's form (``cpu``, ``gpu``, a fixed ``memory_mb`` in bytes)."""
        out = {"cpu": self.cpu, "gpu": self.gpu}
        if self.fixed_memory_mb is not None:
            out["memory"] = int(self.fixed_memory_mb * 2**20)
        return out

    @property
    def fixed_memory_mb(self) -> float | None:
        """``memory_mb`` when it is one figure for every trial (not ``auto``, not null)."""
        return None if self.memory_mb in (None, "auto") else float(self.memory_mb)


class WandbConfig(_Model):
    project: str = Field("raygex", description="The W&B project of the runs.")
    mode: Literal["offline", "online", "disabled"] = Field("offline", description=(
        "`offline` (runs kept in `<experiment>/wandb/`), `online` or `disabled`; WANDB_MODE, if set, wins."))


class ExperimentConfig(_Model):
    name: str = Field(description="Experiment name: its folder is `<storage>/<name>/`. `--name` overrides it.")
    data: DataConfig = Field(description="The expression dataset.")
    graphs: dict[str, str] = Field(default_factory=dict, description="Gene graphs, name → path or URI of a graph file "
                                   "(`raygex graph import` formats). Names are GCN `graph` choices: no `:`, not "
                                   "random, empty or coexpression.")
    controls: list[ControlKind] = Field(default_factory=list, description=(
        "Controls for every graph (needs `graphs`, 2 split seeds): `random`, each graph's own degree-preserving "
        "rewiring on the study's input genes (`<graph>:random`, new per split seed); `empty`, no edges; "
        "`coexpression`, each gene's top-`coexpression_k` absolute correlations over the seed's training rows."))
    coexpression_k: int = Field(10, ge=1, description="Neighbours per gene of the `coexpression` control.")
    tasks: list[TaskSpec] = Field(min_length=1, description="What to predict: tasks of `kind` classify or single_gene, "
                                  "names unique.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="How each task's samples are split.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Fixed training settings of every trial.")
    search: SearchConfig = Field(default_factory=SearchConfig, description="The hyperparameter search.")
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig, description="Ray resources per trial.")
    storage: str = Field("results", description="Where experiments live: a folder, file://, s3://bucket/prefix or "
                         "gs://bucket/prefix. `--storage` overrides it.")
    wandb: WandbConfig = Field(default_factory=WandbConfig, description="Weights & Biases logging.")
    reference: dict[str, dict[str, float]] = Field(default_factory=dict, description="Published numbers shown beside "
                                                   "ours in the report: `{task: {model family: test metric}}`.")

    @field_validator("graphs")
    @classmethod
    def _graph_names(cls, graphs: dict[str, str]) -> dict[str, str]:
        clash = set(graphs) & set(RESERVED_GRAPH_NAMES)
        if clash:
            raise ValueError(f"graph names {sorted(clash)} are reserved for controls")
        for name in graphs:
            if ":" in name:
                raise ValueError(f"graph names must not contain ':' (control names use it), but got {name!r}")
        return graphs

    @model_validator(mode="after")
    def _check(self) -> "ExperimentConfig":
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, but got {names}")
        unknown = sorted(set(self.reference) - set(names))
        if unknown:
            raise ValueError(f"reference names unknown task(s) {unknown} (tasks: {names})")
        wanted = f"valid_{self.train.metric}"
        if self.search.metric != wanted:
            known = [f"valid_{m}" for m in MODE]
            if self.search.metric not in known:
                raise ValueError(f"search.metric must be one of {known}, but got {self.search.metric!r}")
            raise ValueError(f"search.metric must be {wanted!r} (trials track the best epoch of train.metric "
                             f"{self.train.metric!r} only), but got {self.search.metric!r}")
        if self.controls and not self.graphs:
            raise ValueError("controls are compared with the configured graphs: add a graph under 'graphs'")
        if self.controls and len(self.split.seeds) < 2:
            raise ValueError(f"split.seeds must hold at least 2 seeds for a graph-vs-control verdict (controls are "
                             f"configured), but got {self.split.seeds}")
        if "coexpression" in self.controls:
            counts = [size for size in self.split.train_sizes if not isinstance(size, float) or size >= 1]
            if counts and int(min(counts)) < 3:
                raise ValueError(f"controls: coexpression needs at least 3 training samples per split, but "
                                 f"split.train is {min(counts)}")
        if not self.search.space:
            self.search.space = standard_space(bool(self.graphs))
        return self

    def studies(self) -> list[Study]:
        """Every study of the experiment, task by task, smallest training set first."""
        sizes = self.split.train_sizes
        if len(sizes) == 1:
            return [Study(task.name, task, sizes[0]) for task in self.tasks]
        return [Study(f"{task.name}-n{size:g}", task, size) for task in self.tasks for size in sizes]

    def study(self, name: str) -> Study:
        for study in self.studies():
            if study.name == name:
                return study
        raise ConfigError(f"task {name!r} is not in the config (tasks: {[s.name for s in self.studies()]})")

    def task(self, name: str):
        """The task spec of a task or study name."""
        for task in self.tasks:
            if task.name == name:
                return task
        return self.study(name).task

    def train_size(self, name: str) -> Union[int, float]:
        """The training-set size of a task or study name."""
        return self.study(name).train

    def graph_choices(self) -> list[str]:
        """Every graph a GCN trial may use: the configured graphs, then the controls (``<graph>:random`` for each
        graph, ``empty``, ``coexpression``)."""
        return list(self.graphs) + control_choices(list(self.graphs), self.controls)


def _string_keys(node: Any) -> Any:
    """YAML reads the key ``true`` (a natural graph name) as a boolean: keys are names, so make them strings."""
    if isinstance(node, dict):
        return {(str(k).lower() if isinstance(k, bool) else k): _string_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_string_keys(v) for v in node]
    return node


def _parse_value(text: str) -> Any:
    """YAML scalar parsing, plus plain floats YAML 1.1 misses (``1e-3`` is a string to PyYAML)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a raw config dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set needs key.path=value, but got {item!r}")
        key, value = item.split("=", 1)
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_value(value)
    return raw


def _format_validation_error(err: ValidationError, path) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif first["type"] == "value_error":  # our own validators: their message is the whole story
        message = message.removeprefix("Value error, ")
    more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{path}: {where}: {message}{more}" if where else f"{path}: {message}{more}"


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read, override and validate a YAML experiment config."""
    raw = _string_keys(apply_overrides(read_config_file(path), overrides or []))
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, path)) from None


def metric_name(config: ExperimentConfig) -> str:
    """The selection metric without its split prefix ("auc" for ``search.metric: valid_auc``)."""
    return config.search.metric.removeprefix("valid_")


def selection_column(config: ExperimentConfig) -> str:
    """The leaderboard / Tune column the search optimises: each trial's best validation metric."""
    return f"best_{config.search.metric}"


def selection_mode(config: ExperimentConfig) -> str:
    """"max" or "min": which direction of :func:`selection_column` is better."""
    return MODE[metric_name(config)]

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
    expression: str
    # A study whose sets (train + valid + test rows x input genes, float32) exceed this many MiB streams batches to
    # its trials from Ray Datasets in the object stores; below it, trials share in-memory arrays zero-copy.
    in_memory_budget_mb: float = Field(1024.0, gt=0)
    # A dataset whose whole expression matrix (samples x genes, float32) is at most this many MiB is read once into
    # the driver, which cuts every small study's sets from it (Ray Data's tasks cost more than they save there);
    # above it the driver never holds the matrix and Ray Data reads each study's rows in tasks. 0: always Ray Data.
    read_in_driver_mb: float = Field(256.0, ge=0)


AUTO_FOLDS = 5
AUTO_FOLDS_BELOW = 500  # labelled samples; at 500, one 20 % validation split holds 100 samples


class SplitConfig(_Model):
    # A list of training-set sizes (the low-data protocol) gives each (task, size) its own study.
    train: Union[int, float, list[Union[int, float]]] = 0.6
    valid: Union[int, float] = 0.2
    test: Union[int, float, None] = None
    # Split seeds resample training and validation; the test set is drawn once (test_seed) and kept for every
    # seed. A graph verdict needs at least two seeds (split-to-split variance); five by default.
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1)
    test_seed: int = 0
    # Cross-validated selection: each trial trains on `folds` stratified folds of the labelled (train + valid,
    # never test) samples and reports the mean validation metric over folds and its standard error. `auto`
    # (default): AUTO_FOLDS folds when a study has fewer than AUTO_FOLDS_BELOW labelled samples (there one
    # validation split is too small to rank configurations) or `valid: 0`, else one split (a class rarer than the
    # folds is validated in as many folds as it has samples); null: always one split.
    folds: Union[int, Literal["auto"], None] = "auto"

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

    max_epochs: int = Field(60, ge=1)
    patience: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    metric: Literal["auc", "accuracy", "balanced_accuracy", "loss"] = "auc"
    # Cross-validated trials: train the k fold networks as one batched model (raygex.training.fold_group) instead of
    # one after another. Same results within float tolerance; `raygex bench folds` says which is faster where.
    batched_folds: bool = False


class SchedulerConfig(_Model):
    kind: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(5, ge=1)
    max_epochs: int | None = None
    # Whom ASHA ranks a trial against at a rung: `family` (the trials of its own model family, so a family that
    # learns slowly is not stopped for being slow) or `study` (every trial, Ray's ASHAScheduler as it is).
    rungs: Literal["family", "study"] = "study"


class SearchConfig(_Model):
    metric: str = "valid_auc"
    num_samples: int = Field(16, ge=1)
    # Trials running at once in the whole experiment: every study's sweep runs side by side and draws from this one
    # budget (raygex.search.slots). `max_concurrent_per_study` caps one study's share (None: no cap of its own);
    # `studies_at_once` caps how many studies sweep at the same time (None: all of them; 1: one after another).
    max_concurrent: int = Field(2, ge=1)
    max_concurrent_per_study: Optional[int] = Field(None, ge=1)
    studies_at_once: Optional[int] = Field(None, ge=1)
    seed: int = 0
    # What the sweep tries first, before TPE samples: `choices` (one trial per baseline family and per GCN graph
    # and control) or `families` (one per model family; every graph's and control's figures then come from the
    # graph swap alone). Either way the report and the verdict hold every baseline, graph and control.
    start_trials: Literal["choices", "families"] = "choices"
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    checkpoint_every: int = Field(5, ge=1)  # epochs between trial checkpoints (failures, resume)
    # ... and seconds at least between them (the last epoch always checkpoints): each costs a copy to storage and a
    # snapshot of Tune's experiment state, which for 10-ms epochs every 5 epochs cost more than the training
    checkpoint_min_s: float = Field(2.0, ge=0)
    # Times a failed trial is started again from its last checkpoint (its node was lost, or it raised): a trial on
    # a cluster of preemptible nodes may lose its node more than once.
    max_failures: int = Field(3, ge=0)
    # How the winner is chosen among real choices (controls never win): `one_se` (the simplest configuration
    # within one standard error of the best) or `best` (see raygex.analysis.leaderboard).
    select: Literal["one_se", "best"] = "one_se"
    # Where each study's Optuna study is saved after its sweep (optuna-dashboard, optuna.visualization read it): an
    # RDB URL (e.g. postgresql://... on a cluster), or by default SQLite in the study folder (<study>/optuna.db).
    optuna_storage: Optional[str] = None
    space: dict[str, Any] = Field(default_factory=dict)


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
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)
    # Memory Ray reserves for each trial and each later-stage training (MiB): a node then runs only as many at once
    # as its memory resource holds, and Ray queues the rest instead of its out-of-memory monitor killing them.
    memory_mb: Optional[float] = Field(None, gt=0)

    def ray_resources(self) -> dict:
        """The per-trial request in Tune's resource-dict form (``cpu``, ``gpu``, ``memory`` in bytes)."""
        out = {"cpu": self.cpu, "gpu": self.gpu}
        if self.memory_mb is not None:
            out["memory"] = int(self.memory_mb * 2**20)
        return out


class WandbConfig(_Model):
    project: str = "raygex"
    mode: Literal["offline", "online", "disabled"] = "offline"


class ExperimentConfig(_Model):
    name: str
    data: DataConfig
    graphs: dict[str, str] = Field(default_factory=dict)
    # Controls built the same way for every configured graph: `random` gives each graph its own degree-preserving
    # rewiring of the graph induced on the study's input genes (choice `<graph>:random`, new for every split seed);
    # `empty` one edgeless graph; `coexpression` the top-`coexpression_k` absolute correlations of each gene over
    # the training rows of the split seed.
    controls: list[ControlKind] = Field(default_factory=list)
    coexpression_k: int = Field(10, ge=1)
    tasks: list[TaskSpec] = Field(min_length=1)
    split: SplitConfig = Field(default_factory=SplitConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    storage: str = "results"
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    # Published numbers to show beside ours in the report: {task: {model family: test metric}}.
    reference: dict[str, dict[str, float]] = Field(default_factory=dict)

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
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path=path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML ({str(err).splitlines()[0]})", path=path) from None
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a mapping of keys to values", path=path)
    raw = _string_keys(apply_overrides(raw, overrides or []))
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

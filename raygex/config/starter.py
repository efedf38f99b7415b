"""`raygex config new`: a commented starter config from a dataset's label columns and the graphs given.

This module decides and writes; it reads nothing. :mod:`raygex.data.survey` describes the dataset's label
columns (:class:`LabelColumn`) and the graphs (:class:`GraphSummary`), and :func:`starter_yaml` turns both into
YAML text with a comment on every section, which ``raygex search`` accepts as it is: one ``classify`` task per
label column that can be one (:func:`choose_tasks`: at least 2 classes of ``min_samples_per_class`` samples, not
an id, not a measurement), the graphs with ``controls: [random, empty]``, a split sized from the sample count,
and the standard search space (:func:`raygex.config.standard_space`).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

import yaml

from raygex.config import AUTO_FOLDS, AUTO_FOLDS_BELOW, SplitConfig, standard_space
from raygex.errors import ConfigError
from raygex.graphs.controls import control_choices

MIN_SAMPLES_PER_CLASS = 10  # ClassifyTask's default: rarer classes are dropped from the task
MAX_INTEGER_CLASSES = 12  # an integer column with more distinct values is a measurement (age, a count)
NEAR_UNIQUE = 0.5  # more distinct values than this share of the labelled samples: an id, not classes
# A column named like an id (patient_id, bcr_patient_barcode, sampleID, donor): never a task, even with repeats
ID_NAME = re.compile(r"(^|[^a-z0-9])(id|ids|uuid|barcode|accession)$|^(sample|patient|case|subject|donor)s?$")
CAMEL_ID = re.compile(r"[a-z](ID|Id)$")
SMALL_COHORT = 150  # the smallest task below this many samples: 30 % test (a verdict needs test samples)
CONTROLS = ["random", "empty"]
SHOWN_CLASSES = 6


@dataclass(frozen=True)
class LabelColumn:
    """One label column of a dataset: its Arrow kind, how many samples have a value, its value counts."""

    name: str
    kind: str  # "text", "integer", "bool" or "float"
    present: int  # samples with a (non-empty) value
    counts: dict[str, int] = field(default_factory=dict)  # value (as build_task reads it: str) -> samples
    integral: bool = True  # for "float": every value is a whole number (an integer column with gaps)


@dataclass(frozen=True)
class DatasetSummary:
    path: str
    samples: int
    genes: int
    columns: list[LabelColumn]


@dataclass(frozen=True)
class GraphSummary:
    name: str
    path: str
    nodes: int  # graph nodes among the dataset's genes
    edges: int  # edges between two of the dataset's genes


@dataclass(frozen=True)
class StarterTask:
    name: str
    column: LabelColumn
    classes: dict[str, int]  # kept (at least MIN_SAMPLES_PER_CLASS samples)
    rare: dict[str, int]  # dropped

    @property
    def samples(self) -> int:
        return sum(self.classes.values())


def skip_reason(column: LabelColumn, min_per_class: int = MIN_SAMPLES_PER_CLASS) -> str | None:
    """Why ``column`` makes no classification task (None: it makes one)."""
    if ID_NAME.search(column.name.lower()) or CAMEL_ID.search(column.name):
        return "named like an id"
    if column.present == 0:
        return "no values"
    distinct = len(column.counts)
    if column.kind == "float" and not (column.integral and distinct <= MAX_INTEGER_CLASSES):
        return "numeric (a measurement, not classes)"
    if column.kind == "integer" and distinct > MAX_INTEGER_CLASSES:
        return f"numeric ({distinct} distinct integers: a measurement, not classes)"
    if distinct > 1 and distinct > NEAR_UNIQUE * column.present:
        return f"near-unique ({distinct} distinct values in {column.present} samples: an id, not classes)"
    kept = [c for c, n in column.counts.items() if n >= min_per_class]
    if len(kept) < 2:
        return (f"{len(kept)} class(es) with at least {min_per_class} samples (of {distinct} distinct values); a "
                "classification task needs 2")
    return None


def task_name(column: str, taken: set[str]) -> str:
    """A task name from a column name: letters, digits, ``_``, ``-``, ``.`` (it names folders), unique."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", column).strip("_.-") or "task"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def choose_tasks(columns: list[LabelColumn], min_per_class: int = MIN_SAMPLES_PER_CLASS
                 ) -> tuple[list[StarterTask], dict[str, str]]:
    """One classification task per suitable label column, and every other column with why it was skipped."""
    tasks, skipped, taken = [], {}, set()
    for column in columns:
        reason = skip_reason(column, min_per_class)
        if reason:
            skipped[column.name] = reason
            continue
        ordered = sorted(column.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        tasks.append(StarterTask(task_name(column.name, taken), column,
                                 {c: n for c, n in ordered if n >= min_per_class},
                                 {c: n for c, n in ordered if n < min_per_class}))
    return tasks, skipped


def starter_split(tasks: list[StarterTask]) -> dict:
    """Fractions of each task's samples; the test set is the rest (fractions that add up to 1 can overflow a
    task's samples by rounding). Small cohorts keep 30 % for the test set, larger ones 20 %."""
    small = min(task.samples for task in tasks) < SMALL_COHORT
    return {"train": 0.5 if small else 0.6, "valid": 0.2, "test": None, "seeds": [0, 1, 2, 3, 4], "test_seed": 0,
            "folds": "auto"}


def start_trials(space: dict, graphs: list[str], controls: list[str]) -> int:
    """Trials tried before TPE samples (``search.start_trials: choices``): one per baseline family, and the GCN
    on every graph and control."""
    models = space["model"] if isinstance(space["model"], list) else [space["model"]]
    return sum(m != "gcn" for m in models) + (len(graphs) + len(control_choices(graphs, controls))
                                              if "gcn" in models else 0)


def _flow(value) -> str:
    """``value`` as one line of YAML (flow style, quoted where YAML needs it)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False).strip()
    return text.removesuffix("\n...").strip()  # a lone scalar ends its document with "..."


def _classes(counts: dict[str, int]) -> str:
    shown = ", ".join(f"{c} {n}" for c, n in list(counts.items())[:SHOWN_CLASSES])
    return shown + (f", +{len(counts) - SHOWN_CLASSES} more" if len(counts) > SHOWN_CLASSES else "")


def _one_line(text: str) -> str:
    """``text`` safe inside a one-line comment (a line break in a column name would end the comment)."""
    return "".join(c if c.isprintable() else " " for c in str(text))


def _labelled(fraction: float, n: int) -> int:
    return max(1, int(round(fraction * n)))


SPACE_NOTES = {
    "model": "gcn: graph convolutions; mlp: perceptron; lr: logistic regression",
    "graph": "the GCN's graph: all = every graph above and every control",
    "depth": "GCN: graph-convolution layers",
    "channels": "GCN: channels per gene",
    "embedding": "GCN: learned gene-embedding size (1: the expression value alone)",
    "dropout": "GCN node dropout (growing with depth) / MLP dropout",
    "hidden": "MLP: width of its 2 hidden layers",
    "lr": "Adam's learning rate (GCN, MLP)",
    "weight_decay": "L2 penalty (GCN, MLP)",
    "C": "logistic regression: inverse L2 strength, its only parameter",
}
WIDTH = 116


def _comment(text: str, indent: str = "") -> list[str]:
    """``text`` as comment lines of at most :data:`WIDTH` characters."""
    return textwrap.wrap(text, WIDTH, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# ",
                         break_on_hyphens=False, break_long_words=False)


def starter_yaml(dataset: DatasetSummary, graphs: list[GraphSummary], *, name: str, version: str = "") -> str:
    """The starter config's text; a dataset where no label column makes a task is a :class:`ConfigError`."""
    tasks, skipped = choose_tasks(dataset.columns)
    if not tasks:
        why = "; ".join(f"{_one_line(c)}: {r}" for c, r in skipped.items()) or "it has no label columns"
        raise ConfigError(f"no label column makes a classification task ({why})", path=dataset.path)
    controls = CONTROLS if graphs else []
    space = standard_space(bool(graphs))
    space = {key: space[key] for key in ("model", "graph") if key in space} | space  # the choices first
    first = start_trials(space, [g.name for g in graphs], controls)
    split = starter_split(tasks)
    made_by = "`raygex config new`" + (f" (raygex {version})" if version else "")
    out = _comment(f"A starter config for {dataset.path} ({dataset.samples} samples x {dataset.genes} genes), "
                   f"written by {made_by}. Read the comments, edit freely, then run `raygex search THIS_FILE` "
                   "(--set key.path=value overrides any value for one run). Relative paths are resolved against "
                   "the folder you run raygex from.")
    out += [""] + _comment("The experiment's name: its folder is <storage>/<name>, which `raygex status` and "
                           "`raygex resume` take.") + [f"name: {_flow(name)}", ""]
    out += _comment("The canonical dataset (`raygex data import`): samples x genes, with label columns.")
    out += ["data:", f"  expression: {_flow(dataset.path)}", ""]
    if graphs:
        out += _comment("Gene graphs the GCN may use, by name: raygex graphs (`raygex graph import`) or graph "
                        "files. Among the dataset's genes: " + "; ".join(f"{g.name} has {g.nodes} nodes and "
                                                                         f"{g.edges} edges" for g in graphs) + ".")
        out += ["graphs:"] + [f"  {_flow(g.name)}: {_flow(g.path)}" for g in graphs] + [""]
        out += _comment("Controls, built the same way for every graph above: `random` gives each graph its own "
                        "degree-preserving rewiring of the graph induced on a study's input genes (the choice "
                        "`<graph>:random`, drawn anew for every split seed); `empty` is one edgeless graph. The "
                        "verdict compares each graph with each of its controls.")
        out += [f"controls: {_flow(controls)}", ""]
    else:
        out += _comment("No graphs were given (`raygex config new DATASET --graph NAME=PATH`): the search compares "
                        "the MLP and logistic regression only. Add `graphs: {name: path}` and `controls: [random, "
                        "empty]` (and `gcn` to search.space.model) to search GCNs.") + [""]
    out += _comment("Tasks: one classification per label column with at least 2 classes of min_samples_per_class "
                    f"({MIN_SAMPLES_PER_CLASS}) samples; rarer classes and samples without a label are left out of "
                    "the task.")
    if skipped:
        out += ["# Label columns left out:"]
        out += [f"#   {_one_line(column)}: {reason}" for column, reason in skipped.items()]
    out += ["# A single-gene task (is a gene above its training mean, from the other genes?) would read:",
            "#   - {name: sgi_GENE, kind: single_gene, gene: GENE, inputs: {mode: all}}", "tasks:"]
    for task in tasks:
        missing = dataset.samples - task.column.present
        notes = [f"{len(task.classes)} classes, {task.samples} samples: {_classes(task.classes)}"]
        if task.rare:
            notes.append(f"dropped as rare: {_classes(task.rare)}")
        if missing:
            notes.append(f"{missing} samples without a label")
        spec = {"name": task.name, "kind": "classify", "label": task.column.name,
                "min_samples_per_class": MIN_SAMPLES_PER_CLASS}
        out += _comment("; ".join(notes), "  ") + [f"  - {_flow(spec)}"]
    out += [""] + _split_comment(split, tasks) + [f"split: {_flow(split)}", ""]
    out += _comment("Every trial's training: at most max_epochs epochs, stopped after `patience` epochs without a "
                    "better validation metric (auc, accuracy, balanced_accuracy or loss; the trial's result is its "
                    "best epoch's).")
    out += [f"train: {_flow({'max_epochs': 60, 'patience': 10, 'batch_size': 32, 'metric': 'auc'})}", ""]
    out += _comment(f"The search, per task: the first {first} trials try each model family" + (
        ", and the GCN on each graph and control," if graphs else "") + " once; then Optuna's TPE proposes "
        "configurations from the space, and ASHA stops unpromising trials at its rungs (grace_period epochs, then "
        "x4). max_concurrent: trials at once in the whole experiment (a resume may change it). select: one_se "
        "takes the simplest configuration within one standard error of the best (controls never win).")
    out += ["search:", f"{'  metric: valid_auc':<40}# train.metric on validation data",
            f"{f'  num_samples: {max(16, first + 8)}':<40}# trials per task",
            "  max_concurrent: 2", "  select: one_se", "  scheduler: {kind: asha, grace_period: 5}",
            "  space:                                # a list is a choice; {int|float|loguniform: [low, high]}"]
    width = max(len(f"    {key}: {_flow(value)}") for key, value in space.items())
    out += [f"{f'    {key}: {_flow(value)}':<{width}}  # {SPACE_NOTES[key]}" if key in SPACE_NOTES
            else f"    {key}: {_flow(value)}" for key, value in space.items()]
    out += [""] + _comment("What each trial asks of a node: CPUs, a share of a GPU (a resume may change it).")
    out += ["resources: {cpu: 1, gpu: 0}", ""]
    out += _comment("Where experiments live: a folder, or an s3:// or gs:// URI (--storage overrides it).")
    out += ["storage: results", ""]
    out += _comment("Weights & Biases: offline runs in <experiment>/wandb; online needs WANDB_API_KEY; disabled "
                    "logs none.")
    out += ["wandb: {project: raygex, mode: offline}"]
    return "\n".join(out) + "\n"


def _split_comment(split: dict, tasks: list[StarterTask]) -> list[str]:
    """What the split means for each task: its labelled samples, and folds or one train/valid split."""
    config = SplitConfig(**split)
    lines = _comment("The split of each task's samples: train and valid are fractions, the test set is the rest, "
                     "drawn once (test_seed) and kept for every split seed; the seeds resample train and valid (a "
                     f"verdict needs 2). folds: auto cross-validates the labelled (train + valid) samples in "
                     f"{AUTO_FOLDS} folds when a study has fewer than {AUTO_FOLDS_BELOW}, else uses one split:")
    for task in tasks:
        labelled = _labelled(split["train"], task.samples) + _labelled(split["valid"], task.samples)
        folds = config.fold_count(labelled)
        how = f"{folds} folds" if folds else "one train/valid split"
        lines.append(f"#   {task.name}: {labelled} labelled, {task.samples - labelled} test; {how}")
    return lines

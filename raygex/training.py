"""The training loop: train one model on one split, honestly, and report per-epoch metrics through a callback.

Honesty rules from the seed paper's defects: the seed is set before the model is built; training batches are
reshuffled every epoch; early stopping keeps a deep copy of the best epoch's weights and restores it; metrics
are computed on probabilities; the test split is evaluated once, at the end, on the restored model.
"""

from __future__ import annotations

import dataclasses
import random
import warnings
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from raygex.metrics import classification_metrics, is_better

def default_hyperparameters(model: str = "gcn") -> dict:
    """A trial's defaults for ``model``: the config's ``train`` section defaults, seed 0, and the family's
    hyperparameters from the model registry (the one place defaults live)."""
    from raygex.config import TrainConfig
    from raygex.models.registry import model_defaults

    return {**TrainConfig().model_dump(), "seed": 0, "model": model, **model_defaults(model)}


def with_defaults(hparams: dict) -> dict:
    """``hparams`` over the defaults of its family (``model``, default gcn)."""
    return {**default_hyperparameters(str(hparams.get("model", "gcn"))), **hparams}


@dataclass
class TrialData:
    """A split task in memory: raw inputs per split, labels, input genes, classes and (for GCNs) the graph."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    genes: list[str]
    classes: list[str]
    graph: object | None = None  # raygex.graphs.align.AlignedGraph over ``genes``
    mean: np.ndarray | None = None  # set once the arrays are standardised (see :meth:`standardised`)
    std: np.ndarray | None = None
    test_ids: list[str] | None = None  # sample ids of the test rows (the study's fixed test set)

    @classmethod
    def from_task(cls, task, split, labels, graph=None) -> "TrialData":
        """Slice a :class:`raygex.tasks.TaskData` by a split (labels from ``task.split``)."""
        return cls(task.x[split.train], labels[split.train], task.x[split.valid], labels[split.valid],
                   task.x[split.test], labels[split.test], list(task.genes), list(task.classes), graph,
                   test_ids=[str(s) for s in task.sample_ids[split.test]])

    def standardised(self) -> "TrialData":
        """A copy with every split standardised by the training statistics, done once (e.g. by the search
        driver) so that trials share the arrays read-only instead of each making its own."""
        if self.mean is not None:
            return self
        mean, std = self.standardisation()

        def scale(x):
            return ((x - mean) / std).astype(np.float32)

        return dataclasses.replace(self, x_train=scale(self.x_train), x_valid=scale(self.x_valid),
                                   x_test=scale(self.x_test), mean=mean, std=std)

    def standardisation(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-gene mean and scale from the TRAINING rows only (constant genes get scale 1)."""
        mean = self.x_train.mean(axis=0, dtype=np.float64)
        std = self.x_train.std(axis=0, dtype=np.float64)
        std[std < 1e-8] = 1.0
        return mean.astype(np.float32), std.astype(np.float32)


@dataclass
class TrialResult:
    config: dict
    best_epoch: int
    epochs_run: int
    best_valid: dict
    test: dict
    history: list[dict]
    model: nn.Module
    mean: np.ndarray
    std: np.ndarray
    seconds: float
    device: str
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)


def pick_device(preferred: str | None = None) -> torch.device:
    """CUDA when torch can see a GPU (Ray may assign a logical GPU torch cannot see), else CPU."""
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_model(config: dict, n_genes: int, n_classes: int, graph) -> nn.Module:
    from raygex.models import FAMILIES

    family = config.get("model", "gcn")
    if family not in FAMILIES:
        raise ValueError(f"model must be one of {sorted(FAMILIES)}, but got {family!r}")
    return FAMILIES[family].build(with_defaults(config), n_genes, n_classes, graph)


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    model.eval()
    parts = [torch.softmax(model(x[i:i + batch_size]), dim=1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts).numpy() if parts else np.empty((0, 0), dtype=np.float32)


class TrainingState:
    """Everything a trial needs to continue exactly where it stopped (for Tune checkpoints and resume)."""

    def __init__(self, model: nn.Module, optimiser: torch.optim.Optimizer, shuffle: torch.Generator,
                 device: torch.device | None = None):
        self.model, self.optimiser, self.shuffle = model, optimiser, shuffle
        self.device = device or torch.device("cpu")
        self.epoch = 0
        self.best_value: float | None = None
        self.best_epoch = -1
        self.best_state: dict | None = None
        self.best_valid: dict = {}
        self.best_test: dict = {}
        self.stale = 0
        self.history: list[dict] = []

    def checkpoint(self) -> dict:
        """A torch-saveable dict; tensors are copied so later training cannot change it."""
        return {"model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
                "optimiser": self.optimiser.state_dict(), "shuffle": self.shuffle.get_state(),
                "torch_rng": torch.get_rng_state(), "epoch": self.epoch, "best_value": self.best_value,
                "best_epoch": self.best_epoch, "best_valid": self.best_valid, "best_test": self.best_test,
                "best_state": None if self.best_state is None else {k: v.cpu() for k, v in self.best_state.items()},
                "stale": self.stale, "history": list(self.history)}

    def restore(self, saved: dict, device: torch.device) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimiser.load_state_dict(saved["optimiser"])
        self.shuffle.set_state(saved["shuffle"])
        torch.set_rng_state(saved["torch_rng"])
        for key in ("epoch", "best_value", "best_epoch", "best_valid", "best_test", "stale", "history"):
            setattr(self, key, saved[key])
        self.best_state = None if saved["best_state"] is None else \
            {k: v.to(device) for k, v in saved["best_state"].items()}


def run_trial(config: dict, data: TrialData, report: Callable[[dict, TrainingState], None] | None = None,
              device: str | None = None, resume_from: dict | None = None) -> TrialResult:
    """Train ``config`` on ``data``; ``report(metrics, state)`` is called after every epoch.

    ``resume_from`` is a :meth:`TrainingState.checkpoint` dict: training continues from its epoch with the same
    weights, optimiser moments, shuffling and dropout random state. Test metrics are computed whenever the
    validation metric improves (so a trial stopped early by a scheduler still has the test score of its best
    epoch); selection never looks at them.
    """
    config = with_defaults(config)
    started = time.perf_counter()
    dev = pick_device(device)
    data = data.standardised()
    mean, std = data.mean, data.std

    def tensor(x):
        # Shared read-only arrays (Ray's object store) are wrapped, not copied, on the CPU.
        if not x.flags.writeable:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return torch.from_numpy(x).to(dev)
        return torch.from_numpy(x).to(dev)

    x_train, x_valid, x_test = tensor(data.x_train), tensor(data.x_valid), tensor(data.x_test)
    y_train = torch.from_numpy(np.asarray(data.y_train, dtype=np.int64)).to(dev)
    n_classes = len(data.classes)

    seed_everything(int(config["seed"]))  # before the model exists: initial weights follow the seed
    model = build_model(config, len(data.genes), n_classes, data.graph).to(dev)
    optimiser = torch.optim.Adam(model.parameters(), lr=float(config["lr"]),
                                 weight_decay=float(config["weight_decay"]))
    state = TrainingState(model, optimiser, torch.Generator().manual_seed(int(config["seed"])), dev)
    if resume_from is not None:
        state.restore(resume_from, dev)
    loss_fn = nn.CrossEntropyLoss()
    metric, patience = config["metric"], int(config["patience"])
    batch_size = int(config["batch_size"])
    finished_before = resume_from is not None and not (state.epoch < int(config["max_epochs"])
                                                       and state.stale < patience)

    while state.epoch < int(config["max_epochs"]) and state.stale < patience:
        model.train()
        order = torch.randperm(len(x_train), generator=state.shuffle).to(dev)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[rows]), y_train[rows])
            if not torch.isfinite(loss):
                # Say so instead of training on NaNs: the trial errors with this reason, the sweep goes on.
                raise FloatingPointError(f"training loss became {loss.item()} at epoch {state.epoch + 1} "
                                         f"(lr {float(config['lr']):g}); the trial is marked errored")
            loss.backward()
            optimiser.step()
        state.epoch += 1
        train_m = classification_metrics(data.y_train, predict_proba(model, x_train), n_classes)
        valid_m = classification_metrics(data.y_valid, predict_proba(model, x_valid), n_classes)
        row = {"epoch": state.epoch, **{f"train_{k}": v for k, v in train_m.items()},
               **{f"valid_{k}": v for k, v in valid_m.items()}}
        if is_better(valid_m[metric], state.best_value, metric):
            state.best_value, state.best_epoch, state.best_valid, state.stale = \
                valid_m[metric], state.epoch, valid_m, 0
            # A real copy: state_dict() returns references that later optimiser steps would overwrite.
            state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if len(data.y_test):
                state.best_test = classification_metrics(data.y_test, predict_proba(model, x_test), n_classes)
        else:
            state.stale += 1
        row[f"best_valid_{metric}"] = state.best_value
        row["best_epoch"] = state.best_epoch
        row.update({f"best_test_{k}": v for k, v in state.best_test.items()})
        state.history.append(row)
        if report is not None:
            report(row, state)
    if finished_before and state.history and report is not None:
        # Resumed from a checkpoint taken after the last epoch (a driver killed before it recorded the end): say
        # the final epoch's metrics again, so whoever collects reports sees where the trial really ended.
        report(state.history[-1], state)
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return TrialResult(config, state.best_epoch, state.epoch, state.best_valid, state.best_test, state.history,
                       model, mean, std, time.perf_counter() - started, str(dev),
                       stopped_early=state.epoch < int(config["max_epochs"]))

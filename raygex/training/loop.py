"""The training loop: train one model on one split, or one per cross-validation fold in lockstep, honestly, and
report per-epoch metrics through a callback.

Honesty rules from the seed paper's defects: the seed is set before the models are built; training batches are
reshuffled every epoch; early stopping keeps a deep copy of the best epoch's weights and restores it; metrics
are computed on probabilities; test metrics are those of the best-validation epoch and never steer anything.

With folds (:attr:`TrialData.folds`) every fold's model takes one epoch, then the epoch's validation metric is
the mean over folds (its standard error beside it); early stopping and the best epoch follow that mean, so all
folds stop at the same epoch, and the test probabilities are the mean of the folds' networks at that epoch. One
split is the one-fold case of the same loop, so a number means the same thing in a sweep, in ``raygex train``
and in the evaluation over split seeds.
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from raygex.data.trial_data import TrialData
from raygex.metrics import classification_metrics, is_better
from raygex.models.registry import solver_of
from raygex.training import convex as convex_fit
from raygex.training.convex import fit_logistic, l2_weight
from raygex.training.fold_group import BatchedFolds, NotBatchable, SequentialFolds
from raygex.training.optimiser import Adam

logger = logging.getLogger(__name__)

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
class TrialResult:
    config: dict
    best_epoch: int
    epochs_run: int
    best_valid: dict
    test: dict
    history: list[dict]
    model: nn.Module  # the (first) fold's network with its best weights
    mean: np.ndarray
    std: np.ndarray
    seconds: float
    device: str
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)
    test_proba: np.ndarray | None = None  # test-set probabilities: the mean over folds' best networks
    models: list = field(default_factory=list)  # every fold's network with its best weights


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


class FoldRun:
    """One fold's network, optimiser, shuffling generator and best weights, over that fold's arrays."""

    def __init__(self, config: dict, data: TrialData, n_classes: int, device: torch.device, shuffle_seed: int,
                 model: nn.Module | None = None, refit: bool = False):
        self.data = data
        self.device = device
        # A large study's sets are Ray Datasets (raygex.data.batches.StreamData): batches stream in every epoch
        # and are standardised here, on the device, by the training statistics; nothing is copied whole.
        self.streaming = bool(getattr(data, "streaming", False))
        if self.streaming:
            self.x_train = self.x_valid = self.x_test = None
            self.mean = torch.as_tensor(np.asarray(data.mean, dtype=np.float32)).to(device)
            self.std = torch.as_tensor(np.asarray(data.std, dtype=np.float32)).to(device)
            self.shuffle_seed = int(shuffle_seed)
        else:
            self.x_train, self.x_valid, self.x_test = (_tensor(a, device) for a in (data.x_train, data.x_valid,
                                                                                  data.x_test))
            self.y_train = torch.from_numpy(np.asarray(data.y_train, dtype=np.int64)).to(device)
            self.y_valid = torch.from_numpy(np.asarray(data.y_valid, dtype=np.int64)).to(device)
        self.model = (model if model is not None else build_model(config, len(data.genes), n_classes, data.graph)
                      ).to(device)
        # A convex family (logistic regression) is fitted to its optimum on the whole training set in one step;
        # streamed, it takes minibatch Adam on the same penalty (raygex.training.convex).
        convex = solver_of(str(config.get("model", "gcn"))) == "lbfgs"
        self.C = float(config["C"]) if convex else None
        self.convex, self.converged = convex and not self.streaming, False
        # one split with validation rows: once scored, refitted on them at the same C (LogisticRegressionCV's refit)
        self.refits = refit and self.convex and len(data.y_valid) > 0
        self.valid_proba: np.ndarray | None = None  # the train-only fit's validation probabilities (refits)
        weight_decay = l2_weight(self.C, len(data.y_train)) if convex else float(config["weight_decay"])
        # raygex's Adam: torch.optim.Adam's arithmetic without torch.optim's 1.5-s import (raygex.training.optimiser)
        self.optimiser = Adam(self.model.parameters(), lr=float(config["lr"]), weight_decay=weight_decay)
        self.shuffle = torch.Generator().manual_seed(shuffle_seed)
        self.best_state: dict | None = None
        self.seen: list = []  # the last epoch's (probabilities, labels) per training batch
        self.fit: dict | None = None  # a convex fit's solver summary (iterations, converged, objective)
        self.refit: dict | None = None  # the refit's summary, when it refits

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def _batches(self, batch_size: int, epoch: int):
        """The epoch's shuffled training batches (inputs standardised, labels) on the device."""
        if self.streaming:
            from raygex.data.batches import stream_batches

            seed = (self.shuffle_seed * 100_003 + epoch) % 2**31  # per epoch: a resumed trial sees the same order
            return ((self.standardise(b["x"]), b["y"])
                    for b in stream_batches(self.data, "train", batch_size, self.device, seed))
        order = torch.randperm(len(self.x_train), generator=self.shuffle).to(self.x_train.device)
        return ((self.x_train[rows], self.y_train[rows]) for rows in order.split(batch_size))

    def train_epoch(self, loss_fn, batch_size: int, epoch: int, lr: float) -> None:
        if self.convex:  # the whole fit, to the optimum: the one epoch this family has
            self.fit = fit_logistic(self.model.linear, self.x_train, self.y_train, self.C,
                                    max_iter=convex_fit.MAX_ITER)
            self.converged = True
            self.seen = [(torch.from_numpy(self.proba("train")), self.y_train)]
            if self.refits:
                self.valid_proba = self.proba("valid")  # what selection sees: the fit on the training rows
                self.refit = fit_logistic(self.model.linear, torch.cat([self.x_train, self.x_valid]),
                                          torch.cat([self.y_train, self.y_valid]), self.C,
                                          max_iter=convex_fit.MAX_ITER)
            for fit in self.fits():
                if fit["capped"]:
                    logger.warning(f"logistic regression (C = {self.C:g}) stopped at its cap of {fit['iterations']} "
                                   "L-BFGS iterations before converging; its trial keeps that fit")
            return
        self.model.train()
        finite, loss = torch.ones((), dtype=torch.bool, device=self.device), None
        seen = []
        for x, y in self._batches(batch_size, epoch):
            self.optimiser.zero_grad(set_to_none=True)
            logits = self.model(x)
            loss = loss_fn(logits, y)
            finite &= torch.isfinite(loss)  # on the device: no host sync per step (read once per epoch)
            loss.backward()
            self.optimiser.step()
            seen.append((torch.softmax(logits.detach(), dim=1), y))
        self.seen = seen
        if not bool(finite):
            # Say so instead of training on NaNs: the trial errors with this reason, the sweep goes on.
            raise FloatingPointError(f"training loss became {loss.item()} at epoch {epoch} (lr {lr:g}); "
                                     "the trial is marked errored")

    def fits(self) -> list[dict]:
        """The solver summaries of this fold's convex fits: on the training rows, then the refit (if any)."""
        return [fit for fit in (self.fit, self.refit) if fit is not None]

    def train_outputs(self) -> tuple[np.ndarray, np.ndarray]:
        """The last epoch's training rows as it trained them: labels and class probabilities, batch by batch."""
        if not self.seen:
            return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
        return (torch.cat([y for _, y in self.seen]).cpu().numpy(),
                torch.cat([p for p, _ in self.seen]).float().cpu().numpy())

    @torch.no_grad()
    def proba(self, split: str) -> np.ndarray:
        """Class probabilities of a split's rows, in the split's order (streamed sets: batch by batch)."""
        if split == "valid" and self.valid_proba is not None:
            return self.valid_proba
        if not self.streaming:
            return predict_proba(self.model, {"train": self.x_train, "valid": self.x_valid, "test": self.x_test}[split])
        from raygex.data.batches import stream_proba

        return stream_proba(self.model, self.data, split, self.standardise, self.device)

    def keep_best(self) -> None:
        # A real copy: state_dict() returns references that later optimiser steps would overwrite.
        self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def checkpoint(self) -> dict:
        return {"model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
                "optimiser": self.optimiser.state_dict(), "shuffle": self.shuffle.get_state(),
                "best_state": None if self.best_state is None else {k: v.cpu() for k, v in self.best_state.items()},
                "converged": self.converged}

    def restore(self, saved: dict, device: torch.device) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimiser.load_state_dict(saved["optimiser"])
        self.shuffle.set_state(saved["shuffle"])
        self.best_state = None if saved["best_state"] is None else \
            {k: v.to(device) for k, v in saved["best_state"].items()}
        self.converged = bool(saved.get("converged", False)) and self.convex


def _tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    # Shared read-only arrays (Ray's object store) are wrapped, not copied, on the CPU (torch warns: not writable).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(x).to(device)


def fold_mean(per_fold: list[dict]) -> dict:
    """Metrics averaged over folds, each with its standard error (``<name>_se``) when there are several folds.

    A fold where a metric is undefined (AUC on a validation fold holding one class) is left out of that metric's
    mean and SE; NaN only when no fold defines it."""
    if not per_fold:
        return {}
    out = {}
    for key in per_fold[0]:
        values = np.array([m[key] for m in per_fold], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[key] = float(finite.mean()) if len(finite) else float("nan")
        if len(values) > 1:
            out[f"{key}_se"] = float(finite.std(ddof=1) / np.sqrt(len(finite))) if len(finite) > 1 else float("nan")
    return out


class TrainingState:
    """Everything a trial needs to continue exactly where it stopped (for Tune checkpoints and resume)."""

    def __init__(self, folds, device: torch.device | None = None):
        self.folds = folds  # a SequentialFolds or BatchedFolds (raygex.training.fold_group)
        self.device = device or torch.device("cpu")
        self.epoch = 0
        self.best_value: float | None = None
        self.best_epoch = -1
        self.best_valid: dict = {}
        self.best_test: dict = {}
        self.best_test_proba: np.ndarray | None = None  # the test-set probabilities of the best epoch
        self.stale = 0
        self.history: list[dict] = []

    @property
    def n_params(self) -> int:
        """Parameters of one fold's network (the model a trial's configuration describes)."""
        return self.folds.n_params

    def checkpoint(self) -> dict:
        """A torch-saveable dict; tensors are copied so later training cannot change it."""
        return {"folds": self.folds.checkpoint(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "epoch": self.epoch, "best_value": self.best_value, "best_epoch": self.best_epoch,
                "best_valid": self.best_valid, "best_test": self.best_test, "stale": self.stale,
                "history": list(self.history), "best_test_proba": None if self.best_test_proba is None
                else torch.from_numpy(np.array(self.best_test_proba, dtype=np.float32))}

    def restore(self, saved: dict, device: torch.device) -> None:
        folds = saved_folds(saved)
        if len(folds) != len(self.folds.views):
            raise ValueError(f"the checkpoint holds {len(folds)} folds, but this trial has {len(self.folds.views)}")
        self.folds.restore(folds, device)
        torch.set_rng_state(saved["torch_rng"])
        if saved.get("cuda_rng") and torch.cuda.is_available() and len(saved["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])  # dropout on the GPU draws from these
        for key in ("epoch", "best_value", "best_epoch", "best_valid", "best_test", "stale", "history"):
            setattr(self, key, saved[key])
        proba = saved.get("best_test_proba")  # None in checkpoints written before it was kept
        self.best_test_proba = None if proba is None else proba.numpy()


def saved_folds(saved: dict) -> list[dict]:
    """The per-fold parts of a checkpoint (one for a checkpoint written before folds existed)."""
    if "folds" in saved:
        return saved["folds"]
    return [{k: saved[k] for k in ("model", "optimiser", "shuffle", "best_state")}]


def run_trial(config: dict, data: TrialData, report: Callable[[dict, TrainingState], None] | None = None,
              device: str | None = None, resume_from: dict | None = None,
              batched_folds: bool | None = None, test_each_best: bool = True) -> TrialResult:
    """Train ``config`` on ``data`` (on each of its folds in lockstep, if it has folds); ``report(metrics,
    state)`` is called after every epoch.

    ``resume_from`` is a :meth:`TrainingState.checkpoint` dict: training continues from its epoch with the same
    weights, optimiser moments, shuffling and dropout random state, for every fold. The test set is scored
    whenever the validation metric improves (so a trial stopped early by a scheduler still has the test score of
    its best epoch, in every history row), or with ``test_each_best`` False (a run nobody stops early) once, at its
    end, from the same best weights. Selection never looks at them. A convex fit on one split is scored on
    validation, then refitted on the training and validation rows (its test metrics, probabilities and weights are
    the refit's). Without validation rows, training runs ``max_epochs`` and keeps the last epoch. Several in-memory
    folds train as one batched model (:mod:`raygex.training.fold_group`) when ``batched_folds`` (default: the
    config's ``batched_folds``, the ``train`` section's, off) is True, else one after another.
    """
    config = with_defaults(config)
    started = time.perf_counter()
    dev = pick_device(device)
    data = data.standardised()
    views = data.fold_views()
    n_classes = len(data.classes)
    seed = int(config["seed"])
    seed_everything(seed)  # before the models exist: initial weights follow the seed
    batched = bool(config.get("batched_folds", False)) if batched_folds is None else batched_folds
    folds = fold_group(config, views, n_classes, dev, seed, batched=batched)
    state = TrainingState(folds, dev)
    if resume_from is not None:
        state.restore(resume_from, dev)
    metric, patience, max_epochs = config["metric"], int(config["patience"]), int(config["max_epochs"])
    batch_size, lr = int(config["batch_size"]), float(config["lr"])
    has_valid, has_test = len(views[0].y_valid) > 0, len(data.y_test) > 0
    finished_before = resume_from is not None and not (state.epoch < max_epochs and state.stale < patience
                                                       and not folds.converged)

    while state.epoch < max_epochs and state.stale < patience and not folds.converged:
        folds.train_epoch(batch_size, state.epoch + 1, lr)
        state.epoch += 1
        # training metrics from the epoch's own batches (dropout on, weights moving: the running figures Keras and
        # Lightning report); a second pass over the training rows cost a third of a GCN's epoch
        train_m = fold_mean([classification_metrics(y, p, n_classes) for y, p in folds.train_outputs()])
        valid_m = fold_mean([classification_metrics(v.y_valid, p, n_classes)
                             for v, p in zip(views, folds.probas("valid"))]) if has_valid else {}
        row = {"epoch": state.epoch, **{f"train_{k}": v for k, v in train_m.items()},
               **{f"valid_{k}": v for k, v in valid_m.items()}}
        if folds.converged:  # a convex fit done: the trial's own end; was L-BFGS stopped by its cap; refitted?
            runs = getattr(folds, "runs", [])
            row.update(converged=True, fit_iteration_capped=any(fit["capped"] for r in runs for fit in r.fits()),
                       refitted_on_valid=any(r.refit is not None for r in runs))
        if not has_valid or is_better(valid_m[metric], state.best_value, metric):
            state.best_value, state.best_epoch, state.best_valid, state.stale = \
                valid_m.get(metric), state.epoch, valid_m, 0
            folds.keep_best()
            if has_test and test_each_best:
                state.best_test_proba = _mean_test_proba(folds)
                state.best_test = classification_metrics(data.y_test, state.best_test_proba, n_classes)
        else:
            state.stale += 1
        row[f"best_valid_{metric}"], row["best_epoch"] = state.best_value, state.best_epoch
        if f"{metric}_se" in state.best_valid:
            row[f"best_valid_{metric}_se"] = state.best_valid[f"{metric}_se"]
        row.update({f"best_test_{k}": v for k, v in state.best_test.items()})
        state.history.append(row)
        if report is not None:
            report(row, state)
    if finished_before and state.history and report is not None:
        # Resumed from a checkpoint taken after the last epoch (a driver killed before it recorded the end): say
        # the final epoch's metrics again, so whoever collects reports sees where the trial really ended.
        report(state.history[-1], state)
    folds.load_best()
    test_proba = _mean_test_proba(folds) if has_test else None
    if has_test and not test_each_best:  # scored once, from the best weights: the same figures, one pass
        state.best_test_proba, state.best_test = test_proba, classification_metrics(data.y_test, test_proba, n_classes)
    models = folds.models()
    return TrialResult(config, state.best_epoch, state.epoch, state.best_valid, state.best_test, state.history,
                       models[0], data.mean, data.std, time.perf_counter() - started, str(dev),
                       stopped_early=state.epoch < max_epochs and not folds.converged, test_proba=test_proba, models=models,
                       extra={"batched_folds": folds.batched})


def fold_group(config: dict, views: list[TrialData], n_classes: int, device: torch.device, seed: int,
               batched: bool = False):
    """The trial's fold networks, built in fold order (the initial weights follow the seed either way): one
    batched model when asked (``batched``) and there are several in-memory folds of an Adam-trained family, else
    one after another."""
    models = [build_model(config, len(view.genes), n_classes, view.graph) for view in views]
    shuffles = [seed + 7919 * i for i in range(len(views))]
    streaming = any(getattr(view, "streaming", False) for view in views)
    if batched and len(views) > 1 and not streaming and solver_of(str(config.get("model", "gcn"))) == "adam":
        try:
            return BatchedFolds(models, views, device, shuffles, float(config["lr"]), float(config["weight_decay"]))
        except NotBatchable:
            pass
    return SequentialFolds([FoldRun(config, view, n_classes, device, shuffle, model=model, refit=len(views) == 1)
                            for view, model, shuffle in zip(views, models, shuffles)])


def _mean_test_proba(folds) -> np.ndarray:
    """Test-set class probabilities averaged over the folds' networks as they are now."""
    return np.mean(folds.probas("test"), axis=0)

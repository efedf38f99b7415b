"""A trial's fold networks, trained in lockstep: one after another (:class:`SequentialFolds`), or all k at once as
one batched model holding k sets of weights (:class:`BatchedFolds`).

Both give the training loop the same interface: an epoch of training for every fold, every fold's class
probabilities on a split, the best weights kept and put back, checkpoints in one per-fold layout (a checkpoint
written by either one resumes in the other, and checkpoints written before folds were batched resume as they
are), and each fold's network as an ordinary module (for the fold ensemble that is exported).

Batched folds stack the k networks' parameters (``torch.func.stack_module_state``) and run the family's own
``forward`` once over all folds (``torch.func.vmap`` of ``functional_call``), so the per-step work that does not
grow with the data (Python, kernel launches, the optimiser's loop over parameters) is paid once per step, not k
times. Each fold keeps its own shuffled batches (the same generator and order as one after another), its own
loss (the mean over its batch; the folds' losses are summed, so a fold's gradient is its own), and its own Adam
moments and step count (:class:`StackedAdam`: the same arithmetic, per fold); a fold with fewer batches in an
epoch (its training set is a few rows smaller) sits out the last step, moments untouched. Without dropout the
batched run gives the sequential run's metrics within float tolerance (``tests/test_fold_group.py``); with
dropout every fold draws its own masks, from one batched draw instead of k, so the runs agree in distribution,
not draw for draw. Memory: k times one fold's activations at once.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raygex.training.optimiser import Adam, _TORCH_DEFAULTS, _step_dtype


class SequentialFolds:
    """The folds one after another: a list of :class:`raygex.training.loop.FoldRun`."""

    batched = False

    def __init__(self, runs: list):
        self.runs = runs
        self.views = [run.data for run in runs]

    def train_epoch(self, batch_size: int, epoch: int, lr: float) -> None:
        loss_fn = nn.CrossEntropyLoss()
        for run in self.runs:
            run.train_epoch(loss_fn, batch_size, epoch, lr)

    def probas(self, split: str) -> list[np.ndarray]:
        return [run.proba(split) for run in self.runs]

    def train_outputs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per fold, the last epoch's training labels and probabilities as its batches trained."""
        return [run.train_outputs() for run in self.runs]

    def keep_best(self) -> None:
        for run in self.runs:
            run.keep_best()

    def load_best(self) -> None:
        for run in self.runs:
            if run.best_state is not None:
                run.model.load_state_dict(run.best_state)

    def checkpoint(self) -> list[dict]:
        return [run.checkpoint() for run in self.runs]

    def restore(self, folds: list[dict], device: torch.device) -> None:
        for run, fold in zip(self.runs, folds):
            run.restore(fold, device)

    def models(self) -> list[nn.Module]:
        return [run.model for run in self.runs]

    @property
    def converged(self) -> bool:
        """Every fold's convex fit is at its optimum: another epoch would change nothing."""
        return all(run.converged for run in self.runs)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.runs[0].model.parameters())


class StackedAdam:
    """:class:`raygex.training.optimiser.Adam` over stacked parameters (leading dimension: the fold), each fold
    with its own moments and step count; :meth:`step` moves only the folds marked active."""

    def __init__(self, params: list[torch.Tensor], folds: int, lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.folds = params, folds
        self.lr, self.weight_decay, self.betas, self.eps = float(lr), float(weight_decay), tuple(betas), float(eps)
        self.steps = torch.zeros(folds, dtype=torch.float64)
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """One Adam step of the active folds: in place on the stacked tensors when every fold is active (each
        fold's own bias corrections broadcast along the fold dimension), else fold by fold on the active ones'
        slices (an epoch's last step, where a fold with fewer batches sits out)."""
        beta1, beta2 = self.betas
        active = active.cpu()
        self.steps += active.to(self.steps.dtype)
        steps = self.steps.clamp(min=1)  # a fold that never stepped is not touched below
        # per fold, as Adam computes them from its Python-float step count: lr / (1 - beta1^t), sqrt(1 - beta2^t)
        corrections = -(self.lr / (1 - beta1 ** steps))
        roots = (1 - beta2 ** steps) ** 0.5
        everyone = bool(active.all())
        for param, exp_avg, exp_avg_sq in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if param.grad is None:
                continue
            grad = param.grad
            if self.weight_decay != 0:
                grad = grad.add(param, alpha=self.weight_decay)
            if everyone:
                shape = (self.folds,) + (1,) * (param.dim() - 1)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq.sqrt() / roots.to(param.dtype).to(param.device).view(shape)).add_(self.eps)
                param.addcmul_(exp_avg / denom, corrections.to(param.dtype).to(param.device).view(shape))
                continue
            for fold in torch.nonzero(active).flatten().tolist():
                m, v, p, g = exp_avg[fold], exp_avg_sq[fold], param[fold], grad[fold]
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (v.sqrt() / float(roots[fold])).add_(self.eps)
                p.addcdiv_(m, denom, value=float(corrections[fold]))

    def fold_state(self, fold: int) -> dict:
        """Fold ``fold``'s optimiser state in :class:`Adam`'s (``torch.optim.Adam``'s) layout."""
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay,
                 **_TORCH_DEFAULTS, "params": list(range(len(self.params)))}
        state = {}
        if self.steps[fold] > 0:
            step = torch.tensor(float(self.steps[fold]), dtype=_step_dtype())
            state = {i: {"step": step.clone(), "exp_avg": m[fold].detach().clone(),
                         "exp_avg_sq": v[fold].detach().clone()}
                     for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq))}
        return {"state": state, "param_groups": [group]}

    def load_fold_state(self, fold: int, saved: dict, like: list[torch.Tensor]) -> None:
        """Fold ``fold``'s moments and step count from a state saved by :class:`Adam` (or ``torch.optim.Adam``)."""
        single = Adam([p.detach()[fold] for p in like], lr=self.lr, weight_decay=self.weight_decay)
        single.load_state_dict(saved)
        self.lr, self.weight_decay, self.betas, self.eps = single.lr, single.weight_decay, single.betas, single.eps
        steps = [float(s["step"]) for s in single.state if s]
        self.steps[fold] = steps[0] if steps else 0.0
        for i, s in enumerate(single.state):
            if s:
                self.exp_avg[i][fold] = s["exp_avg"]
                self.exp_avg_sq[i][fold] = s["exp_avg_sq"]
            else:
                self.exp_avg[i][fold] = 0
                self.exp_avg_sq[i][fold] = 0


class NotBatchable(Exception):
    """The folds' networks cannot share one batched model (their buffers differ)."""


def _padded(arrays: list[np.ndarray], device) -> tuple[torch.Tensor, list[int]]:
    """Arrays of one trailing shape and different lengths as one zero-padded ``(k, longest, ...)`` tensor."""
    lengths = [len(a) for a in arrays]
    out = np.zeros((len(arrays), max(lengths), *arrays[0].shape[1:]), dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return torch.from_numpy(out).to(device), lengths


class BatchedFolds:
    """The k fold networks as one batched model (see the module)."""

    batched = True
    converged = False  # Adam-trained families only: their epochs run until patience or max_epochs

    def __init__(self, models: list[nn.Module], views: list, device: torch.device, shuffle_seeds: list[int],
                 lr: float, weight_decay: float):
        from torch.func import stack_module_state

        self.views, self.device, self.k = views, device, len(models)
        self.template = copy.deepcopy(models[0]).to(device)
        params, buffers = stack_module_state(models)
        for name, stacked in buffers.items():
            if not all(torch.equal(stacked[0], b) for b in stacked[1:]):
                raise NotBatchable(f"buffer {name} differs between folds")
        self.buffers = {name: stacked[0].to(device) for name, stacked in buffers.items()}
        self.names = [name for name, _ in models[0].named_parameters()]
        self.params = {name: params[name].detach().to(device).requires_grad_(True) for name in self.names}
        self.optimiser = StackedAdam([self.params[n] for n in self.names], self.k, lr, weight_decay)
        self.shuffles = [torch.Generator().manual_seed(int(s)) for s in shuffle_seeds]
        self.x = {}
        self.lengths = {}
        for split in ("train", "valid", "test"):
            self.x[split], self.lengths[split] = _padded([np.asarray(getattr(v, f"x_{split}"), np.float32)
                                                         for v in views], device)
        self.y_train, _ = _padded([np.asarray(v.y_train, np.int64) for v in views], device)
        self.best: dict | None = None
        self.seen: list[list] = [[] for _ in range(self.k)]  # per fold, the last epoch's (probabilities, labels)

    # -- the batched forward ------------------------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        def one(params, rows):
            return functional_call(self.template, (params, self.buffers), (rows,))

        return vmap(one, randomness="different")(self.params, x)

    def train_epoch(self, batch_size: int, epoch: int, lr: float) -> None:
        self.template.train()
        lengths = self.lengths["train"]
        batches = [torch.randperm(n, generator=g).split(batch_size) for n, g in zip(lengths, self.shuffles)]
        finite, loss = torch.ones((), dtype=torch.bool, device=self.device), None
        folds = torch.arange(self.k, device=self.device)
        seen: list[list] = [[] for _ in range(self.k)]
        for step in range(max(len(b) for b in batches)):
            parts = [b[step] if step < len(b) else torch.empty(0, dtype=torch.long) for b in batches]
            width = max(len(p) for p in parts)
            rows = torch.zeros((self.k, width), dtype=torch.long)
            weight = torch.zeros((self.k, width))
            for f, part in enumerate(parts):
                rows[f, :len(part)] = part
                if len(part):
                    weight[f, :len(part)] = 1.0 / len(part)
            rows, weight = rows.to(self.device), weight.to(self.device)
            active = torch.tensor([len(p) > 0 for p in parts])
            x = self.x["train"][folds[:, None], rows]
            y = self.y_train[folds[:, None], rows]
            logits = self._forward(x)
            each = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
            per_fold = (each.view(self.k, width) * weight).sum(dim=1)
            loss = per_fold.sum()
            finite &= torch.isfinite(per_fold).all()
            self.optimiser.zero_grad()
            loss.backward()
            self.optimiser.step(active)
            proba = torch.softmax(logits.detach(), dim=-1)
            for f, part in enumerate(parts):
                if len(part):
                    seen[f].append((proba[f, :len(part)], y[f, :len(part)]))
        self.seen = seen
        if not bool(finite):
            raise FloatingPointError(f"training loss became {loss.item()} at epoch {epoch} (lr {lr:g}); "
                                     "the trial is marked errored")

    def train_outputs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per fold, the last epoch's training labels and probabilities as its batches trained."""
        return [(torch.cat([y for _, y in fold]).cpu().numpy(), torch.cat([p for p, _ in fold]).float().cpu().numpy())
                for fold in self.seen]

    @torch.no_grad()
    def probas(self, split: str, batch_size: int = 256) -> list[np.ndarray]:
        self.template.eval()
        x, lengths = self.x[split], self.lengths[split]
        parts = [torch.softmax(self._forward(x[:, i:i + batch_size]), dim=-1).cpu()
                 for i in range(0, x.size(1), batch_size)]
        proba = torch.cat(parts, dim=1).numpy() if parts else np.empty((self.k, 0, 0), np.float32)
        return [proba[f, :n] for f, n in enumerate(lengths)]

    # -- best weights, checkpoints, the folds' networks -----------------------------------------------------------
    def keep_best(self) -> None:
        self.best = {name: p.detach().clone() for name, p in self.params.items()}

    def load_best(self) -> None:
        if self.best is not None:
            with torch.no_grad():
                for name, p in self.params.items():
                    p.copy_(self.best[name])

    def _state_dict(self, fold: int, params: dict) -> dict:
        state = {}
        for name in self.template.state_dict():
            source = params[name][fold] if name in params else self.buffers[name]
            state[name] = source.detach().cpu().clone()
        return state

    def checkpoint(self) -> list[dict]:
        return [{"model": self._state_dict(f, self.params), "optimiser": self.optimiser.fold_state(f),
                 "shuffle": self.shuffles[f].get_state(),
                 "best_state": None if self.best is None else self._state_dict(f, self.best)}
                for f in range(self.k)]

    def restore(self, folds: list[dict], device: torch.device) -> None:
        with torch.no_grad():
            for f, saved in enumerate(folds):
                for name in self.names:
                    self.params[name][f] = saved["model"][name].to(device)
                self.optimiser.load_fold_state(f, saved["optimiser"], [self.params[n] for n in self.names])
                self.shuffles[f].set_state(saved["shuffle"])
            if folds[0]["best_state"] is None:
                self.best = None
            else:
                self.best = {name: torch.stack([saved["best_state"][name].to(device) for saved in folds])
                             for name in self.names}

    @property
    def n_params(self) -> int:
        return sum(p[0].numel() for p in self.params.values())

    def models(self) -> list[nn.Module]:
        out = []
        for f in range(self.k):
            model = copy.deepcopy(self.template)
            model.load_state_dict(self._state_dict(f, self.params))
            out.append(model)
        return out

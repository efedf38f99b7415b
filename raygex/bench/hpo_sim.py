"""Search methods replayed over a table (:mod:`raygex.bench.hpo_table`), with Optuna's real samplers (ask/tell) and
Ray Tune's ASHA rung rule, one trial at a time.

* A trial's outcome under FIFO is its table row: trained until raygex's patience stopped it or ``max_epochs``.
* Under ASHA it is what Ray's ``ASHAScheduler(time_attr="epoch", metric=best_valid_auc, mode="max",
  max_t=max_epochs, grace_period=grace, reduction_factor=4)`` (raygex's settings, one bracket) would do: rungs at
  ``grace * 4**k`` below ``max_t``; at a rung the trial's best validation AUC so far is compared with the 75th
  percentile of the values recorded at that rung before it and the trial stops if below; every value reaching
  a rung is recorded; a trial reaching ``max_t`` ends there (Ray stops it before the bracket sees the result,
  then records its final result at completion). The rule is ~15 lines (:class:`Asha`) rather than Optuna's
  SuccessiveHalvingPruner, because raygex runs Ray's scheduler, whose rung set (below ``max_t`` only), cutoff
  (``np.nanpercentile`` of the earlier values) and completion bookkeeping differ in small ways from Optuna's;
  tests check it against Ray's own ``_Bracket``. A stopped trial costs the epochs it ran.
* Optuna sees what raygex's searcher tells it: the trial's ``best_valid_auc`` when it ends (stopped or not).
  TPE runs with raygex's settings (``n_startup_trials=min(10, max(2, budget // 3))``, the budget being the
  space's size, as raygex caps ``num_samples`` at it) and raygex's one enqueued trial per choice (model family,
  and the GCN on each graph) first; no configuration runs twice (a repeat is told as failed and asked again
  from a random sampler, then the first unseen point is enqueued: raygex's ``ResumableOptunaSearch`` rule).
* ``tpe+asha`` is one TPE over the whole study choosing the model family too (``search.family_budget: tpe``);
  ``tpe-dims+asha`` and ``tpe-equal+asha`` are the sweep's ``dimensions`` (its default) and ``equal`` shares,
  each family with a TPE of its own (:func:`raygex.search.sampling.family_sampler`, same settings per family).
* Random search is Optuna's RandomSampler under the same no-repeat rule (no enqueued choices); the grid is every
  table entry once, in a shuffled order per seed.

Trials run one at a time (raygex runs ``max_concurrent`` side by side; with one at a time every method sees all
earlier results, the best case for a model-based sampler, and ASHA's decisions depend on completion order only).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from raygex.bench.hpo_table import Grid, config_key
from raygex.search.sampling import DUPLICATE, FAMILY_BUDGETS, MAX_ASKS, family_sampler, reask_sampler, tpe_sampler
from raygex.search.scheduler import asha_milestones

# method -> (sampler, ASHA's rungs: None (no ASHA) | "study" (one set for every trial) | "family" (one per model
# family), the start trials enqueued first: raygex's ``search.start_trials`` ("choices" | "families") or None)
METHODS = {
    "tpe+asha": ("tpe", "study", "choices"),
    "tpe+asha-family": ("tpe", "family", "choices"),
    "tpe+asha-families": ("tpe", "study", "families"),
    "tpe-mv+asha": ("tpe-mv", "study", "choices"),
    "tpe-equal+asha": ("tpe-equal", "study", "choices"),
    "tpe-dims+asha": ("tpe-dimensions", "study", "choices"),
    "random+asha": ("random", "study", None),
    "random+asha-family": ("random", "family", None),
    "tpe": ("tpe", None, "choices"),
    "random": ("random", None, None),
    "grid": ("grid", None, None),
}
LABELS = {"tpe+asha": "TPE + ASHA", "tpe+asha-family": "TPE + ASHA, rungs per family",
          "tpe-mv+asha": "TPE multivariate+group + ASHA", "random+asha": "random + ASHA",
          "random+asha-family": "random + ASHA, rungs per family",
          "tpe+asha-families": "TPE + ASHA, one start per family",
          "tpe-equal+asha": "TPE + ASHA, families equal",
          "tpe-dims+asha": "TPE + ASHA, families by dims", "tpe": "TPE (no ASHA)", "random": "random",
          "grid": "grid (shuffled)"}


@dataclass
class Outcome:
    epochs: int  # epochs run (the compute charged)
    best_valid: float  # best validation AUC up to the last epoch run (what the searcher is told)
    test: float  # test AUC of that best-validation epoch
    stopped: bool = False  # stopped by ASHA
    seconds: float = 0.0  # training seconds, pro rata of the table's time for the whole row


def fifo(row: dict, epochs: int | None = None, stopped: bool = False) -> Outcome:
    """The row's outcome after ``epochs`` (all of them by default)."""
    n = len(row["best_valid"]) if epochs is None else epochs
    return Outcome(n, float(row["best_valid"][n - 1]), float(row["best_test"][n - 1]), stopped,
                   row.get("seconds", 0.0) * n / max(1, len(row["best_valid"])))


class Asha:
    """Ray Tune's asynchronous successive halving (one bracket), replayed on table rows one trial at a time."""

    def __init__(self, grace: int, max_t: int, reduction_factor: float = 4):
        self.max_t, self.rf = max_t, reduction_factor
        self.rungs: dict[int, list[float]] = {m: [] for m in asha_milestones(grace, max_t, reduction_factor)}

    def _decide(self, milestone: int, value: float) -> bool:
        """Record ``value`` at ``milestone``; True when it falls below the rung's cutoff (stop)."""
        recorded = self.rungs[milestone]
        cutoff = np.nanpercentile(recorded, (1 - 1 / self.rf) * 100) if recorded else None
        recorded.append(value)
        return cutoff is not None and value < cutoff

    def run(self, row: dict) -> Outcome:
        best = row["best_valid"]
        for epoch in range(1, len(best) + 1):
            if epoch >= self.max_t:
                break  # Ray stops a trial at max_t before consulting the bracket
            if epoch in self.rungs and self._decide(epoch, float(best[epoch - 1])):
                return fifo(row, epoch, stopped=True)
        last = len(best)
        if last >= self.max_t and last in self.rungs:
            self._decide(last, float(best[last - 1]))  # on_trial_complete records the final result
        return fifo(row)


def suggest(trial, grid: Grid) -> dict:
    """raygex's define-by-run space over the grid: ``model`` first, then only that family's parameters."""
    model = trial.suggest_categorical("model", grid.models())
    params = {"model": model}
    for p in grid.families[model]:
        if p.kind == "choice":
            params[p.name] = trial.suggest_categorical(p.name, list(p.values))
        elif p.kind == "int":
            params[p.name] = trial.suggest_int(p.name, int(p.values[0]), int(p.values[-1]))
        else:
            params[p.name] = p.values[trial.suggest_int(p.name, 0, len(p.values) - 1)]
    return params


def optuna_params(params: dict, grid: Grid) -> dict:
    """A configuration as Optuna's parameters (an ``index`` parameter by its index), for enqueueing."""
    out = {}
    kinds = {p.name: p for p in grid.families[params["model"]]} if "model" in params else {}
    for name, value in params.items():
        p = kinds.get(name)
        out[name] = p.values.index(value) if p is not None and p.kind == "index" else value
    return out


def choice_points(grid: Grid, start: str = "choices") -> list[dict]:
    """raygex's enqueued start trials (:func:`raygex.search.space.start_points`) for the grid's model and graph
    values."""
    from raygex.search.space import start_points

    parsed = {"model": ("choice", grid.models())}
    graphs = [p for p in grid.families.get("gcn", ()) if p.name == "graph"]
    if graphs:
        parsed["graph"] = ("choice", list(graphs[0].values))
    return start_points(parsed, start)


def make_sampler(kind: str, seed: int, budget: int, grid: Grid | None = None):
    from optuna.samplers import RandomSampler

    if kind == "tpe":
        return tpe_sampler(seed, budget)  # the sweep's own settings
    if kind.startswith("tpe-") and kind[4:] in FAMILY_BUDGETS:  # the sweep's search.family_budget
        dimensions = {model: sum(len(p.values) > 1 for p in params) for model, params in grid.families.items()}
        sizes = {model: math.prod(len(p.values) for p in params) for model, params in grid.families.items()}
        return family_sampler(kind[4:], dimensions, sizes, seed, budget)
    if kind == "tpe-mv":
        return tpe_sampler(seed, budget, multivariate=True, group=True)
    return RandomSampler(seed=seed)


def _ask_unseen(study, grid: Grid, seen: set, points: list[dict]):
    """Ask until the configuration is new (raygex's ResumableOptunaSearch.suggest)."""
    from optuna.trial import TrialState

    sampler = study.sampler
    try:
        for attempt in range(MAX_ASKS):
            trial = study.ask()
            params = suggest(trial, grid)
            if config_key(params) not in seen:
                return trial, params
            trial.set_user_attr(DUPLICATE, True)
            study.tell(trial, state=TrialState.FAIL)
            study.sampler = reask_sampler(sampler, len(study.get_trials(deepcopy=False)) + attempt)
    finally:
        study.sampler = sampler
    fresh = next(p for p in points if config_key(p) not in seen)
    study.enqueue_trial(optuna_params(fresh, grid))
    trial = study.ask()
    return trial, suggest(trial, grid)


def simulate(method: str, table: dict[str, dict], grid: Grid, *, seed: int, grace: int, max_t: int,
             budget_epochs: float | None = None) -> list[dict]:
    """One run of ``method``: after each trial, ``{trial, epochs, seconds, best_valid, test, params}`` (cumulative
    epochs and seconds, best validation AUC so far and the test AUC of that trial's best epoch). Runs until the
    space is exhausted or ``budget_epochs`` are spent."""
    import optuna

    sampler_kind, rungs, enqueue = METHODS[method]
    points = grid.points()
    ashas: dict[str, Asha] = {}  # by rung group: "" (the study's) or the model family
    curve: list[dict] = []
    epochs, seconds, best, test = 0, 0.0, -math.inf, math.nan

    def account(params: dict) -> Outcome:
        nonlocal epochs, seconds, best, test
        row = table[config_key(params)]
        if rungs is None:
            out = fifo(row)
        else:
            group = params["model"] if rungs == "family" else ""
            out = ashas.setdefault(group, Asha(grace, max_t)).run(row)
        epochs, seconds = epochs + out.epochs, seconds + out.seconds
        if out.best_valid > best:
            best, test = out.best_valid, out.test
        curve.append({"trial": len(curve) + 1, "epochs": epochs, "seconds": round(seconds, 3), "best_valid": best,
                      "test": test, "params": params, "run": out.epochs, "stopped": out.stopped,
                      "valid": out.best_valid})
        return out

    def spent() -> bool:
        return budget_epochs is not None and epochs >= budget_epochs

    if sampler_kind == "grid":
        for i in np.random.default_rng(seed).permutation(len(points)):
            account(points[int(i)])
            if spent():
                break
        return curve
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # multivariate/group TPE is marked experimental
        study = optuna.create_study(direction="maximize", sampler=make_sampler(sampler_kind, seed, len(points), grid))
        if enqueue:
            for point in choice_points(grid, enqueue):
                study.enqueue_trial(point)
        seen: set[str] = set()
        while len(seen) < len(points) and not spent():
            trial, params = _ask_unseen(study, grid, seen, points)
            seen.add(config_key(params))
            study.tell(trial, account(params).best_valid)
    return curve


def grid_compute(table: dict[str, dict]) -> tuple[int, float]:
    """The grid's compute: every entry trained once under raygex's patience (epochs, seconds)."""
    return (sum(len(r["best_valid"]) for r in table.values()),
            sum(r.get("seconds", 0.0) for r in table.values()))


def grid_best(table: dict[str, dict]) -> tuple[float, float, str]:
    """The best validation AUC in the table, the test AUC of its best epoch, and its key (first of ties)."""
    key = max(table, key=lambda k: table[k]["best_valid"][-1])
    return float(table[key]["best_valid"][-1]), float(table[key]["best_test"][-1]), key


def compute_to_target(curve: list[dict], target: float, field: str = "epochs") -> float | None:
    """The compute (``field``: cumulative epochs or seconds) after which the best validation AUC so far first
    reaches ``target``; None when it never does."""
    for point in curve:
        if point["best_valid"] >= target - 1e-12:
            return point[field]
    return None


def value_at(curve: list[dict], compute: float, field: str = "best_valid") -> float:
    """``field`` of the curve once ``compute`` epochs are spent (the last trial finished within them); NaN before
    the first trial finishes."""
    value = math.nan
    for point in curve:
        if point["epochs"] > compute:
            break
        value = point[field]
    return value

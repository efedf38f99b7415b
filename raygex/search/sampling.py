"""The search's Optuna settings, in one place for the sweep (:mod:`raygex.search.tuner`,
:mod:`raygex.search.tune_compat.optuna_searcher`) and for ``raygex bench hpo``'s replay of it (importing this needs no Ray).

How the trial budget is split between model families (``search.family_budget``):

* ``tpe``: TPE samples ``model`` like any other parameter. On one noisy validation split it keeps returning to
  the family whose few parameters it has already fitted (a convex logistic regression scores well at once), and
  the best of many draws of that family then tops the leaderboard on luck;
* ``equal``: every family gets the same number of trials (start trials included);
* ``dimensions``: each family's share is proportional to how many parameters it searches (a GCN's graph, depth,
  width, dropout and optimiser against logistic regression's one ``C``), and never below
  :data:`MIN_TRIALS_PER_FAMILY`.

Either of the last two fixes only which family each trial belongs to (the family furthest below its share, so
running and finished trials both count and a resumed study carries on where it was); TPE still samples every
other parameter, learning from that family's trials.
"""

from __future__ import annotations

from optuna.samplers import BaseSampler

MAX_ASKS = 50  # asks for an unseen configuration before the next unseen point of a finite family is enqueued
DUPLICATE = "raygex_duplicate"  # user attribute of an Optuna trial turned down as a repeat
FAMILY_BUDGETS = ("tpe", "equal", "dimensions")  # search.family_budget
MIN_TRIALS_PER_FAMILY = 3  # `dimensions`: a family with one parameter still gets a best of three


def startup_trials(budget: int) -> int:
    """TPE's random start-up trials for a study of ``budget`` trials."""
    return min(10, max(2, budget // 3))


def tpe_sampler(seed: int, budget: int, **options):
    """The sweep's TPE sampler (``options``: e.g. ``multivariate=True, group=True``, which bench hpo tries)."""
    from optuna.samplers import TPESampler

    return TPESampler(seed=seed, n_startup_trials=startup_trials(budget), **options)


def family_weights(kind: str, dimensions: dict[str, int]) -> dict[str, float] | None:
    """Each family's share of the trials under ``search.family_budget`` ``kind`` (None: TPE decides), from the
    number of parameters each family searches."""
    if kind not in FAMILY_BUDGETS:
        raise ValueError(f"search.family_budget must be one of {', '.join(FAMILY_BUDGETS)}, but got {kind!r}")
    if kind == "tpe" or len(dimensions) < 2:
        return None
    return {family: 1.0 if kind == "equal" else float(max(1, n)) for family, n in dimensions.items()}


def next_family(weights: dict[str, float], counts: dict[str, int], floor: int = 0) -> str:
    """The family the next trial belongs to: one with fewer than ``floor`` trials first, else the one furthest
    below its share of ``n + 1`` trials (ties: the first in ``weights``' order)."""
    for family in weights:
        if counts.get(family, 0) < floor:
            return family
    total, n = sum(weights.values()), sum(counts.get(f, 0) for f in weights) + 1
    return max(weights, key=lambda f: (weights[f] / total * n - counts.get(f, 0), -list(weights).index(f)))


def family_sampler(base, kind: str, dimensions: dict[str, int]):
    """``base`` as is when TPE chooses the family (``search.family_budget: tpe``), else wrapped in a
    :class:`FamilyShareSampler` with ``kind``'s shares (``dimensions``: parameters each family searches)."""
    weights = family_weights(kind, dimensions)
    if weights is None:
        return base
    return FamilyShareSampler(base, weights, MIN_TRIALS_PER_FAMILY if kind == "dimensions" else 0)


class FamilyShareSampler(BaseSampler):
    """An Optuna sampler that gives ``model`` by fixed shares (:func:`next_family`) and leaves every other
    parameter to ``base`` (TPE). ``model`` stays an ordinary parameter, so enqueued start trials, the
    leaderboard and the saved study are unchanged; the choice reads the study's own trials, so it survives a
    resume."""

    def __init__(self, base, weights: dict[str, float], floor: int = 0):
        self.base, self.weights, self.floor = base, dict(weights), int(floor)

    def infer_relative_search_space(self, study, trial):
        space = dict(self.base.infer_relative_search_space(study, trial))
        space.pop("model", None)
        return space

    def sample_relative(self, study, trial, search_space):
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        if param_name != "model":
            return self.base.sample_independent(study, trial, param_name, param_distribution)
        counts: dict[str, int] = {}
        for other in study.get_trials(deepcopy=False):
            if other.number != trial.number and "model" in other.params and not other.user_attrs.get(DUPLICATE):
                counts[other.params["model"]] = counts.get(other.params["model"], 0) + 1
        weights = {f: w for f, w in self.weights.items() if f in param_distribution.choices}
        return next_family(weights, counts, self.floor) if weights else \
            self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self):
        self.base.reseed_rng()

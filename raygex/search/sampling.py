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
running and finished trials both count and a resumed study carries on where it was; a family whose finite space
is used up drops out). Each family then has a TPE of its own that sees only that family's trials, so a family that
trails the study's best still has its own good and bad trials to learn from (one TPE over the whole study would
find none of them among the best and sample as if at random).
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


def family_sampler(kind: str, dimensions: dict[str, int], sizes: dict[str, int | None], seed: int, budget: int):
    """The sweep's sampler: one TPE over the whole study when TPE chooses the family (``search.family_budget:
    tpe``), else a :class:`FamilyShareSampler` with ``kind``'s shares and a TPE per family (``dimensions``:
    parameters each family searches; ``sizes``: its distinct configurations, None when unbounded)."""
    weights = family_weights(kind, dimensions)
    if weights is None:
        return tpe_sampler(seed, budget)
    floor = MIN_TRIALS_PER_FAMILY if kind == "dimensions" else 0
    total = sum(weights.values())
    samplers = {}
    for i, family in enumerate(weights):
        expected = max(floor, round(budget * weights[family] / total))
        # independent TPE: within a family every trial has the same parameters, and bench hpo found the
        # multivariate one no better
        samplers[family] = tpe_sampler(seed + i, expected, multivariate=False)
    return FamilyShareSampler(samplers, weights, floor, sizes)


class _FamilyTrials:
    """The study as one family's sampler sees it: that family's trials only (Optuna's Hyperband pruner gives
    each bracket's sampler such a view)."""

    def __init__(self, study, family: str):
        self._study, self._family = study, family

    def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False):
        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        return [t for t in trials if t.params.get("model") == self._family]

    def get_trials(self, deepcopy: bool = True, states=None):
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self):
        return self.get_trials()

    def __getattr__(self, name):
        return getattr(self._study, name)


class FamilyShareSampler(BaseSampler):
    """An Optuna sampler that gives ``model`` by fixed shares (:func:`next_family`) and samples every other
    parameter with the trial's family's own sampler (``samplers``), which sees that family's trials only.
    ``model`` stays an ordinary parameter, so enqueued start trials, the leaderboard and the saved study are
    unchanged; the choice reads the study's own trials, so it survives a resume. A family whose ``sizes`` entry
    (distinct configurations) its trials have reached is not chosen again."""

    def __init__(self, samplers: dict, weights: dict[str, float], floor: int = 0,
                 sizes: dict[str, int | None] | None = None):
        self.samplers, self.weights, self.floor = dict(samplers), dict(weights), int(floor)
        self.sizes = dict(sizes or {})

    def with_samplers(self, make) -> "FamilyShareSampler":
        """The same shares with ``make(family)`` sampling each family's parameters (e.g. a random sampler for a
        re-ask after a repeated configuration)."""
        return FamilyShareSampler({f: make(f) for f in self.samplers}, self.weights, self.floor, self.sizes)

    def infer_relative_search_space(self, study, trial):
        return {}  # every parameter is sampled per family (sample_independent)

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        if param_name == "model":
            return self._family(study, trial, param_distribution)
        family = trial.params.get("model")
        sampler = self.samplers.get(family)
        if sampler is None:  # ``model`` is not sampled (one family): nothing to share
            sampler = next(iter(self.samplers.values()))
            return sampler.sample_independent(study, trial, param_name, param_distribution)
        return sampler.sample_independent(_FamilyTrials(study, family), trial, param_name, param_distribution)

    def _family(self, study, trial, distribution):
        counts: dict[str, int] = {}
        for other in study.get_trials(deepcopy=False):
            if other.number != trial.number and "model" in other.params and not other.user_attrs.get(DUPLICATE):
                counts[other.params["model"]] = counts.get(other.params["model"], 0) + 1
        open_families = {f: w for f, w in self.weights.items() if f in distribution.choices
                         and (self.sizes.get(f) is None or counts.get(f, 0) < self.sizes[f])}
        if not open_families:  # every family's space used up: the searcher's own repeat handling takes over
            open_families = {f: w for f, w in self.weights.items() if f in distribution.choices}
        return next_family(open_families, counts, self.floor)

    def before_trial(self, study, trial):
        for sampler in self.samplers.values():
            sampler.before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        for sampler in self.samplers.values():
            sampler.after_trial(study, trial, state, values)

    def reseed_rng(self):
        for sampler in self.samplers.values():
            sampler.reseed_rng()


def reask_sampler(current, seed: int):
    """The sampler for asking again after a repeated configuration: random (TPE ignores the failed repeat and would
    propose it again), within the same family shares when the sweep has them."""
    from optuna.samplers import RandomSampler

    if isinstance(current, FamilyShareSampler):
        return current.with_samplers(lambda family: RandomSampler(seed=seed))
    return RandomSampler(seed=seed)

"""The search's Optuna settings, in one place for the sweep (:mod:`raygex.search.tuner`,
:mod:`raygex.search.tune_compat.optuna_searcher`) and for ``raygex bench hpo``'s replay of it (importing this needs no Ray)."""

from __future__ import annotations

MAX_ASKS = 50  # asks for an unseen configuration before the next unseen point of a finite family is enqueued
DUPLICATE = "raygex_duplicate"  # user attribute of an Optuna trial turned down as a repeat


def startup_trials(budget: int) -> int:
    """TPE's random start-up trials for a study of ``budget`` trials."""
    return min(10, max(2, budget // 3))


def tpe_sampler(seed: int, budget: int, **options):
    """The sweep's TPE sampler (``options``: e.g. ``multivariate=True, group=True``, which bench hpo tries)."""
    from optuna.samplers import TPESampler

    return TPESampler(seed=seed, n_startup_trials=startup_trials(budget), **options)

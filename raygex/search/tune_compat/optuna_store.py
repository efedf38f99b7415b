"""Each study's Optuna study, saved where Optuna's own tools read it.

During a sweep the study lives in memory inside Tune's searcher (and in Tune's ``searcher-state-*.pkl``, which
its resume relies on). After the sweep it is copied, every trial with its parameters, distributions, state and
value, into ``search.optuna_storage`` (SQLite in the study folder by default), under the study's name, so that
``optuna-dashboard sqlite:///…/optuna.db`` and ``optuna.load_study(study_name=…, storage=…)`` see the search.
Writing a copy after the sweep, rather than pointing the live searcher at the database, keeps the database from
running ahead of Tune's saved searcher state when a driver is killed.
"""

from __future__ import annotations

import logging
import pickle

from raygex.search.sampling import DUPLICATE

logger = logging.getLogger(__name__)


def save_optuna_study(layout, study: str) -> int | None:
    """Copy the study's Optuna study into its storage (replacing this experiment's earlier copy); returns the
    trials copied, or None when there is nothing to copy or the storage refused (a warning says why: the
    sweep's results never depend on this copy). Only finished trials are copied: completed, pruned, and errored ones, not
    the suggestions the searcher turned down as repeats (:data:`raygex.search.sampling.DUPLICATE`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" lines on the console
    path = layout.searcher_state(study)
    if path is None:
        return None
    url, name = layout.optuna_storage(study), f"{layout.name}/{study}"
    try:
        source = pickle.loads(path.read_bytes())["_ot_study"]
        finished = [t for t in source.trials if t.state.is_finished() and not t.user_attrs.get(DUPLICATE)]
        try:
            existing = optuna.load_study(study_name=name, storage=url)
        except KeyError:
            existing = None
        if existing is not None:
            if existing.user_attrs.get("experiment") != str(layout.root):
                logger.warning(f"warning: {study}: Optuna study {name!r} in {url} belongs to another experiment "
                     f"({existing.user_attrs.get('experiment')}); not replaced")
                return None
            optuna.delete_study(study_name=name, storage=url)
        target = optuna.create_study(study_name=name, storage=url, directions=source.directions)
        target.set_user_attr("experiment", str(layout.root))
        target.add_trials(finished)
    except Exception as err:  # a storage that is down or refuses: say so, keep the sweep's results
        logger.warning(f"warning: {study}: the Optuna study was not saved to {url} ({type(err).__name__}: {err})")
        return None
    return len(finished)

"""A trial the restored Optuna study never suggested (driver killed between Tune's two state files)."""

from __future__ import annotations

from raygex.search.tune_compat.optuna_searcher import ResumableOptunaSearch
from raygex.search.space import define_by_run, parse_space


def test_an_orphan_trial_is_recorded_instead_of_crashing_the_resume():
    parsed = parse_space({"model": ["mlp"], "lr": {"loguniform": [1e-4, 1e-2]}}, [])  # lr: an Adam family's
    searcher = ResumableOptunaSearch(space=define_by_run(parsed), metric="best_valid_auc", mode="max")
    config = searcher.suggest("known")
    searcher.on_trial_result("known", {"best_valid_auc": 0.7, "training_iteration": 1})
    searcher.on_trial_complete("known", {"best_valid_auc": 0.7, "config": config})

    orphan_config = {"model": "mlp", "lr": 3e-3}
    searcher.on_trial_result("orphan", {"best_valid_auc": 0.8, "training_iteration": 1})  # stock: KeyError
    searcher.on_trial_complete("orphan", {"best_valid_auc": 0.8, "config": orphan_config})
    study = searcher._ot_study
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 2
    assert study.best_value == 0.8 and study.best_params == orphan_config
    searcher.on_trial_complete("orphan", {"best_valid_auc": 0.8, "config": orphan_config})  # twice: ignored
    assert len(study.trials) == 2

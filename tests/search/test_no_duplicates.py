"""No configuration runs twice: a finite space is enumerated and capped at its size (with one line saying so);
in a mixed space a repeated suggestion is asked again. Through the searcher raygex builds, without Ray."""

from __future__ import annotations

from raygex.config import ExperimentConfig
from raygex.search.tune_compat.optuna_searcher import ResumableOptunaSearch
from raygex.search.space import choice_points, define_by_run, parse_space, space_size, study_budget


def searcher_for(space: dict, graphs: list[str], budget: int, seed: int = 0) -> ResumableOptunaSearch:
    from optuna.samplers import TPESampler

    parsed = parse_space(space, graphs)
    return ResumableOptunaSearch(space=define_by_run(parsed), metric="best_valid_auc", mode="max",
                                 points_to_evaluate=choice_points(parsed, budget),
                                 sampler=TPESampler(seed=seed, n_startup_trials=3))


def run(searcher, n: int) -> list[tuple]:
    seen = []
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        seen.append(tuple(sorted(config.items())))
        searcher.on_trial_complete(f"t{i}", {"best_valid_auc": 0.5 + 0.01 * (i % 7), "config": config})
    return seen


def config(space: dict, num_samples: int) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"name": "x", "data": {"expression": "u"}, "graphs": {"g": "g"},
                                            "controls": ["empty"], "tasks": [{"name": "t", "kind": "classify", "label": "y"}],
                                            "search": {"num_samples": num_samples, "space": space}})


def test_a_finite_space_is_enumerated_once_and_the_budget_capped():
    space = {"model": ["gcn", "mlp", "lr"], "graph": "all", "depth": {"int": [1, 2]}, "hidden": {"choice": [16, 32]}}
    parsed = parse_space(space, ["g", "empty"])
    assert space_size(parsed) == 2 * 2 + 2 + 1  # gcn: 2 graphs x 2 depths; mlp: 2 hidden; lr: nothing to sample
    budget, line = study_budget(config(space, 24))
    assert budget == 7 and line == ("search.num_samples is 24, but the space holds only 7 distinct configurations: "
                                    "each runs once (7 trials per study)")
    seen = run(searcher_for(space, ["g", "empty"], budget), budget)
    assert len(set(seen)) == len(seen) == 7


def test_a_mixed_space_never_repeats_a_configuration():
    # logistic regression has nothing to sample here: without the check it would run again and again
    space = {"model": ["gcn", "mlp", "lr"], "graph": "all", "depth": {"int": [1, 3]},
             "dropout": {"float": [0.0, 0.5]}, "hidden": {"choice": [16, 32]}}
    assert space_size(parse_space(space, ["g", "empty"])) is None
    assert study_budget(config(space, 24)) == (24, None)
    seen = run(searcher_for(space, ["g", "empty"], 24), 24)
    assert len(set(seen)) == len(seen) == 24
    assert sum(dict(c)["model"] == "lr" for c in seen) == 1


def test_a_config_without_a_space_gets_the_standard_one():
    from raygex.config import standard_space

    cfg = ExperimentConfig.model_validate({"name": "x", "data": {"expression": "u"}, "graphs": {"g": "g"},
                                           "controls": ["random", "empty"],
                                           "tasks": [{"name": "t", "kind": "classify", "label": "y"}]})
    assert cfg.search.space == standard_space(True)
    parsed = parse_space(cfg.search.space, cfg.graph_choices())
    assert parsed["graph"] == ("choice", ["g", "g:random", "empty"]) and space_size(parsed) is None
    assert set(parsed) >= {"model", "depth", "channels", "embedding", "dropout", "hidden", "lr", "weight_decay"}
    no_graphs = ExperimentConfig.model_validate({"name": "x", "data": {"expression": "u"},
                                                 "tasks": [{"name": "t", "kind": "classify", "label": "y"}]})
    assert no_graphs.search.space["model"] == ["mlp", "lr"] and "graph" not in no_graphs.search.space

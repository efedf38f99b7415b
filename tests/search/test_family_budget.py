"""`search.family_budget`: which model family each trial belongs to. `equal` and `dimensions` fix the family by
shares (start trials and running trials counted, a resumed study carrying on); TPE samples the rest."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import optuna
import pytest

from raygex.search.sampling import FamilyShareSampler, family_sampler, family_weights, next_family
from raygex.search.space import define_by_run, family_dimensions, family_sizes, parse_space, start_points

SPACE = {"model": ["gcn", "mlp", "lr"], "graph": "all", "depth": {"int": [1, 3]}, "channels": [8, 16, 32],
         "dropout": {"float": [0.0, 0.5]}, "lr": {"loguniform": [1e-4, 1e-2]}, "C": {"loguniform": [1e-4, 1e4]}}
GRAPHS = ["true", "true:random", "empty"]


def families_of(kind: str, trials: int, seed: int = 0, study=None, space=SPACE) -> tuple[Counter, optuna.Study]:
    parsed = parse_space(space, GRAPHS)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if study is None:
        study = optuna.create_study(direction="maximize", sampler=family_sampler(
            kind, family_dimensions(parsed), family_sizes(parsed), seed, trials))
        for point in start_points(parsed, "choices"):
            study.enqueue_trial(point)
    space = define_by_run(parsed)
    while len(study.trials) < trials:
        trial = study.ask()
        space(trial)
        # a score that favours logistic regression, as a convex fit on one split often is
        study.tell(trial, {"lr": 0.9, "mlp": 0.8, "gcn": 0.7}[trial.params["model"]] + 0.01 * (trial.number % 3))
    return Counter(t.params["model"] for t in study.trials), study


def test_the_dimensions_of_each_family_are_the_parameters_it_searches():
    assert family_dimensions(parse_space(SPACE, GRAPHS)) == {"gcn": 5, "mlp": 2, "lr": 1}


def test_next_family_fills_the_floor_first_then_the_largest_deficit():
    weights = {"gcn": 6.0, "mlp": 3.0, "lr": 1.0}
    assert next_family(weights, {"gcn": 3, "mlp": 1, "lr": 1}, floor=3) == "mlp"
    assert next_family(weights, {"gcn": 3, "mlp": 3, "lr": 3}, floor=3) == "gcn"  # 6/10 of 10 = 6 > 3
    assert next_family({"gcn": 1.0, "mlp": 1.0, "lr": 1.0}, {"gcn": 2, "mlp": 2, "lr": 2}) == "gcn"  # ties: order
    assert next_family({"gcn": 1.0, "mlp": 1.0, "lr": 1.0}, {"gcn": 3, "mlp": 2, "lr": 3}) == "mlp"
    assert family_weights("tpe", {"gcn": 6, "lr": 1}) is None
    with pytest.raises(ValueError, match="family_budget"):
        family_weights("fair", {"gcn": 6})


def test_equal_gives_each_family_the_same_trials_where_tpe_follows_the_best_family():
    equal, _ = families_of("equal", 24)
    assert equal == {"gcn": 8, "mlp": 8, "lr": 8}
    tpe, _ = families_of("tpe", 24)
    assert tpe["lr"] > 8  # TPE keeps sampling the family that scored best


def test_dimensions_shares_the_trials_by_parameters_searched_with_a_floor():
    counts, _ = families_of("dimensions", 24)
    # the 5 start trials (gcn on 3 graphs, mlp, lr), the floor of 3 each, then shares 5:2:1 of 24
    assert counts == {"gcn": 15, "mlp": 6, "lr": 3}, counts


def test_the_shares_survive_a_pickled_and_resumed_study():
    first, study = families_of("equal", 10)
    study.sampler = pickle.loads(pickle.dumps(study.sampler))  # Tune pickles the searcher into its checkpoints
    assert isinstance(study.sampler, FamilyShareSampler)
    again, _ = families_of("equal", 24, study=study)
    assert again == {"gcn": 8, "mlp": 8, "lr": 8}


def test_a_family_whose_space_is_used_up_is_not_chosen_again():
    counts, study = families_of("dimensions", 12, space={**SPACE, "C": 1.0})  # one logistic regression
    assert counts["lr"] == 1 and counts["gcn"] + counts["mlp"] == 11


def test_each_family_learns_from_its_own_trials_when_it_trails_the_study():
    """The GCN's best dropout is 0.4 while every logistic regression scores higher: a TPE over the whole study
    finds no GCN among its best trials and samples the GCN's dropout as if at random; the family's own TPE
    converges on 0.4."""
    def distance(seed: int) -> float:
        study = optuna.create_study(direction="maximize", sampler=family_sampler(
            "equal", {"gcn": 1, "lr": 1}, {"gcn": None, "lr": None}, seed, 60))
        for _ in range(60):
            trial = study.ask()
            if trial.suggest_categorical("model", ["gcn", "lr"]) == "gcn":
                value = 0.85 - (trial.suggest_float("dropout", 0.0, 1.0) - 0.4) ** 2
            else:
                value = 0.9 + 1e-3 * trial.suggest_float("C", 1e-4, 1e4, log=True) / 1e4
            study.tell(trial, value)
        dropouts = [t.params["dropout"] for t in study.trials if "dropout" in t.params]
        return float(np.mean(np.abs(np.array(dropouts[-10:]) - 0.4)))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mean = np.mean([distance(seed) for seed in range(6)])
    assert mean < 0.2, mean  # uniform draws on [0, 1]: 0.26 on average (a random sampler per family: 0.27)

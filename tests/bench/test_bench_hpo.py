"""`raygex bench hpo`: the replay of ASHA is Ray's rule, compute is charged as run, the compute-to-target is
right, TPE methods run raygex's enqueued choices first and never a configuration twice, and the CLI end to end on
a tiny real table."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from raygex.bench.hpo_sim import (Asha, METHODS, choice_points, compute_to_target, grid_best,
                                  grid_compute, simulate, value_at)
from raygex.bench.hpo_table import Grid, Param, config_key
from raygex.search.scheduler import asha_milestones

GRID = Grid({
    "gcn": (Param("graph", "choice", ("g1", "g2", "empty")), Param("depth", "int", (1, 2)),
            Param("lr", "index", (1e-4, 1e-3, 1e-2))),
    "mlp": (Param("dropout", "index", (0.0, 0.5)), Param("lr", "index", (1e-4, 1e-3, 1e-2))),
    "lr": (Param("lr", "index", (1e-4, 1e-3, 1e-2)),),
})


def row(valid, test=None) -> dict:
    """A table row from a validation curve (best so far and the test AUC of its best epoch, as run_trial logs)."""
    test = list(valid) if test is None else list(test)
    best, best_test, out_valid, out_test = -math.inf, math.nan, [], []
    for v, t in zip(valid, test):
        if v > best:
            best, best_test = v, t
        out_valid.append(best)
        out_test.append(best_test)
    return {"valid": list(valid), "best_valid": out_valid, "best_test": out_test, "seconds": 0.1 * len(valid)}


def synthetic_table(grid: Grid, max_t: int, seed: int = 0) -> dict[str, dict]:
    """Curves rising to a configuration-dependent level, noisy, each cut by a patience-like stop."""
    rng = np.random.default_rng(seed)
    table = {}
    for params in grid.points():
        level = 0.6 + 0.35 * rng.random()
        n = int(rng.integers(3, max_t + 1))
        curve = level * (1 - np.exp(-np.arange(1, n + 1) / rng.uniform(1, 6))) + rng.normal(0, 0.01, n)
        table[config_key(params)] = {"key": config_key(params), "params": params,
                                     **row(curve.tolist(), (curve + rng.normal(0, 0.02, n)).tolist())}
    return table


def test_asha_rungs_are_rays():
    from ray.tune.schedulers.async_hyperband import _Bracket

    for grace, max_t in [(5, 30), (10, 100), (2, 8), (1, 64), (3, 3)]:
        assert asha_milestones(grace, max_t) == sorted(m for m, _ in _Bracket(grace, max_t, 4, 0)._rungs)


@pytest.mark.parametrize("grace,max_t", [(2, 8), (2, 32), (5, 30), (1, 16)])
def test_asha_replay_stops_what_rays_scheduler_stops_and_charges_epochs_run(grace, max_t):
    """Ray's own ASHAScheduler, driven trial after trial through the same results, stops the same trials at the
    same epochs (and records completions the same way: later decisions agree too)."""
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    rng = np.random.default_rng(grace * 100 + max_t)
    ray_asha = ASHAScheduler(time_attr="epoch", metric="best_valid_auc", mode="max", max_t=max_t,
                             grace_period=grace, reduction_factor=4)
    ours = Asha(grace, max_t)
    stopped = 0
    for i in range(60):
        n = int(rng.integers(1, max_t + 1))
        r = row(list(rng.random(n)))
        trial = SimpleNamespace(trial_id=f"t{i}")
        ray_asha.on_trial_add(None, trial)
        ran, ray_stopped = n, False
        for epoch in range(1, n + 1):
            result = {"epoch": epoch, "best_valid_auc": r["best_valid"][epoch - 1]}
            if ray_asha.on_trial_result(None, trial, result) == TrialScheduler.STOP:
                ran, ray_stopped = epoch, epoch < max_t  # at max_t every trial ends: not ASHA's decision
                break
        ray_asha.on_trial_complete(None, trial, result)
        outcome = ours.run(r)
        assert outcome.epochs == ran, (i, n)
        assert outcome.stopped == ray_stopped
        assert outcome.best_valid == r["best_valid"][ran - 1] and outcome.test == r["best_test"][ran - 1]
        stopped += outcome.stopped
    assert stopped > 5  # the rule was exercised


def test_asha_by_hand():
    """Rungs 2 and 8 (grace 2, max_t 8): the first trial sets the bar, a worse one stops at epoch 2 and costs 2."""
    asha = Asha(2, 8)
    assert asha.run(row([0.5, 0.7, 0.8])).epochs == 3  # alone at rung 2: never stopped
    worse = asha.run(row([0.4, 0.6, 0.9, 0.95]))  # 0.6 < 0.7 at epoch 2: stopped, its later 0.95 unseen
    assert (worse.epochs, worse.stopped, worse.best_valid) == (2, True, 0.6)
    assert asha.run(row([0.9, 0.9, 0.91])).epochs == 3  # 0.9 above the 75th percentile of [0.7, 0.6]


def test_grid_compute_is_the_sum_of_the_table_and_the_grid_sees_it_all():
    table = synthetic_table(GRID, 12)
    epochs, seconds = grid_compute(table)
    assert epochs == sum(len(r["best_valid"]) for r in table.values())
    curve = simulate("grid", table, GRID, seed=3, grace=2, max_t=12)
    assert len(curve) == len(table) and curve[-1]["epochs"] == epochs
    assert curve[-1]["best_valid"] == grid_best(table)[0]
    assert abs(curve[-1]["seconds"] - seconds) < 1e-6
    orders = {tuple(config_key(p["params"]) for p in simulate("grid", table, GRID, seed=s, grace=2, max_t=12))
              for s in (0, 1)}
    assert len(orders) == 2  # a different order per seed


def test_compute_to_target_against_an_independent_computation():
    table = synthetic_table(GRID, 12, seed=1)
    best = grid_best(table)[0]
    for method in METHODS:
        for seed in range(2):
            curve = simulate(method, table, GRID, seed=seed, grace=2, max_t=12)
            runs = np.array([p["run"] for p in curve])
            values = np.array([table[config_key(p["params"])]["best_valid"][p["run"] - 1] for p in curve])
            spent, so_far = np.cumsum(runs), np.maximum.accumulate(values)
            for target in (best - 0.01, best - 0.05, best + 0.01):
                hit = np.nonzero(so_far >= target - 1e-12)[0]
                expected = int(spent[hit[0]]) if len(hit) else None
                assert compute_to_target(curve, target) == expected, (method, seed, target)
            assert value_at(curve, spent[2]) == so_far[2] and math.isnan(value_at(curve, spent[0] - 1))


def test_tpe_methods_enqueue_the_choices_first_and_nothing_runs_twice():
    table = synthetic_table(GRID, 10, seed=2)
    choices = choice_points(GRID)
    assert choices == [{"model": "mlp"}, {"model": "lr"}] + [{"model": "gcn", "graph": g}
                                                             for g in ("g1", "g2", "empty")]
    for method in ("tpe+asha", "tpe-mv+asha", "tpe"):
        curve = simulate(method, table, GRID, seed=0, grace=2, max_t=10)
        first = [{k: p["params"][k] for k in c} for p, c in zip(curve, choices)]
        assert first == choices, method
        keys = [config_key(p["params"]) for p in curve]
        assert len(keys) == len(set(keys)) == len(table), method  # every configuration once, none twice
    random_first = [simulate("random", table, GRID, seed=s, grace=2, max_t=10)[0]["params"]["model"]
                    for s in range(6)]
    assert len(set(random_first)) > 1  # random search enqueues nothing


def test_asha_methods_spend_less_than_the_grid():
    table = synthetic_table(GRID, 16, seed=4)
    total = grid_compute(table)[0]
    for method in ("tpe+asha", "random+asha"):
        curve = simulate(method, table, GRID, seed=0, grace=2, max_t=16)
        assert curve[-1]["epochs"] < total and any(p["stopped"] for p in curve)
        assert curve[-1]["epochs"] == sum(p["run"] for p in curve)


def test_cli_on_a_tiny_demo_table_writes_the_plot_and_json(run_cli, tmp_path):
    plot = tmp_path / "hpo.png"
    code, out, err = run_cli("bench", "hpo", "--dataset", "demo-tiny", "--seeds", "2", "--workdir", tmp_path,
                             "--plot", plot, "--workers", "0", "--shared", tmp_path / "no-shared", "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    tiny = result["datasets"]["demo-tiny"]
    assert set(tiny["methods"]) == set(METHODS) and tiny["configs"] == 8
    assert plot.stat().st_size > 10_000 and result["plot"] == str(plot)
    assert (tmp_path / "demo-tiny" / "table.jsonl").exists()
    provenance = json.loads((tmp_path / "demo-tiny" / "provenance.json").read_text())
    assert provenance["split"]["split_seed"] == 0 and provenance["expression_sha256"]
    # A rerun reads the table (no training) and BRCA is skipped, with its reason, without ../shared.
    code, out, err = run_cli("bench", "hpo", "--dataset", "demo-tiny", "--dataset", "brca-n50", "--seeds", "2",
                             "--workdir", tmp_path, "--workers", "0", "--shared", tmp_path / "no-shared")
    assert code == 0, err
    assert "brca-n50: skipped" in out and "absent" in out and "TPE + ASHA" in out


def test_brca_config_uses_the_real_split(shared_data, tmp_path):
    from raygex.bench.hpo_table import DATASETS
    from raygex.data.prepare import load_dataset, load_graphs, trial_data

    config = DATASETS["brca-n50"].config(tmp_path, shared_data)
    data = trial_data(config, "pam50-n50", load_dataset(config), load_graphs(config), seed=0, graph=None)
    assert (len(data.y_train), len(data.y_valid), len(data.y_test)) == (50, 100, 200)
    assert data.folds is None and len(data.classes) == 5


def slow_and_fast_table(max_t: int = 20) -> dict[str, dict]:
    """GCNs that learn slowly and end highest, MLPs and LR that peak at once: ASHA over the whole study stops GCNs
    at the first rung."""
    table = {}
    for params in GRID.points():
        level = {"gcn": 0.95, "mlp": 0.85, "lr": 0.80}[params["model"]] - 0.01 * params.get("depth", 0)
        level -= 0.02 * (params.get("lr", 1e-3) != 1e-3)
        epochs = np.arange(1, max_t + 1)
        curve = level * (1 - np.exp(-epochs / (8.0 if params["model"] == "gcn" else 0.5)))
        table[config_key(params)] = {"key": config_key(params), "params": params, **row(curve.tolist())}
    return table


def test_rungs_per_family_compare_a_trial_with_its_own_family_only():
    table = slow_and_fast_table()
    study = simulate("random+asha", table, GRID, seed=0, grace=2, max_t=20)
    family = simulate("random+asha-family", table, GRID, seed=0, grace=2, max_t=20)
    assert [p["params"] for p in study] == [p["params"] for p in family]  # same sampler, same order
    stopped_gcn = [p for p in study if p["stopped"] and p["params"]["model"] == "gcn"]
    assert stopped_gcn  # slow GCNs lose to the quick families at the study's first rung
    # per family: the first trial of each family to reach a rung is never stopped there, and a GCN is stopped only
    # below the 75th percentile of the GCNs before it at that rung (recomputed here by hand)
    rungs = asha_milestones(2, 20)
    seen: dict[tuple, list] = {}
    for point in family:
        params, curve = point["params"], table[config_key(point["params"])]["best_valid"]
        expected_stop = None
        for epoch in rungs:
            if epoch > len(curve) or epoch >= 20:
                break
            earlier = seen.setdefault((params["model"], epoch), [])
            cutoff = np.nanpercentile(earlier, 75) if earlier else None
            earlier.append(curve[epoch - 1])
            if cutoff is not None and curve[epoch - 1] < cutoff:
                expected_stop = epoch
                break
        assert point["stopped"] == (expected_stop is not None), params
        assert point["run"] == (expected_stop or len(curve)), params


def test_fairness_counts_against_a_hand_count():
    from raygex.bench.asha_fairness import fairness

    table = slow_and_fast_table()
    runs = [simulate("random+asha", table, GRID, seed=s, grace=2, max_t=20) for s in range(3)]
    result = fairness(runs, table, trials=10)
    assert result["replays"] == 3 and result["trials"] == 10
    for model in ("gcn", "mlp", "lr"):
        trials = stopped = lost = near = near_stopped = 0
        for curve in runs:
            best = max(p["valid"] for p in curve[:10])
            lost += any(p["stopped"] and p["params"]["model"] == model and
                        table[config_key(p["params"])]["best_valid"][-1] > best for p in curve[:10])
            for p in curve[:10]:
                if p["params"]["model"] != model:
                    continue
                full = table[config_key(p["params"])]["best_valid"][-1]
                trials += 1
                stopped += p["stopped"]
                near += full >= best - 0.01
                near_stopped += p["stopped"] and full >= best - 0.01
        got = result["families"].get(model, {"trials": 0, "stopped": 0, "lost": 0, "near": 0, "near_stopped": 0})
        assert (got["trials"], got["stopped"], got["lost"], got["near"], got["near_stopped"]) == \
            (trials, stopped, lost, near, near_stopped), model
    assert result["families"]["gcn"]["lost"] > 0  # the slow winners stopped: what the table is built to show
    family = fairness([simulate("random+asha-family", table, GRID, seed=s, grace=2, max_t=20) for s in range(3)],
                      table, trials=10)
    assert family["families"]["gcn"]["lost"] < result["families"]["gcn"]["lost"]


@pytest.mark.parametrize("grace,max_t", [(2, 8), (5, 30)])
def test_rungs_per_family_scheduler_stops_what_the_replay_stops(grace, max_t):
    """raygex's scheduler for ``search.scheduler.rungs: family`` (Ray's ASHA with one bracket per model family),
    driven through the same results as the replay's per-family rule, stops the same trials at the same epochs;
    and a trial is never stopped by another family's results."""
    from ray.tune.schedulers import TrialScheduler

    from raygex.search.tune_compat.family_asha import FamilyASHAScheduler

    rng = np.random.default_rng(grace + max_t)
    scheduler = FamilyASHAScheduler(time_attr="epoch", metric="best_valid_auc", mode="max", max_t=max_t,
                                    grace_period=grace, reduction_factor=4)
    ours: dict[str, Asha] = {}
    stopped = {"gcn": 0, "mlp": 0}
    for i in range(60):
        family = "gcn" if rng.random() < 0.5 else "mlp"
        n = int(rng.integers(1, max_t + 1))
        # GCN curves low (slow), MLP curves high: ranked together, GCNs would be stopped nearly always
        r = row(list(rng.random(n) * (0.5 if family == "gcn" else 1.0) + (0.0 if family == "gcn" else 0.5)))
        trial = SimpleNamespace(trial_id=f"t{i}", config={"model": family})
        scheduler.on_trial_add(None, trial)
        ran, ray_stopped = n, False
        for epoch in range(1, n + 1):
            result = {"epoch": epoch, "best_valid_auc": r["best_valid"][epoch - 1]}
            if scheduler.on_trial_result(None, trial, result) == TrialScheduler.STOP:
                ran, ray_stopped = epoch, epoch < max_t
                break
        scheduler.on_trial_complete(None, trial, result)
        outcome = ours.setdefault(family, Asha(grace, max_t)).run(r)
        assert (outcome.epochs, outcome.stopped) == (ran, ray_stopped), (i, family, n)
        stopped[family] += outcome.stopped
    assert stopped["gcn"] and stopped["mlp"]
    rungs = scheduler.rungs_by_family()
    assert set(rungs) == {"gcn", "mlp"}
    gcn_ids = {t for _, recorded in rungs["gcn"] for t in recorded}
    mlp_ids = {t for _, recorded in rungs["mlp"] for t in recorded}
    assert gcn_ids and mlp_ids and not gcn_ids & mlp_ids


def test_config_rungs_family_builds_the_family_scheduler():
    from ray.tune.schedulers import ASHAScheduler

    from raygex.config import ExperimentConfig
    from raygex.search.scheduler import build_scheduler
    from raygex.search.tune_compat.family_asha import FamilyASHAScheduler

    base = dict(name="x", data={"expression": "e.parquet"}, tasks=[{"name": "t", "kind": "classify", "label": "y"}])
    family = build_scheduler(ExperimentConfig(**base, search={"scheduler": {"rungs": "family"}}), "m", "max")
    study = build_scheduler(ExperimentConfig(**base), "m", "max")
    assert isinstance(family, FamilyASHAScheduler) and type(study) is ASHAScheduler

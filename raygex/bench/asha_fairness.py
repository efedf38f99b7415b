"""Is ASHA fair to every model family? Counted on the replays of `raygex bench hpo` (:mod:`raygex.bench.hpo_sim`).

ASHA compares every trial at a rung with the trials that reached it before, whatever their family; a family that
learns slowly (a GCN still rising at the first rung while an MLP has peaked) may be stopped there although its full
run would have been the study's best. Over the first ``trials`` trials of each replay (a study's ``num_samples``),
per family:

* ``stopped``: the share of the family's trials that ASHA stopped;
* ``lost``: replays in which a stopped trial of the family would have been the study's best had it run on (its
  full run's best validation AUC, from the table, above the best validation AUC the replay ended with);
* ``near_stopped``: of the family's trials whose full run comes within ``WITHIN`` of the replay's final best (the
  trials worth finishing), the share ASHA stopped.

The table's full runs are what the trials would have done unstopped (raygex's patience applies to every method),
so these counts need no training beyond the table's.
"""

from __future__ import annotations

import math

import numpy as np

from raygex.bench.hpo_table import config_key

WITHIN = 0.01
ASHA_METHODS = ("random+asha", "random+asha-family", "tpe+asha", "tpe+asha-family", "tpe+asha-families",
               "tpe-equal+asha", "tpe-dims+asha")


def fairness(runs: list[list[dict]], table: dict[str, dict], trials: int) -> dict:
    """Per family, over the replays ``runs`` (one curve per searcher seed) cut at ``trials`` trials: trials,
    stopped, lost winners and the stop rate among near-best full runs; and the replays' final best (valid, test)."""
    families: dict[str, dict] = {}
    finals, tests = [], []
    for replay, curve in enumerate(runs):
        points = curve[:trials]
        best = max(p["valid"] for p in points)
        finals.append(best)
        tests.append(points[-1]["test"])
        for p in points:
            family = families.setdefault(p["params"]["model"], {"trials": 0, "stopped": 0, "lost": 0, "near": 0,
                                                                "near_stopped": 0, "lost_in": set()})
            full = float(table[config_key(p["params"])]["best_valid"][-1])
            family["trials"] += 1
            family["stopped"] += bool(p["stopped"])
            if p["stopped"] and full > best + 1e-12:
                family["lost_in"].add(replay)
            if full >= best - WITHIN:
                family["near"] += 1
                family["near_stopped"] += bool(p["stopped"])
    for family in families.values():
        family["lost"] = len(family.pop("lost_in"))  # replays, not trials: a replay loses its winner once
        family["stopped_share"] = family["stopped"] / family["trials"] if family["trials"] else math.nan
        family["near_stopped_share"] = family["near_stopped"] / family["near"] if family["near"] else math.nan
    return {"families": families, "replays": len(runs), "trials": trials,
            "final_valid": float(np.mean(finals)), "final_test": float(np.mean(tests))}


def fairness_table(curves: dict[str, list[list[dict]]], table: dict[str, dict], trials: int) -> dict:
    """:func:`fairness` for each ASHA method replayed."""
    return {method: fairness(runs, table, trials) for method, runs in curves.items() if method in ASHA_METHODS}


def format_fairness(name: str, result: dict, labels: dict[str, str]) -> list[str]:
    lines = [f"  ASHA fairness ({name}, first {next(iter(result.values()))['trials']} trials of each replay): per "
             f"family, trials stopped / lost winners (replays where a stopped trial's full run beat the study's "
             f"best) / stopped among the full runs within {WITHIN} of the best",
             f"  {'method':33} {'family':6} {'trials':>6} {'stopped':>8} {'lost':>5} {'near-best stopped':>18}  "
             f"{'end: valid':>10} {'test':>6}"]
    for method, r in result.items():
        for i, (family, f) in enumerate(sorted(r["families"].items())):
            head = (labels.get(method, method), f"{r['final_valid']:10.4f} {r['final_test']:6.4f}") if i == 0 \
                else ("", "")
            near = f"{f['near_stopped']}/{f['near']}"
            lines.append(f"  {head[0]:33} {family:6} {f['trials']:6} {100 * f['stopped_share']:7.0f}% "
                         f"{f['lost']:>3}/{r['replays']:<2} {near:>18}  {head[1]}")
    return lines

"""Does a graph help? Paired graph-vs-control gains with intervals and p-values that count both sources of noise,
Holm-corrected across a study's comparisons, and a verdict word: ``helps``, ``hurts`` or ``inconclusive``.

The evidence is the graph swap (:mod:`raygex.analysis.evaluation`): the study's best GCN configuration retrained with each
graph and control swapped in, on every split seed, with the same split and the same initialisation seed, all
scored on one fixed test set. Two things make a measured gain uncertain:

* **split-to-split variance**: another draw of training and validation samples trains another model;
* **test-sample noise**: the fixed test set is itself a sample of the population.

Why a two-level (hierarchical) paired bootstrap, and not the Nadeau–Bengio corrected resampled t-test: that test
corrects for overlapping *test* sets drawn afresh each split, and its variance correction assumes the test sets
differ between splits. Here the test set is fixed for the study (so nothing that selected a model ever scores
it), and the seed-to-seed spread says nothing about test-sample noise. The bootstrap resamples both levels: each
replicate draws the split seeds with replacement and the test samples with replacement (the same test samples for
the graph and its control, and for every drawn seed, since the test set is shared), recomputes the metric of both
on those samples, and averages graph − control over the drawn seeds. The interval is the percentile interval of
the replicates; the two-sided p-value is ``2 · min(P(gain ≤ 0), P(gain ≥ 0))`` over the replicates (at least
``1 / B``).

Several comparisons per study (each real graph against each of its controls) are Holm-corrected. The interval
reported with a comparison is taken at its Holm step's level (``α / (m − rank + 1)``, the level its adjusted
p-value is compared with), so interval and adjusted p-value tell the same story. The verdict is ``helps`` when the
adjusted p-value is below α and the gain is positive and its interval excludes 0 (``hurts`` on the negative side),
else ``inconclusive`` — absence of evidence is never worded as evidence of absence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raygex.metrics import MODE, clipped, resampled_metric

ALPHA = 0.05
N_BOOT = 2000


def paired_bootstrap(metric: str, y_by_seed: list[np.ndarray], graph_proba: list[np.ndarray],
                     control_proba: list[np.ndarray], *, n_boot: int = N_BOOT, seed: int = 0,
                     higher_is_better: bool = True) -> dict:
    """Gain of graph over control (positive = graph better), averaged over seeds, with its bootstrap replicates.

    Each list holds one entry per split seed, all over the same fixed test samples in the same order.
    """
    n_seeds, n = len(y_by_seed), len(y_by_seed[0])
    sign = 1.0 if higher_is_better else -1.0
    full = np.arange(n)[None, :]
    graph_proba, control_proba = [clipped(p) for p in graph_proba], [clipped(p) for p in control_proba]
    point = np.mean([sign * (resampled_metric(metric, y, g, full)[0] - resampled_metric(metric, y, c, full)[0])
                     for y, g, c in zip(y_by_seed, graph_proba, control_proba)])
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, n, size=(n_boot, n))
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    per_seed = np.stack([sign * (resampled_metric(metric, y, g, samples) - resampled_metric(metric, y, c, samples))
                         for y, g, c in zip(y_by_seed, graph_proba, control_proba)])  # [seeds, B]
    replicates = np.nanmean(np.take_along_axis(per_seed.T, seeds, axis=1), axis=1)
    replicates = replicates[np.isfinite(replicates)]
    p = 2 * min((replicates <= 0).mean(), (replicates >= 0).mean())
    return {"gain": float(point), "replicates": replicates, "p": float(min(1.0, max(p, 1.0 / len(replicates))))}


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def holm_levels(p_values, alpha: float = ALPHA) -> np.ndarray:
    """The level each comparison is tested at in Holm's procedure (``alpha / (m − rank)``, rank from 0)."""
    p = np.asarray(p_values, dtype=float)
    levels = np.empty(len(p))
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        levels[i] = alpha / (len(p) - rank)
    return levels


def word(gain: float, low: float, high: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    if p_adjusted < alpha and low > 0 and gain > 0:
        return "helps"
    if p_adjusted < alpha and high < 0 and gain < 0:
        return "hurts"
    return "inconclusive"


def verdict_table(comparisons: list[dict], alpha: float = ALPHA) -> pd.DataFrame:
    """Holm-correct a study's comparisons and word them.

    Each comparison holds ``graph``, ``control``, ``metric``, ``seeds``, ``edges_graph``, ``edges_control``,
    ``gain``, ``replicates`` and ``p`` (from :func:`paired_bootstrap`), or a ``reason`` why there is no test.
    """
    tested = [c for c in comparisons if c.get("reason") is None]
    adjusted = holm([c["p"] for c in tested]) if tested else []
    levels = holm_levels([c["p"] for c in tested], alpha) if tested else []
    rows = []
    for c, p_adj, level in zip(tested, adjusted, levels):
        low, high = np.quantile(c["replicates"], [level / 2, 1 - level / 2])
        rows.append({**_fields(c), "gain": c["gain"], "low": float(low), "high": float(high), "p": c["p"],
                     "p_adjusted": float(p_adj), "level": float(1 - level),
                     "verdict": word(c["gain"], low, high, p_adj, alpha), "reason": None})
    for c in comparisons:
        if c.get("reason") is not None:
            rows.append({**_fields(c), "gain": c.get("gain", np.nan), "low": np.nan, "high": np.nan, "p": np.nan,
                         "p_adjusted": np.nan, "level": np.nan, "verdict": "inconclusive", "reason": c["reason"]})
    return pd.DataFrame(rows, columns=["graph", "control", "metric", "gain", "low", "high", "p", "p_adjusted",
                                       "level", "verdict", "seeds", "edges_graph", "edges_control", "reason"])


def _fields(c: dict) -> dict:
    return {k: c.get(k) for k in ("graph", "control", "metric", "seeds", "edges_graph", "edges_control")}


def sentence(row, size=None) -> str:
    """One line per comparison, e.g. "graph genemania helps auc over genemania:random: +0.041 (95% CI ...)"."""
    at = f" at n = {size:g}" if size is not None else ""
    if row["reason"]:
        return f"graph {row['graph']} vs {row['control']}{at}: inconclusive ({row['reason']})"
    return (f"graph {row['graph']} vs {row['control']}{at}: {row['verdict']} — {row['metric']} gain "
            f"{row['gain']:+.3f} ({100 * row['level']:.1f}% CI [{row['low']:+.3f}, {row['high']:+.3f}], Holm-adjusted "
            f"p = {row['p_adjusted']:.3g}, {row['seeds']} split seeds)")


def study_verdicts(layout, study: str, *, n_boot: int = N_BOOT) -> pd.DataFrame:
    """The verdict table of a study, from its graph swap (see :mod:`raygex.analysis.swap`): each real graph against each of
    its controls (its own randomisation, the empty graph, co-expression)."""
    from raygex.analysis.choices import controls_of
    from raygex.config import metric_name
    from raygex.graphs.controls import parse_control

    config = layout.config
    table, predictions = layout.read_swap(study)
    metric = metric_name(config)
    if table is None or table.empty:
        return verdict_table([])
    seeds = sorted(table["seed"].unique())
    edges = table.groupby("graph")["edges"].mean()
    columns = [col for col in predictions.columns if col.startswith("p") and col[1:].isdigit()]
    runs = {key: run.sort_values("row") for key, run in predictions.groupby(["seed", "graph"])}  # one per swap run
    comparisons = []
    for graph in config.graphs:
        for control in controls_of(graph, config.graph_choices()):
            base = {"graph": graph, "control": control, "metric": metric, "seeds": len(seeds),
                    "edges_graph": float(edges.get(graph, np.nan)), "edges_control": float(edges.get(control, np.nan))}
            if graph not in edges or control not in edges:
                comparisons.append({**base, "reason": "not in the graph swap"})
                continue
            if parse_control(control)[0] == "random" and base["edges_graph"] < 2:
                comparisons.append({**base, "reason": f"{graph} has {base['edges_graph']:g} edges among the task's "
                                                      f"inputs: too few to rewire"})
                continue
            if len(seeds) < 2:
                comparisons.append({**base, "reason": "one split seed: no split-to-split variance to measure"})
                continue
            ys = [runs[(seed, graph)]["y"].to_numpy() for seed in seeds]
            g_proba = [runs[(seed, graph)][columns].to_numpy() for seed in seeds]
            c_proba = [runs[(seed, control)][columns].to_numpy() for seed in seeds]
            result = paired_bootstrap(metric, ys, g_proba, c_proba, n_boot=n_boot, seed=0,
                                      higher_is_better=MODE[metric] == "max")
            comparisons.append({**base, **result})
    return verdict_table(comparisons)

"""`raygex bench hpo`: search quality. Does TPE + ASHA reach the best configuration with less compute than random
search or a grid?

A tabular benchmark (Klein & Hutter 2019, "Tabular benchmarks for joint architecture and hyperparameter
optimization", the usual way to compare HPO methods at equal compute): every configuration of a discretised copy
of the study's search space is trained once with raygex's training loop and its per-epoch curves are kept
(:mod:`raygex.bench.hpo_table`); each method is then replayed over that table with Optuna's real samplers and Ray's
ASHA rule (:mod:`raygex.bench.hpo_sim`), for several searcher seeds, at no training cost. Every method therefore
sees the same trials with the same outcomes, and differences are the searcher's, not training noise.

Compute is epochs summed over trials (a trial stopped by ASHA costs the epochs it ran; raygex's patience applies
to every method); the grid's compute is the sum over the whole table. Per method and seed the curve is (compute,
best validation AUC so far, test AUC of that trial's best epoch). Reported per method: the compute needed to come
within 0.01 AUC of the grid's best validation AUC, as a fraction of the grid's compute (median and mean over
seeds; a seed that never gets there counts as infinite), the same in training seconds (the table's timings, so
a GCN epoch weighs more than a logistic regression's), the best validation AUC and its test AUC at 25 % of the
grid's compute and at the end. The data sets: the demo's classify task and TCGA BRCA PAM50 with 50 and 200
training samples (one validation split of 100, the fixed test set of 200), skipped when ../shared is absent.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from raygex.bench.asha_fairness import fairness_table, format_fairness
from raygex.bench.hpo_sim import LABELS, METHODS, compute_to_target, grid_best, grid_compute, simulate, value_at
from raygex.bench.hpo_table import DATASETS, build_table, complete

REAL_DATASETS = ("demo", "brca-n50", "brca-n200")
WITHIN = 0.01
QUARTER = 0.25
STUDY_TRIALS = 24  # the shipped configs' num_samples: where ASHA's fairness is counted


def _mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else math.nan


def summarise(curves: dict[str, list[list[dict]]], table: dict[str, dict]) -> dict:
    """Per method, over seeds: compute to the target (fractions of the grid's), values at 25 % and at the end."""
    epochs, seconds = grid_compute(table)
    best, best_test, best_key = grid_best(table)
    target = best - WITHIN
    methods = {}
    for method, runs in curves.items():
        to_epochs = [compute_to_target(c, target) for c in runs]
        to_seconds = [compute_to_target(c, target, "seconds") for c in runs]
        to_best = [compute_to_target(c, best) for c in runs]
        fractions = [math.inf if v is None else v / epochs for v in to_epochs]
        best_fractions = [math.inf if v is None else v / epochs for v in to_best]
        second_fractions = [math.inf if v is None else v / seconds for v in to_seconds] if seconds else []
        methods[method] = {
            "label": LABELS[method], "to_target_fraction": fractions,
            "median_fraction": float(np.median(fractions)), "mean_fraction": float(np.mean(fractions)),
            "reached": sum(v is not None for v in to_epochs), "seeds": len(runs),
            "median_seconds_fraction": float(np.median(second_fractions)) if second_fractions else math.nan,
            # a stricter target: the grid's best validation AUC itself
            "to_best_fraction": best_fractions, "median_best_fraction": float(np.median(best_fractions)),
            "best_reached": sum(v is not None for v in to_best),
            "quarter_valid": _mean(value_at(c, QUARTER * epochs) for c in runs),
            "quarter_test": _mean(value_at(c, QUARTER * epochs, "test") for c in runs),
            "final_valid": _mean(c[-1]["best_valid"] for c in runs),
            "final_test": _mean(c[-1]["test"] for c in runs),
            "final_fraction": _mean(c[-1]["epochs"] / epochs for c in runs),
            "trials": _mean(len(c) for c in runs),
        }
    return {"configs": len(table), "grid_epochs": epochs, "grid_seconds": round(seconds, 1), "grid_best_valid": best,
            "grid_best_test": best_test, "grid_best_config": json.loads(best_key), "target": target,
            "methods": methods}


def verdict(summary: dict) -> dict:
    """TPE + ASHA (one TPE over the study) against the ≤ 25 % goal (and which method does best, the sweep's
    default family shares among them), and multivariate TPE against TPE."""
    methods = summary["methods"]
    tpe = methods.get("tpe+asha")
    out = {}
    if tpe is not None:
        out["tpe_asha_meets_quarter"] = tpe["median_fraction"] <= QUARTER
    searched = {m: v for m, v in methods.items() if m != "grid"}
    if searched:
        out["best_method"] = min(searched, key=lambda m: (searched[m]["median_fraction"],
                                                          searched[m]["mean_fraction"]))
    mv = methods.get("tpe-mv+asha")
    if tpe is not None and mv is not None:
        faster = (mv["median_fraction"], mv["mean_fraction"]) < (tpe["median_fraction"], tpe["mean_fraction"])
        out["multivariate_faster"] = bool(faster)
        for target, field in (("within", "to_target_fraction"), ("best", "to_best_fraction")):
            # per seed (same seed, the two samplers): multivariate needed less / the same / more compute
            pairs = list(zip(mv[field], tpe[field]))
            out[f"multivariate_vs_tpe_{target}"] = {"wins": sum(a < b for a, b in pairs),
                                                    "ties": sum(a == b for a, b in pairs),
                                                    "losses": sum(a > b for a, b in pairs)}
        out["multivariate_quarter_valid_delta"] = mv["quarter_valid"] - tpe["quarter_valid"]
        out["multivariate_final_test_delta"] = mv["final_test"] - tpe["final_test"]
    return out


def run_dataset(name: str, workdir: Path, shared: Path, seeds: int, *, workers: int = 2,
                build_seconds: float | None = None, methods=tuple(METHODS), log: Callable[[str], None] = print
                ) -> dict:
    """Build (or read) the table of data set ``name`` and replay every method for ``seeds`` seeds."""
    spec = DATASETS[name]
    if spec.needs_shared and not (shared / "expression" / "brca_pam50.tsv.gz").exists():
        return {"skipped": f"{shared / 'expression' / 'brca_pam50.tsv.gz'} is absent (../shared data not here)"}
    table, meta = build_table(name, workdir, shared, workers=workers, deadline_s=build_seconds, log=log)
    total = len(spec.grid.points())
    if not complete(name, table):
        return {"incomplete": f"{len(table)} of {total} configurations in the table; run again to continue"}
    grace, max_t = int(meta["grace_period"]), int(meta["train"]["max_epochs"])
    budget = grid_compute(table)[0]
    curves = {m: [simulate(m, table, spec.grid, seed=s, grace=grace, max_t=max_t, budget_epochs=budget)
                  for s in range(seeds)] for m in methods}
    (Path(workdir) / name / "curves.json").write_text(json.dumps(curves))
    summary = summarise(curves, table)
    return {"note": spec.note, "provenance": meta, **summary, "verdict": verdict(summary),
            "fairness": fairness_table(curves, table, min(STUDY_TRIALS, total)), "_curves": curves}


def run_hpo_benchmark(datasets, workdir: Path, shared: Path, seeds: int, plot: Path | None, *, workers: int = 2,
                      build_minutes: float | None = None, log: Callable[[str], None] = print) -> dict:
    workdir, started = Path(workdir), time.perf_counter()
    results = {}
    for name in datasets:
        left = None if build_minutes is None else max(0.0, build_minutes * 60 - (time.perf_counter() - started))
        results[name] = run_dataset(name, workdir, Path(shared), seeds, workers=workers, build_seconds=left, log=log)
    done = {n: r for n, r in results.items() if "methods" in r}
    if plot is not None and done:
        save_plot(done, plot)
    for r in results.values():
        r.pop("_curves", None)
    return jsonable({"seeds": seeds, "within": WITHIN, "datasets": results,
                     "plot": str(plot) if plot and done else None})


def jsonable(value):
    """``value`` with every non-finite float as None (a method that never reaches the target: null in JSON)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _fmt_fraction(value: float | None) -> str:
    return "never" if value is None or not np.isfinite(value) else f"{100 * value:.1f}%"


def _fmt(value: float | None, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:{width}.4f}"


def format_table(result: dict) -> list[str]:
    lines = []
    for name, r in result["datasets"].items():
        if "methods" not in r:
            lines.append(f"{name}: skipped: {r.get('skipped') or r.get('incomplete')}")
            continue
        best = ", ".join(f"{k}={v}" for k, v in r["grid_best_config"].items())
        lines += ["", f"{name}: {r['note']}",
                  f"  grid: {r['configs']} configurations, {r['grid_epochs']} epochs ({r['grid_seconds']:.0f} s); best "
                  f"valid AUC {r['grid_best_valid']:.4f} (test {r['grid_best_test']:.4f}): {best}",
                  f"  target: valid AUC >= {r['target']:.4f} ('to best': >= {r['grid_best_valid']:.4f}); "
                  f"{result['seeds']} searcher seeds; compute as % of the grid's (median over seeds unless 'mean')",
                  f"  {'method':31} {'to target: median':>17} {'mean':>7} {'reached':>7} {'(seconds)':>9}  "
                  f"{'to best':>7}  {'@25%: valid':>11} {'test':>6}  {'end: valid':>10} {'test':>6} {'compute':>7}"]
        for m in r["methods"].values():
            lines.append(f"  {m['label']:31} {_fmt_fraction(m['median_fraction']):>17} "
                         f"{_fmt_fraction(m['mean_fraction']):>7} {m['reached']:>3}/{m['seeds']:<3} "
                         f"{_fmt_fraction(m['median_seconds_fraction']):>9} "
                         f"{_fmt_fraction(m['median_best_fraction']):>7}  {_fmt(m['quarter_valid'], 11)} "
                         f"{_fmt(m['quarter_test'], 6)}  {_fmt(m['final_valid'], 10)} {_fmt(m['final_test'], 6)} "
                         f"{_fmt_fraction(m['final_fraction']):>7}")
        v, tpe = r["verdict"], r["methods"].get("tpe+asha")
        if tpe is not None:
            lines.append(f"  TPE + ASHA: {_fmt_fraction(tpe['median_fraction'])} of the grid's compute (median) to "
                         f"within {WITHIN} of its best: {'meets' if v['tpe_asha_meets_quarter'] else 'misses'} "
                         f"the <= 25 % goal; fastest method: {LABELS[v['best_method']]}")
        if "multivariate_faster" in v:
            within, exact = ("/".join(str(x) for x in v[f"multivariate_vs_tpe_{k}"].values())
                             for k in ("within", "best"))
            lines.append(f"  TPE multivariate+group vs TPE (both + ASHA): "
                         f"{'faster' if v['multivariate_faster'] else 'not faster'} to target; best valid at 25 % "
                         f"{v['multivariate_quarter_valid_delta'] or 0:+.4f}, final test "
                         f"{v['multivariate_final_test_delta'] or 0:+.4f}; per seed (wins/ties/losses) to within "
                         f"{WITHIN}: {within}, to the best: {exact}")
        if r.get("fairness"):
            lines += format_fairness(name, r["fairness"], LABELS)
    if result.get("plot"):
        lines.append(f"plot: {result['plot']}")
    return lines


def save_plot(results: dict, path: Path) -> Path:
    """Per data set: median (line) and range over seeds (band) of the best validation AUC and its test AUC
    against compute, as a fraction of the grid's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(12, 3.6 * len(results)), squeeze=False)
    xs = np.geomspace(1e-3, 1.0, 200)
    for row, (name, r) in enumerate(results.items()):
        for col, (field, title) in enumerate((("best_valid", "best validation AUC"),
                                              ("test", "test AUC of the best-validation trial"))):
            ax = axes[row][col]
            for method, runs in r["_curves"].items():
                ys = np.array([[value_at(c, x * r["grid_epochs"], field) for x in xs] for c in runs])
                with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
                    __import__("warnings").simplefilter("ignore", RuntimeWarning)
                    line, = ax.plot(xs, np.nanmedian(ys, axis=0), label=LABELS[method],
                                    lw=2.4 if method == "tpe+asha" else 1.3, zorder=5 if method == "tpe+asha" else 2)
                    ax.fill_between(xs, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), color=line.get_color(),
                                    alpha=0.08)
            if field == "best_valid":
                ax.axhline(r["target"], color="k", ls=":", lw=1, label=f"grid best - {WITHIN}")
            ax.axvline(QUARTER, color="grey", ls="--", lw=0.8)
            ax.set_xscale("log")
            ax.set_xlim(0.003, 1.05)
            ax.set_xlabel("compute (epochs summed over trials) / grid's compute")
            ax.set_title(f"{name}: {title}", fontsize=10)
            low = r["grid_best_valid"] - 0.08 if field == "best_valid" else None
            if low is not None:
                ax.set_ylim(low, r["grid_best_valid"] + 0.01)
        axes[row][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

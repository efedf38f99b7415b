"""`raygex bench lr`: does the logistic-regression family reach scikit-learn's with the few trials a study gives it?

On the TCGA breast tumours with PAM50 labels (the brca-pam50 config's task: 5 classes, one validation split of
100, a test set of 200), for each training size and split seed:

* **the LR family as a sweep runs it**: its first ``trials`` trials (``C`` drawn log-uniformly from the standard
  space's 1e-4..1e4, as TPE's random start-up draws it), each a full-batch convex fit on the training rows
  (:mod:`raygex.training.convex`), scored on the validation rows, then refitted on the training and validation
  rows at its ``C`` (as a sweep's trial is); the best by validation AUC, its refit scored on the test set;
* **scikit-learn's recommended path**: ``LogisticRegressionCV`` (10 ``Cs`` over 1e-4..1e4, 5 stratified folds
  scored by the same macro one-vs-rest AUC, lbfgs, refit on all) on the same samples, training and validation
  rows together, standardised by their own statistics; scored on the same test set.

Both test AUCs come from :func:`raygex.metrics.classification_metrics`. Reported: the means over split seeds and
the mean paired difference (family − scikit-learn; target ≥ −0.005). ``--train-only`` adds scikit-learn's CV
fit on the training rows alone: the rows the family's fit that selection scores is made on.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from raygex.bench.hpo_table import brca_config
from raygex.metrics import classification_metrics

C_RANGE = (1e-4, 1e4)  # the standard space's, and LogisticRegressionCV's default Cs=10 grid


def family_best(data, n_trials: int, seed: int) -> dict:
    """The LR family's first ``n_trials`` trials on ``data``: the best by validation AUC, its test AUC."""
    from raygex.training.loop import run_trial

    rng = np.random.default_rng(10_007 * seed + n_trials)
    cs = np.exp(rng.uniform(np.log(C_RANGE[0]), np.log(C_RANGE[1]), n_trials))
    runs = [run_trial({"model": "lr", "C": float(c), "seed": seed, "metric": "auc"}, data) for c in cs]
    best = max(runs, key=lambda r: r.best_valid["auc"])
    return {"C": float(best.config["C"]), "valid_auc": best.best_valid["auc"], "test_auc": best.test["auc"],
            "seconds": sum(r.seconds for r in runs)}


def sklearn_cv(data, *, with_valid: bool = True, cs: int = 10) -> dict:
    """scikit-learn's ``LogisticRegressionCV`` on the training and validation rows together (``with_valid``), or
    on the training rows alone (the rows of the family's fit that selection scores)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([data.x_train, data.x_valid] if with_valid else [data.x_train]).astype(np.float64)
    y = np.concatenate([data.y_train, data.y_valid] if with_valid else [data.y_train])
    scaler = StandardScaler().fit(x)
    scoring = "roc_auc_ovr" if len(data.classes) > 2 else "roc_auc"
    started = time.perf_counter()
    model = LogisticRegressionCV(Cs=np.logspace(np.log10(C_RANGE[0]), np.log10(C_RANGE[1]), cs), cv=5,
                                 scoring=scoring, max_iter=5000).fit(scaler.transform(x), y)
    proba = model.predict_proba(scaler.transform(data.x_test.astype(np.float64)))
    test = classification_metrics(data.y_test, proba, len(data.classes))
    return {"C": float(np.atleast_1d(model.C_)[0]), "test_auc": test["auc"], "seconds": time.perf_counter() - started}


def run_lr_benchmark(shared: Path, *, sizes=(50, 200), seeds=(0, 1, 2, 3, 4), trials: int = 3,
                     workdir: Path | None = None, train_only: bool = False, cs: int = 10) -> dict:
    """Every (training size, split seed): the family's best of ``trials`` beside scikit-learn's CV fit (and, with
    ``train_only``, its CV fit on the training rows alone)."""
    from raygex.data.canonical import read_dataset
    from raygex.data.prepare import trial_data

    folder = Path(workdir or tempfile.mkdtemp(prefix="raygex-bench-lr-"))
    folder.mkdir(parents=True, exist_ok=True)
    base = brca_config(folder, Path(shared))
    dataset = read_dataset(base.data.expression)
    rows = []
    for n in sizes:
        config = base.model_copy(update={"split": base.split.model_copy(update={"train": n, "seeds": list(seeds)})})
        for seed in seeds:
            data = trial_data(config, "pam50", dataset, {}, seed=seed, graph=None)
            ours, theirs, on_train = family_best(data, trials, seed), sklearn_cv(data, cs=cs), None
            if train_only:
                on_train = sklearn_cv(data, with_valid=False, cs=cs)
            rows.append({"train": n, "seed": seed, "family": ours, "sklearn": theirs, "sklearn_train_only": on_train,
                         "delta": ours["test_auc"] - theirs["test_auc"],
                         "delta_train_only": None if on_train is None else ours["test_auc"] - on_train["test_auc"]})
    summary = []
    for n in sizes:
        at = [r for r in rows if r["train"] == n]
        deltas = np.array([r["delta"] for r in at])
        summary.append({"train": n, "seeds": len(at), "trials": trials,
                        "family_test_auc": float(np.mean([r["family"]["test_auc"] for r in at])),
                        "sklearn_test_auc": float(np.mean([r["sklearn"]["test_auc"] for r in at])),
                        "delta_mean": float(deltas.mean()),
                        "delta_se": float(deltas.std(ddof=1) / np.sqrt(len(deltas))) if len(deltas) > 1 else None,
                        "within_target": bool(deltas.mean() >= -0.005),
                        "sklearn_train_only_test_auc": float(np.mean([r["sklearn_train_only"]["test_auc"] for r in at]))
                        if train_only else None})
    return {"rows": rows, "summary": summary}


def format_table(result: dict) -> str:
    lines = [f"{'train':>5} {'seeds':>5} {'LR family (best of k) test AUC':>31} {'LogisticRegressionCV':>21} "
             f"{'family - sklearn':>17} {'ok':>3} {'sklearn, train rows only':>24}"]
    for s in result["summary"]:
        se = f" ± {s['delta_se']:.4f}" if s["delta_se"] is not None else ""
        lines.append(f"{s['train']:>5} {s['seeds']:>5} {s['family_test_auc']:>24.4f} (k={s['trials']}) "
                     f"{s['sklearn_test_auc']:>21.4f} {s['delta_mean']:>+9.4f}{se} "
                     f"{'yes' if s['within_target'] else 'NO':>3} "
                     + (f"{s['sklearn_train_only_test_auc']:>24.4f}" if s["sklearn_train_only_test_auc"] is not None
                        else f"{'-':>24}"))
    return "\n".join(lines)

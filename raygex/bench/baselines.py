"""The exported winner against scikit-learn's own tuned baselines on the same samples.

For each study of a finished experiment: the labelled (non-test) samples of the first split seed, which the
sweep selected on, and the study's fixed test set. scikit-learn fits, on exactly those labelled samples, its
recommended tuned baselines: ``LogisticRegressionCV`` (L2, 17 values of C over 1e-4…1e4, stratified 5-fold CV on
ROC AUC, scored as raygex scores: :func:`auc_scorer`) and an ``MLPClassifier`` tuned by ``GridSearchCV`` (hidden 128 or 512, alpha 1e-4, 1e-2 or 1, same
folds), each after a ``StandardScaler`` inside the pipeline so that each CV fold is scaled by its own training
rows. All three are scored on the same test samples with raygex's metric (macro one-vs-rest ROC AUC).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from raygex.experiment.layout import ExperimentLayout
from raygex.metrics import classification_metrics

CS = np.logspace(-4, 4, 17)
MLP_GRID = {"mlp__hidden_layer_sizes": [(128,), (512,)], "mlp__alpha": [1e-4, 1e-2, 1.0]}


def auc_scorer(n_classes: int):
    """raygex's selection metric as a scikit-learn scorer: macro one-vs-rest ROC AUC over the classes present in
    the validation fold, probabilities placed by the estimator's ``classes_`` (a training fold may miss a rare
    class). scikit-learn's own ``roc_auc_ovr`` is NaN on every fold as soon as a class has fewer labelled samples
    than folds, which would leave LogisticRegressionCV choosing C blindly."""
    def score(estimator, x, y) -> float:
        proba = estimator.predict_proba(x)
        full = np.zeros((len(y), n_classes))
        full[:, np.asarray(estimator.classes_, dtype=np.int64)] = proba
        return classification_metrics(y, full, n_classes)["auc"]

    return score


def sklearn_baselines(x_labelled, y_labelled, x_test, y_test, n_classes: int, seed: int = 0) -> dict:
    """Test AUC of scikit-learn's CV-tuned logistic regression and MLP fitted on the labelled samples."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    scoring = auc_scorer(n_classes)
    lr = Pipeline([("scale", StandardScaler()),
                   ("lr", LogisticRegressionCV(Cs=CS, cv=folds, scoring=scoring, max_iter=5000))])
    lr.fit(x_labelled, y_labelled)
    mlp = GridSearchCV(Pipeline([("scale", StandardScaler()),
                                 ("mlp", MLPClassifier(max_iter=1000, random_state=seed))]),
                       MLP_GRID, cv=folds, scoring=scoring)
    mlp.fit(x_labelled, y_labelled)
    return {"sklearn_lr_auc": classification_metrics(y_test, lr.predict_proba(x_test), n_classes)["auc"],
            "sklearn_lr_C": float(np.ravel(lr.named_steps["lr"].C_)[0]),
            "sklearn_mlp_auc": classification_metrics(y_test, mlp.predict_proba(x_test), n_classes)["auc"],
            "sklearn_mlp_params": {k.removeprefix("mlp__"): v for k, v in mlp.best_params_.items()}}


def winner_against_sklearn(experiment) -> list[dict]:
    """One row per study with an exported winner: its test AUC (through the exported file) beside scikit-learn's
    tuned logistic regression and MLP fitted on the same labelled samples, and the gap to the former."""
    from sklearn.exceptions import ConvergenceWarning

    from raygex.data.prepare import load_dataset, load_graphs, trial_data
    from raygex.export.predict import load_model

    layout = ExperimentLayout.open(experiment)
    config = layout.config
    dataset, graphs = load_dataset(config), load_graphs(config)
    rows = []
    for study in config.studies():
        path = layout.model_path(study.name)
        if not path.exists():
            continue
        data = trial_data(config, study.name, dataset, graphs, seed=config.split.seeds[0], graph=None)
        labelled_x = np.concatenate([data.x_train, data.x_valid])
        labelled_y = np.concatenate([data.y_train, data.y_valid])
        model = load_model(path)
        proba = model.predict_proba(pd.DataFrame(data.x_test, columns=data.genes))
        n_classes = len(data.classes)
        winner_auc = classification_metrics(data.y_test, proba, n_classes)["auc"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            baselines = sklearn_baselines(labelled_x, labelled_y, data.x_test, data.y_test, n_classes)
        meta = model.metadata
        rows.append({"study": study.name, "labelled": int(len(labelled_y)), "test": int(len(data.y_test)),
                     "winner": meta["hyperparameters"].get("model") + (
                         f"/{meta['graph']['name']}" if meta.get("graph") else ""),
                     "selection": meta.get("selection", {}), "winner_auc": winner_auc, **baselines,
                     "gap_to_sklearn_lr": winner_auc - baselines["sklearn_lr_auc"]})
    return rows

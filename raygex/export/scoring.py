"""Scoring predictions against a label column (`raygex predict --labels`, ``LoadedModel.score``): the metrics
of :mod:`raygex.metrics` over the samples whose label is a class of the model; the others are left out and counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raygex.metrics import classification_metrics

METRICS = ("loss", "accuracy", "balanced_accuracy", "auc")


class Scorer:
    """Predictions scored against a label column, block by block. Samples without a label (missing, empty) or
    whose label is a class the model does not know are left out and counted."""

    def __init__(self, classes: list[str], column: str | None = None):
        self.classes, self.column = list(classes), column
        self._index = {c: i for i, c in enumerate(self.classes)}
        self._y: list[int] = []
        self._proba: list[np.ndarray] = []
        self.missing, self.unknown = 0, {}

    def add(self, labels, proba: np.ndarray) -> None:
        rows = []
        for row, value in enumerate(labels):
            text = _label_text(value)
            if text is None:
                self.missing += 1
                continue
            known = next((t for t in text if t in self._index), None)
            if known is None:
                self.unknown[text[0]] = self.unknown.get(text[0], 0) + 1
            else:
                rows.append(row)
                self._y.append(self._index[known])
        self._proba.append(np.asarray(proba)[rows])

    def result(self) -> dict:
        y = np.asarray(self._y, dtype=np.int64)
        metrics = (classification_metrics(y, np.concatenate(self._proba), len(self.classes)) if len(y)
                   else dict.fromkeys(METRICS, float("nan")))
        return {"label": self.column, "n_scored": int(len(y)), "n_missing_label": self.missing,
                "n_unknown_class": sum(self.unknown.values()), "unknown_classes": dict(sorted(self.unknown.items())),
                **{name: metrics[name] for name in METRICS}}


def _label_text(value) -> tuple[str, ...] | None:
    """The ways a label may name a class (1.0 also as "1"); None for a missing or empty label."""
    if value is None or (not isinstance(value, str) and bool(np.ndim(value) == 0 and pd.isna(value))):
        return None
    text = str(value).strip()
    if not text:
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return text, str(int(value))
    return (text,)


def score_lines(scores: dict, metric: str | None = None) -> list[str]:
    """One or two lines for the console: the scores (AUC, accuracy and ``metric``), then the samples left out."""
    column = f" against {scores['label']!r}" if scores.get("label") else ""
    if not scores["n_scored"]:
        lines = [f"scores{column}: no sample could be scored (none has a label among the model's classes)"]
    else:
        names = ["auc", "accuracy", *([metric] if metric in METRICS and metric not in ("auc", "accuracy") else [])]
        shown = ", ".join(f"{n} {scores[n]:.4f}" if scores[n] == scores[n] else f"{n} n/a (one class only)"
                          for n in names)
        lines = [f"scores{column}: {shown} on {scores['n_scored']} samples"]
    if scores["n_missing_label"] or scores["n_unknown_class"]:
        unknown = ", ".join(f"{k!r} ×{v}" for k, v in list(scores["unknown_classes"].items())[:5])
        lines.append(f"left out: {scores['n_missing_label']} sample(s) without a label, {scores['n_unknown_class']} "
                     f"with a class the model does not know" + (f" ({unknown})" if unknown else ""))
    return lines

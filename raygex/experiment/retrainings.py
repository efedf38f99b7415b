"""Each later-stage training's result, recorded as it ends: ``retrainings/<study>/<key>.json`` in the experiment
folder (beside the study's folder, which is Ray Tune's: nothing of Tune's sees them).

A record holds the training's hyperparameters, its best validation metrics, the test metrics of that epoch, the
epochs run, the test-set probabilities and what they are of (test ids and labels) and the aligned graph's edge
count. Records are written atomically and, on an object store, pushed at once: a run killed during the
evaluation loses only the trainings then running (:mod:`raygex.analysis.retrain`).
"""

from __future__ import annotations

import json

import numpy as np

from raygex.files.fileio import atomic_path
from raygex.files.names import RETRAININGS_DIR


class RetrainingRecords:
    """The recorded trainings of one study of an experiment."""

    def __init__(self, layout, study: str):
        self.layout = layout
        self.folder = layout.root / RETRAININGS_DIR / study

    def read_all(self) -> dict[str, dict]:
        """key -> recorded result (a record that cannot be read counts as missing: it is run again)."""
        out = {}
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                out[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        return out

    def write(self, key: str, hparams: dict, result: dict) -> dict:
        """Record one finished training (atomic; pushed to the store); returns the record."""
        record = {"hparams": hparams, **{k: _plain(v) for k, v in result.items()}}
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"{key}.json") as tmp:
            tmp.write_text(json.dumps(record, default=str))
        self.layout.push()
        return record


def _plain(value):
    """JSON-ready: arrays to lists, NumPy scalars to Python numbers, dicts through."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value

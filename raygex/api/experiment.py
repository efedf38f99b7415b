"""An experiment's results, read where they are (a folder, or an ``s3://`` / ``gs://`` URI): :class:`Experiment`."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from raygex.analysis.status import experiment_status
from raygex.errors import ConfigError
from raygex.experiment.layout import ExperimentLayout


class Experiment:
    """A finished (or interrupted) experiment: its studies, leaderboards, verdicts, winners and exported models.

    Open one with :func:`raygex.open`; :func:`raygex.run` and :func:`raygex.resume` return one. Everything is read
    from the experiment's files when asked, so an experiment still running shows its progress so far.

    A study is one task (``<task>-n<size>`` when a config lists several training-set sizes).
    """

    def __init__(self, experiment: str | os.PathLike):
        self._layout = ExperimentLayout.open(experiment)

    def __repr__(self) -> str:
        return f"Experiment({self.uri!r}, studies={self.studies})"

    @property
    def name(self) -> str:
        """The experiment's name (the config's ``name`` unless ``--name`` gave another)."""
        return self._layout.name

    @property
    def uri(self) -> str:
        """Where the experiment lives: its folder, or its object-store URI."""
        return self._layout.where

    @property
    def config(self):
        """The :class:`~raygex.config.ExperimentConfig` the experiment ran with (its snapshot)."""
        return self._layout.config

    @property
    def studies(self) -> list[str]:
        """The experiment's studies, in config order."""
        return [study.name for study in self._layout.config.studies()]

    @property
    def report_path(self) -> str | None:
        """The HTML report (a path, or a URI on an object store); None before the report is written."""
        path = self._layout.report_path
        return self._layout.shown(path) if path.exists() else None

    def _study(self, study: str | None) -> str:
        studies = self.studies
        if study is None:
            if len(studies) == 1:
                return studies[0]
            raise ConfigError(f"this experiment has {len(studies)} studies ({', '.join(studies)}): name one")
        if study not in studies:
            raise ConfigError(f"no study {study!r} in experiment {self.name!r} (studies: {', '.join(studies)})")
        self._layout.pull(study)
        return study

    def leaderboard(self, study: str | None = None, *, show_test: bool = False) -> pd.DataFrame:
        """Every trial of the study's sweep, best first on validation: its configuration (``config/...``), status
        and validation metrics. Test metrics are left out unless ``show_test`` (never choose on them).

        Examples:
            >>> exp.leaderboard("subtype")[["config/model", "best_valid_auc"]].head(2)  # doctest: +SKIP
        """
        board = self._layout.read_leaderboard(self._study(study))
        if board is None:
            return pd.DataFrame()
        if not show_test:
            board = board[[c for c in board.columns if "test" not in c]]
        return board.reset_index(drop=True)

    def verdicts(self, study: str | None = None) -> pd.DataFrame:
        """Does each graph help? One row per (graph, control): the mean test-metric gain over split seeds with its
        bootstrap interval, the Holm-adjusted p-value and the verdict (``helps``, ``hurts`` or ``inconclusive``).
        Empty when the study has no graphs or controls, or before the verdict stage."""
        table = self._layout.read_verdicts(self._study(study))
        return pd.DataFrame() if table is None else table.reset_index(drop=True)

    def seeds(self, study: str | None = None) -> pd.DataFrame:
        """The evaluation over split seeds: each choice's best configuration (and the winner) retrained on every
        seed, its validation and test metric and epochs."""
        table = self._layout.read_seeds(self._study(study))
        return pd.DataFrame() if table is None else table.reset_index(drop=True)

    def swap(self, study: str | None = None) -> pd.DataFrame:
        """The equal-budget graph swap: the best GCN configuration with every graph and control, per seed."""
        table, _ = self._layout.read_swap(self._study(study))
        return pd.DataFrame() if table is None else table.reset_index(drop=True)

    def winner(self, study: str | None = None) -> dict | None:
        """The study's winner as the selection rule chose it on validation: ``trial_id``, ``hyperparameters``,
        ``metrics`` (best validation, and the test metric of the winner only), and ``reason``; None before any
        trial finished."""
        name = self._study(study)
        summary, _ = experiment_status(self._layout.where)
        task = summary["tasks"][name]
        return None if task["winner"] is None else {**task["winner"], "reason": task["selection"]["reason"]}

    def status(self) -> dict:
        """What `raygex status --json` prints: per study, trial counts, the winner, the selection and verdicts."""
        summary, _ = experiment_status(self._layout.where)
        return summary

    def model_path(self, study: str | None = None) -> str:
        """The study's exported winner (TorchScript), as a path or URI."""
        return self._layout.shown(self._layout.model_path(self._study(study)))

    def load_model(self, study: str | None = None, device: str | None = "cpu"):
        """The study's exported winner as a :class:`~raygex.export.predict.LoadedModel` (``predict``,
        ``predict_proba``, ``genes``, ``classes``)."""
        from raygex.export.predict import load_model

        path = self._layout.model_path(self._study(study))
        if not Path(path).exists():
            raise ConfigError(f"study {study!r} has no exported model yet (its sweep has not finished)",
                              path=self._layout.shown(path))
        return load_model(path, device)

    def optuna_study(self, study: str | None = None):
        """The study's Optuna study (finished trials), for ``optuna.visualization`` or optuna-dashboard."""
        import optuna

        name = self._study(study)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            return optuna.load_study(study_name=f"{self.name}/{name}", storage=self._layout.optuna_storage(name))
        except KeyError:
            raise ConfigError(f"study {name!r} has no saved Optuna study yet (saved when its sweep ends)") from None

"""Ray Tune's OptunaSearch, made safe to restore after the driver was killed.

Tune saves the experiment state and the searcher's state separately. A driver killed between the two leaves a
trial that the experiment knows (and resumes) but the restored Optuna study never suggested; stock OptunaSearch
then raises ``KeyError`` on that trial's first result and the resume fails (found by `raygex bench soak`). Here
such a trial's results are ignored and its final result is added to the study as a finished trial, so the
history stays complete and TPE keeps learning from it.
"""

from __future__ import annotations

import logging

from ray.tune.search.optuna import OptunaSearch

logger = logging.getLogger(__name__)


class ResumableOptunaSearch(OptunaSearch):
    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._ot_trials:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._ot_trials or trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result, error)
        self._completed_trials.add(trial_id)
        value = (result or {}).get(self.metric)
        if error or value is None:
            return
        self._record_orphan(trial_id, dict((result or {}).get("config") or {}), float(value))

    def _record_orphan(self, trial_id: str, config: dict, value: float) -> None:
        """Add a trial the restored study never suggested, with the distributions its parameters had before."""
        import optuna

        known: dict = {}
        for trial in self._ot_study.trials:
            known.update(trial.distributions)
        params = {name: value for name, value in config.items() if name in known}
        try:
            if not all(known[name]._contains(known[name].to_internal_repr(v)) for name, v in params.items()):
                raise ValueError("a parameter lies outside the distributions the study knows")
            self._ot_study.add_trial(optuna.trial.create_trial(
                params=params, distributions={name: known[name] for name in params}, value=value))
        except Exception as err:  # an unseen parameter value: keep going, the trial's result is in Tune anyway
            logger.warning("trial %s finished after a resume but could not be added to the Optuna study: %s",
                           trial_id, err)

"""Ray Tune's OptunaSearch, made safe to restore after the driver was killed, and never running a configuration
twice.

Tune saves the experiment state and the searcher's state separately. A driver killed between the two leaves a
trial that the experiment knows (and resumes) but the restored Optuna study never suggested; stock OptunaSearch
then raises ``KeyError`` on that trial's first result and the resume fails (found by `raygex bench soak`). Here
such a trial's results are ignored and its final result is added to the study as a finished trial, so the
history stays complete and TPE keeps learning from it.

No configuration runs twice: a suggestion whose sampled parameters equal those of a trial already run or
running (logistic regression with fixed optimiser settings, say, or a finite space TPE keeps revisiting) is told
to Optuna as failed and asked again, from a random sampler (TPE ignores failed trials and would propose the same;
the family shares of ``search.family_budget`` still hold);
after :data:`MAX_ASKS` asks, the next unseen point of a finite family is enqueued instead. The check reads the study's own trials, so it holds across resumes.
"""

from __future__ import annotations

import logging

from ray.tune.search.optuna import OptunaSearch

from raygex.search.sampling import DUPLICATE, MAX_ASKS, reask_sampler
from raygex.search.tune_compat.tune_files import epoch_rows

logger = logging.getLogger(__name__)


def params_key(params: dict) -> tuple:
    return tuple(sorted((name, repr(value)) for name, value in params.items()))


class ResumableOptunaSearch(OptunaSearch):
    def suggest(self, trial_id: str):
        from optuna.trial import TrialState

        sampler = self._ot_study.sampler
        try:
            for attempt in range(MAX_ASKS):
                params = super().suggest(trial_id)
                ot_trial = self._ot_trials.get(trial_id)
                if not isinstance(params, dict) or ot_trial is None or \
                        params_key(ot_trial.params) not in self._seen(ot_trial):
                    return params
                ot_trial.set_user_attr(DUPLICATE, True)  # already run or running: ask again
                self._ot_study.tell(ot_trial.number, state=TrialState.FAIL)
                del self._ot_trials[trial_id]
                # TPE ignores failed trials and would propose the same again: re-ask at random
                self._ot_study.sampler = reask_sampler(sampler, len(self._ot_study.get_trials(deepcopy=False)) + attempt)
        finally:
            self._ot_study.sampler = sampler
        fresh = self._unseen_point()
        if fresh is None:
            logger.warning("trial %s repeats an earlier configuration: the space has no unseen point left", trial_id)
        else:
            self._ot_study.enqueue_trial(fresh)
        return super().suggest(trial_id)

    def _seen(self, current=None) -> set:
        """The sampled parameters of every trial run, running or errored (it would error again), but ``current``
        and the re-asks this searcher turned down."""
        return {params_key(t.params) for t in self._ot_study.get_trials(deepcopy=False)
                if not t.user_attrs.get(DUPLICATE) and (current is None or t.number != current.number)}

    def _unseen_point(self) -> dict | None:
        """The first not yet run point of a finite family of the space, if any."""
        from raygex.search.space import family_points, sampled_models

        parsed = getattr(self._space, "parsed", None)
        if parsed is None:
            return None
        seen = self._seen()
        for model in sampled_models(parsed):
            for point in family_points(parsed, model) or []:
                if params_key(point) not in seen:
                    return point
        return None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._ot_trials:
            self._report_epochs(trial_id, result)

    def _report_epochs(self, trial_id: str, result: dict) -> None:
        """Optuna's intermediate values by epoch, each once: a report may carry several epochs (Tune's iteration
        counts reports), and Tune hands a trial's last report over again when it ends."""
        told = self.__dict__.setdefault("_last_epoch_told", {})  # trial id -> its last epoch Optuna has
        for row in epoch_rows(result):
            epoch = row.get("epoch")
            if row.get(self.metric) is not None and epoch is not None and int(epoch) > told.get(trial_id, 0):
                super().on_trial_result(trial_id, {**row, "training_iteration": int(epoch)})
                told[trial_id] = int(epoch)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._ot_trials and result and trial_id not in self._completed_trials:
            # a report the scheduler stopped the trial on reaches only this hook: its epochs are told here
            self._report_epochs(trial_id, result)
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
        for trial in self._ot_study.get_trials(deepcopy=False):
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

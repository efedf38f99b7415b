"""The saved Optuna study of a killed driver's study made to agree with Tune's experiment state (the Optuna half
of :mod:`raygex.search.tune_compat.saved_state`): each recorded trial held once, as it ended, and the queue of configurations
still to try (``points_to_evaluate``) as it stands.
"""

from __future__ import annotations

from raygex.search.sampling import DUPLICATE


def _rebuild(searcher: dict, leave_out: set[int], requeue: list[dict], notes: list[str]) -> None:
    """Rebuild the saved Optuna study without the trials numbered ``leave_out``, queueing ``requeue`` (fixed
    parameters) again at the end. Optuna cannot delete a trial, so the others are copied, in order, into a new
    in-memory study with the same sampler, pruner and attributes (queued configurations stay queued), and the
    searcher's handles are moved to the copies."""
    import optuna

    study, known = searcher["_ot_study"], searcher["_ot_trials"]
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" line
    try:
        fresh = optuna.create_study(study_name=study.study_name, sampler=study.sampler, pruner=study.pruner,
                                    directions=study.directions)
    finally:
        optuna.logging.set_verbosity(level)
    for key, value in study.user_attrs.items():
        fresh.set_user_attr(key, value)
    for key, value in study._storage.get_study_system_attrs(study._study_id).items():
        fresh._storage.set_study_system_attr(fresh._study_id, key, value)
    copied = {}  # old trial number -> the copy's trial id
    for trial in study.get_trials(deepcopy=True):
        if trial.number not in leave_out:
            copied[trial.number] = fresh._storage.create_new_trial(fresh._study_id, template_trial=trial)
    for fixed in requeue:
        fresh.enqueue_trial(fixed)
    searcher["_ot_study"] = fresh
    gone = {trial_id for trial_id, handle in known.items() if handle.number in leave_out}
    searcher["_ot_trials"] = {trial_id: optuna.trial.Trial(fresh, copied[handle.number])
                              for trial_id, handle in known.items() if trial_id not in gone}
    searcher["_completed_trials"] = set(searcher["_completed_trials"]) - gone
    if gone:
        notes.append(f"trials {sorted(gone)} left the Optuna study (the experiment state does not record them)")


def agree_optuna(searcher: dict, trials: list, notes: list[str]) -> bool:
    """Make the saved Optuna study hold each trial the experiment state records once, as it ended there:
    - trials it does not record leave the study (a phantom, whose folder is removed and run discarded, which
      Optuna may even have finished; or the errored trial Tune replaced on an earlier resume); a queued
      configuration (``points_to_evaluate``) such a trial had taken is queued again;
    - a recorded trial it never saw (suggested after it was saved) is added with its parameters, finished with its
      result or running (mapped, so its completion is told as usual), and the queued configuration it had taken
      leaves the queue: otherwise it is handed out again (found by tests/storage/test_s3_sweep.py: one
      configuration run twice); a trial whose parameters the study already holds is not added twice;
    - a trial it has running that the experiment state has ended is told how (its result, PRUNED without one as
      stock OptunaSearch does, FAIL when it errored).

    ``trials``: the experiment state's (:class:`raygex.search.tune_compat.saved_state.SavedTrial`).
    """
    import optuna
    from optuna.trial import TrialState

    from raygex.search.tune_compat.optuna_searcher import params_key

    study, known, done = searcher.get("_ot_study"), searcher.get("_ot_trials"), searcher.get("_completed_trials")
    metric = searcher.get("_metric")
    if study is None or not isinstance(known, dict) or not isinstance(done, set):
        return False
    recorded = {t.trial_id for t in trials}
    frozen = study.get_trials(deepcopy=False)
    distributions: dict = {}
    for t in frozen:
        distributions.update(t.distributions)
    leave_out = {handle.number for trial_id, handle in known.items() if trial_id not in recorded}
    requeue = [frozen[n].system_attrs["fixed_params"] for n in sorted(leave_out)
               if "fixed_params" in frozen[n].system_attrs]
    held = {params_key(t.params) for t in frozen if t.number not in leave_out and t.state != TrialState.WAITING
            and not t.user_attrs.get(DUPLICATE)}
    waiting = [t for t in frozen if t.state == TrialState.WAITING]
    additions = []
    for trial in trials:
        if trial.trial_id in known or trial.trial_id in done:
            continue
        params = {k: v for k, v in trial.config.items() if k in distributions}
        if not params:
            notes.append(f"trial {trial.trial_id} could not be added to the Optuna study (its parameters are "
                         f"unknown to it)")
            continue
        if params_key(params) in held:
            continue
        held.add(params_key(params))
        taken = next((t for t in waiting if t.number not in leave_out and all(
            trial.config.get(k) == v for k, v in t.system_attrs.get("fixed_params", {}).items())), None)
        if taken is not None:
            leave_out.add(taken.number)
        additions.append((trial, params))
    changed = bool(leave_out)
    if leave_out:
        _rebuild(searcher, leave_out, requeue, notes)
        study, known, done = searcher["_ot_study"], searcher["_ot_trials"], searcher["_completed_trials"]
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    for trial, params in additions:
        value = trial.last_result.get(metric)
        state = (TrialState.COMPLETE if value is not None else TrialState.PRUNED) if trial.status == "TERMINATED" \
            else TrialState.FAIL if trial.status == "ERROR" else TrialState.RUNNING
        try:
            added = optuna.trial.create_trial(
                state=state, params=params, distributions={k: distributions[k] for k in params},
                value=float(value) if state == TrialState.COMPLETE else None)
        except Exception as err:  # a value or parameter Optuna refuses: the trial's result is in Tune anyway
            notes.append(f"trial {trial.trial_id} could not be added to the Optuna study ({err})")
            continue
        trial_id = study._storage.create_new_trial(study._study_id, template_trial=added)
        if state == TrialState.RUNNING:
            known[trial.trial_id] = optuna.trial.Trial(study, trial_id)
        else:
            done.add(trial.trial_id)
        notes.append(f"trial {trial.trial_id} ({trial.status.lower()}) added to the Optuna study")
        changed = True
    for trial in trials:
        handle = known.get(trial.trial_id)
        if handle is None or trial.unfinished or trial.trial_id in done \
                or states.get(handle.number, TrialState.COMPLETE).is_finished():
            continue
        value = trial.last_result.get(metric)
        try:
            if trial.status == "ERROR":
                study.tell(handle.number, state=TrialState.FAIL)
            elif value is None:
                study.tell(handle.number, state=TrialState.PRUNED)
            else:
                study.tell(handle.number, float(value))
        except Exception as err:
            notes.append(f"trial {trial.trial_id}'s end could not be told to the Optuna study ({err})")
            continue
        done.add(trial.trial_id)
        notes.append(f"trial {trial.trial_id}'s end told to the Optuna study")
        changed = True
    return changed

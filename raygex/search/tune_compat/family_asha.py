"""ASHA with one set of rungs per model family: Ray's ``ASHAScheduler`` (one bracket), except that a trial is
compared at a rung only with the trials of its own family (``config["model"]``) that reached it before.

Ray's scheduler compares every trial with every other at a rung; a family that learns slowly (a GCN still rising
at the first rung while an MLP has peaked) is then stopped for being slow, not for being worse. Per family, each
family keeps ASHA's own rule (the same rungs, cutoff and completion bookkeeping, Ray's ``_Bracket``); only the
population a trial is ranked in changes.

Ray's private name used here: ``ray.tune.schedulers.async_hyperband._Bracket`` (the bracket a trial is ranked in;
``tests/tune_compat/test_contract.py`` checks it). Scheduler state is pickled as Ray pickles its own (``save`` /
``restore`` of ``__dict__``), so a resumed sweep keeps each family's rungs.
"""

from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler
from ray.tune.schedulers.async_hyperband import _Bracket


class FamilyASHAScheduler(ASHAScheduler):
    """``ASHAScheduler(time_attr, metric, mode, max_t, grace_period, reduction_factor)`` with one bracket per
    family, made when the family's first trial is added."""

    def __init__(self, *, family_key: str = "model", **kwargs):
        kwargs.setdefault("brackets", 1)
        if kwargs["brackets"] != 1:
            raise ValueError("FamilyASHAScheduler runs one bracket per family")
        self._family_key = family_key
        self._bracket_args = (kwargs.get("grace_period", 1), kwargs.get("max_t", 100),
                              kwargs.get("reduction_factor", 4), kwargs.get("stop_last_trials", True))
        super().__init__(**kwargs)
        self._family_brackets: dict[str, _Bracket] = {}

    def family_of(self, trial) -> str:
        return str((trial.config or {}).get(self._family_key))

    def on_trial_add(self, tune_controller, trial):
        super().on_trial_add(tune_controller, trial)  # checks metric and mode as Ray's does
        grace, max_t, rf, stop_last = self._bracket_args
        family = self.family_of(trial)
        if family not in self._family_brackets:
            self._family_brackets[family] = _Bracket(grace, max_t, rf, 0, stop_last_trials=stop_last)
        self._trial_info[trial.trial_id] = self._family_brackets[family]

    def rungs_by_family(self) -> dict[str, list[tuple[int, dict]]]:
        """Each family's rungs: ``(milestone, {trial_id: value recorded})``, for reports and tests."""
        return {family: [(milestone, dict(recorded)) for milestone, recorded in bracket._rungs]
                for family, bracket in self._family_brackets.items()}

    def debug_string(self) -> str:
        return "Using AsyncHyperBand, rungs per family: num_stopped={}\n".format(self._num_stopped) + "\n".join(
            f"{family}: {bracket.debug_str()}" for family, bracket in self._family_brackets.items())

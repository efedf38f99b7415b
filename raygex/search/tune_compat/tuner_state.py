"""What a restored ``tune.Tuner`` keeps where Ray 2.x keeps it: the trainable name in ``tuner.pkl``, the searcher
and the run config inside the Tuner's private ``_local_tuner``."""

from __future__ import annotations

import pickle


def restored_trainable_name(saved_state: bytes | None) -> str | None:
    """The trainable name the study's saved Tune state (``tuner.pkl``) was made with (Tune refuses another on
    restore)."""
    try:
        return pickle.loads(saved_state).get("__trainable_name")
    except Exception:
        return None


def restored_searcher(tuner):
    """The searcher a restored Tuner unpickled from the study's state (Ray 2.x keeps it in its TuneConfig)."""
    tune_config = getattr(getattr(tuner, "_local_tuner", None), "_tune_config", None)
    return getattr(tune_config, "search_alg", None)


def use_callbacks(tuner, callbacks: list) -> None:
    """Give a restored Tuner this run's callbacks. ``Tuner.restore`` brings back the ones pickled with the
    study's state (a progress display counting from zero, the first driver's W&B writer); Tune has no public
    way to replace them, so the run config it restored is updated in place when it is where Ray 2.x keeps it."""
    internal = getattr(tuner, "_local_tuner", None)
    run_config = getattr(internal, "_run_config", None)
    if run_config is not None and hasattr(run_config, "callbacks"):
        run_config.callbacks = callbacks

"""The care Ray Tune's saved state needs to survive a killed driver, applied before a study is restored.

Tune saves a study in files that a kill can leave disagreeing: ``tuner.pkl`` (rewritten in place),
``experiment_state-*.json`` (the trials, their status and checkpoints), ``search_gen_state-*.json`` (Tune's
``SearchGenerator``: how many trials it created, and each searcher wrapper's state, our ``SlotLimiter``'s live
trials among them) and ``searcher-state-*.pkl`` (the Optuna study). Locally each is written whole, but at
different moments; on an object store Tune uploads the study's folder every few seconds, file by file in no
fixed order, so a kill mid-upload can leave any mix of old and new, and trial folders the experiment state never
recorded. Tune restores the trials the experiment state names, so :func:`repair_before_restore` makes the rest
agree with it.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from raygex.files.names import CHECKPOINT_FILE, RESULT_FILE
from raygex.files.storage import StoreFolder, folder_of, mirror_of
from raygex.search.tune_compat.checkpoint_repair import (check_search_state, checkpoint_references,
                                                         repair_missing_checkpoints, repair_tuner_state)
from raygex.search.tune_compat.optuna_repair import agree_optuna
from raygex.search.tune_compat.tune_files import TERMINAL_STATES

logger = logging.getLogger(__name__)

EXPERIMENT_STATE, SEARCH_STATE, SEARCHER_STATE = "experiment_state-", "search_gen_state-", "searcher-state-"


def repair_saved_study(study_dir: Path, study: str) -> list[str]:
    """:func:`repair_before_restore` on a study folder before anything reads its saved state (Tune's restore, or a
    leaderboard read from a finished sweep a killed driver left): in a working copy of an object store the store
    is repaired and the folder pulled again. Each change is one ``note:`` line logged."""
    notes = repair_before_restore(folder_of(study_dir))
    found = mirror_of(study_dir)
    if notes and found:  # in a working copy: the repaired files pulled again
        found.pull(found.relative(study_dir))
    for note in notes:
        logger.info(f"note: task {study}: {note} (Tune's saved state, left disagreeing by a kill mid-save)")
    return notes


def repair_before_restore(study: StoreFolder) -> list[str]:
    """Every repair below on the study's folder (local or on an object store: the same code); returns a line for
    each thing it changed."""
    repair_tuner_state(study)
    check_search_state(study)
    notes = [f"checkpoint {p} put back" for p in repair_missing_checkpoints(study)]
    return notes + agree_with_experiment_state(StudyFiles(study))


class StudyFiles:
    """A study folder's files as :func:`agree_with_experiment_state` reads and changes them (listed once)."""

    def __init__(self, folder: StoreFolder):
        self.folder = folder
        self._files = folder.files()

    def names(self) -> list[str]:
        return [f for f in self._files if "/" not in f]

    def trial_folders(self) -> list[str]:
        return self.folder.subfolders()

    def read(self, name: str) -> bytes:
        return self.folder.read_bytes(name) or b""

    def write(self, name: str, data: bytes) -> None:
        self.folder.write_bytes(name, data)

    def remove_folder(self, name: str) -> None:
        self.folder.remove_tree(name)


@dataclass(frozen=True)
class SavedTrial:
    """One trial as the experiment state records it."""

    trial_id: str
    status: str
    number: int  # Tune's trial counter when it was created (the "<N>_" of its experiment tag)
    trainable: str
    last_result: dict
    config: dict

    @property
    def unfinished(self) -> bool:
        return self.status not in TERMINAL_STATES

    @property
    def folder_prefix(self) -> str:
        """How its folder's name begins: ``<trainable>_<trial id>_<N>_``."""
        return f"{self.trainable}_{self.trial_id}_{self.number}_"


def saved_trials(state_text: str) -> list[SavedTrial]:
    """The trials of one ``experiment_state-*.json`` ([] when it is unreadable)."""
    found = []
    try:
        entries = json.loads(state_text).get("trial_data", [])
    except (ValueError, AttributeError):
        return []
    for entry in entries:
        try:
            meta, run = (json.loads(part) if isinstance(part, str) else part for part in entry)
            number = int(str(meta["experiment_tag"]).split("_")[0])
            found.append(SavedTrial(str(meta["trial_id"]), str(meta["status"]), number, str(meta["trainable_name"]),
                                    run.get("last_result") or {}, dict(meta.get("config") or {})))
        except (TypeError, ValueError, KeyError, AttributeError):
            return []  # not the layout this was written for: change nothing
    return found


def agree_with_experiment_state(study) -> list[str]:
    """Make the search state, the Optuna study, the trials' histories and the trial folders agree with the
    experiment state (``study``: a :class:`StudyFiles`); returns a line for each change.

    - Tune's trial counter is set to the trials the experiment state holds (Tune restores exactly those). Ahead
      of it (found by tests/storage: "5 of 6 trials finished" after a resume on S3), Tune would create too few
      trials and end the sweep short; behind it, one too many.
    - The concurrency limiter's live trials become the unfinished trials Tune will restore that the searcher
      suggested: a phantom (a trial only the search state knew) would hold a slot for ever, and a restored trial
      made after the search state was saved must count.
    - The Optuna study learns what the experiment state has that it has not (see :func:`raygex.search.tune_compat.optuna_repair.agree_optuna`): each
      trial's end once, and the trials suggested after it was saved, so none of their configurations is
      suggested again.
    - A trial's ``result.json`` that lacks epochs the checkpoint named for it holds (each file is uploaded on its
      own, so it can be older than the state that records them) gets the missing epochs' metrics from that
      checkpoint's history (the trainable keeps it there), marked ``restored_from_checkpoint``; otherwise a
      finished trial's history would stay short for ever, and a resumed one's would have a gap.
    - Folders of trials the experiment state never recorded (numbered past its last trial: their trial began
      after the state was saved) are removed: nothing resumes them, so their history would stay partial; they
      leave the Optuna study too (their run is discarded).
    """
    import ray.cloudpickle as cloudpickle

    names = study.names()
    experiment = sorted(n for n in names if n.startswith(EXPERIMENT_STATE) and n.endswith(".json"))
    text = study.read(experiment[-1]).decode(errors="replace") if experiment else ""
    trials = saved_trials(text)
    if not trials:  # none, unreadable or empty: Tune's own restore reports it; nothing to measure the rest against
        return []
    notes: list[str] = []
    searchers = sorted(n for n in names if n.startswith(SEARCHER_STATE) and n.endswith(".pkl"))
    try:
        searcher = pickle.loads(study.read(searchers[-1])) if searchers else None  # as Tune writes it (pickle)
    except Exception:
        searcher = None
    searcher = searcher if isinstance(searcher, dict) else None
    search_states = sorted(n for n in names if n.startswith(SEARCH_STATE) and n.endswith(".json"))
    try:
        search = cloudpickle.loads(study.read(search_states[-1])) if search_states else None
    except Exception:
        search = None
    if not isinstance(search, dict) or not isinstance(search.get("counter"), int):
        search = None
    if searcher and agree_optuna(searcher, trials, notes):
        study.write(searchers[-1], pickle.dumps(searcher))
    if search and (_agree_search(search, trials, _suggested(searcher), notes) | _agree_location(search, study, notes)):
        study.write(search_states[-1], cloudpickle.dumps(search))  # as Tune writes it (cloudpickle)
    notes += _fill_histories(study, text, trials)
    recorded = {t.folder_prefix for t in trials}
    trainables = {t.trainable for t in trials}
    for folder in study.trial_folders():
        found = _trial_folder(folder, trainables)
        if found and not any(folder.startswith(prefix) for prefix in recorded) and found[1] > len(trials):
            study.remove_folder(folder)
            notes.append(f"trial folder {folder} removed (its trial began after the last saved state)")
    return notes


def _trial_folder(folder: str, trainables: set[str]) -> tuple[str, int] | None:
    """(trial id, trial number) of a trial folder of one of ``trainables``, else None."""
    for trainable in trainables:
        found = re.match(re.escape(trainable) + r"_([0-9a-f]{8})_(\d+)_", folder)
        if found:
            return found[1], int(found[2])
    return None


def _fill_histories(study, state_text: str, trials: list[SavedTrial]) -> list[str]:
    import torch

    named: dict[str, str] = {}
    for folder, checkpoint in checkpoint_references(state_text):
        named[folder] = max(checkpoint, named.get(folder, checkpoint))
    folders = sorted(named)
    notes = []
    for trial in trials:
        folder = next((f for f in folders if f.startswith(trial.folder_prefix)), None)
        if folder is None:
            continue
        lines = [line for line in study.read(f"{folder}/{RESULT_FILE}").decode(errors="replace").splitlines()
                 if line.strip()]
        try:
            reported = max((json.loads(line).get("epoch", 0) for line in lines), default=0)
        except ValueError:  # a line cut short: Tune's own logger appends after it; leave the file as it is
            continue
        if reported >= trial.last_result.get("epoch", 0):
            continue  # whole up to what the state records: no checkpoint to read
        saved = study.read(f"{folder}/{named[folder]}/{CHECKPOINT_FILE}")
        try:
            history = torch.load(io.BytesIO(saved), map_location="cpu", weights_only=True).get("history") or []
        except Exception:  # missing or unreadable: the trial's own restore reports it
            continue
        missing = [row for row in history if isinstance(row, dict) and row.get("epoch", 0) > reported]
        if not missing:
            continue
        lines += [json.dumps({**row, "trial_id": trial.trial_id, "restored_from_checkpoint": named[folder]})
                  for row in missing]
        study.write(f"{folder}/{RESULT_FILE}", ("\n".join(lines) + "\n").encode())
        notes.append(f"trial {trial.trial_id}'s history: epochs {missing[0]['epoch']}-{missing[-1]['epoch']} put "
                     f"back from {named[folder]}")
    return notes


def _suggested(searcher: dict | None) -> set[str] | None:
    """The ids of the trials the saved Optuna searcher suggested (None when it is not there to ask)."""
    if searcher is None or not isinstance(searcher.get("_ot_trials"), dict):
        return None
    return set(searcher["_ot_trials"]) | set(searcher.get("_completed_trials") or ())


def _agree_location(search: dict, study: StudyFiles, notes: list[str]) -> bool:
    """Point the search state's experiment at where the study is now. Tune keeps the ``Experiment`` it creates
    trials from, storage path included, in the search state, and does not update it when a moved folder is
    restored: trials created after the resume would keep their checkpoints at the old place (found by
    tests/search/test_saved_before_rooms.py, a folder saved elsewhere)."""
    storage = getattr(search.get("experiment"), "storage", None)
    where = PurePosixPath(study.folder.path)
    old = (getattr(storage, "storage_fs_path", None), getattr(storage, "experiment_dir_name", None))
    if storage is None or None in old or old == (str(where.parent), where.name):
        return False
    storage.storage_fs_path, storage.experiment_dir_name = str(where.parent), where.name
    notes.append(f"the search state's experiment folder {old[0]}/{old[1]} set to {where} (the study was moved)")
    return True


def _agree_search(search: dict, trials: list[SavedTrial], suggested: set[str] | None, notes: list[str]) -> bool:
    changed = False
    created = search["counter"]
    if created != len(trials):
        notes.append(f"trial counter {created} set to the {len(trials)} trials the experiment recorded")
        search["counter"], search["finished"] = len(trials), False
        changed = True
    # The limiter's live trials: the unfinished trials Tune will restore that the searcher suggested or that the
    # Optuna study now holds (agree_optuna ran first), or made after the search state was saved. Tune keys each
    # wrapper's state by "name:<class>": "name:SlotLimiter" for ours (a ConcurrencyLimiter subclass),
    # "name:ConcurrencyLimiter" for a study saved before studies swept side by side.
    for key, limiter in search.items():
        if str(key).startswith("name:") and isinstance(limiter, dict) and isinstance(limiter.get("live_trials"), set):
            known = suggested if suggested is not None else limiter["live_trials"]
            live = {t.trial_id for t in trials if t.unfinished and (t.number > created or t.trial_id in known)}
            if live != limiter["live_trials"]:
                notes.append(f"live trials {sorted(limiter['live_trials'])} set to {sorted(live)}")
                limiter["live_trials"], limiter["num_unfinished_live_trials"] = live, len(live)
                changed = True  # (cached_results is for batch mode, which SlotLimiter does not use)
    return changed

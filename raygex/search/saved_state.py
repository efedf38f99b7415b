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

import pickle
import re
from pathlib import Path

from raygex.tune_state import TERMINAL_STATES, trial_states_in

TUNER_STATE, TUNER_BACKUP = "tuner.pkl", ".raygex-tuner.pkl"
EXPERIMENT_STATE, SEARCH_STATE, SEARCHER_STATE = "experiment_state-", "search_gen_state-", "searcher-state-"
TRIAL_FOLDER = re.compile(r"_([0-9a-f]{8})_(\d+)_")  # Tune's "<trainable>_<trial id>_<trial number>_<tag>_<time>"


def repair_before_restore(study_dir: Path, remote=None) -> list[str]:
    """Every repair below on the study (``remote``: its :class:`raygex.storage.Remote` when it lives on an object
    store, else the local folder); returns a line for each thing it changed."""
    notes = []
    if remote is None:
        repair_tuner_state(study_dir)
        notes += [f"checkpoint {p.parent.name}/{p.name} put back" for p in repair_missing_checkpoints(study_dir)]
        files = LocalStudy(study_dir)
    else:
        notes += [f"checkpoint {p} put back" for p in repair_missing_remote_checkpoints(remote)]
        files = StoredStudy(remote)
    return notes + agree_with_experiment_state(files)


class LocalStudy:
    """A study folder on disk, as :func:`agree_with_experiment_state` reads and changes it."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.is_file())

    def trial_folders(self) -> list[str]:
        return sorted(p.parent.name for p in self.folder.glob("*/params.json"))

    def read(self, name: str) -> bytes:
        path = self.folder / name
        return path.read_bytes() if path.is_file() else b""

    def write(self, name: str, data: bytes) -> None:
        from raygex.fileio import atomic_path

        with atomic_path(self.folder / name) as tmp:
            Path(tmp).write_bytes(data)

    def remove_folder(self, name: str) -> None:
        import shutil

        shutil.rmtree(self.folder / name, ignore_errors=True)


class StoredStudy(LocalStudy):
    """A study folder on an object store (each write is one whole-object PUT)."""

    def __init__(self, remote):
        self.remote = remote
        self._files = remote.files()

    def names(self) -> list[str]:
        return [f for f in self._files if "/" not in f]

    def trial_folders(self) -> list[str]:
        return sorted(f.split("/")[0] for f in self._files if f.count("/") == 1 and f.endswith("/params.json"))

    def read(self, name: str) -> bytes:
        return self.remote.read_bytes(name) or b""

    def write(self, name: str, data: bytes) -> None:
        self.remote.write_bytes(name, data)

    def remove_folder(self, name: str) -> None:
        for f in [f for f in self._files if f.startswith(f"{name}/")]:
            self.remote.delete(f)


def agree_with_experiment_state(study) -> list[str]:
    """Make the search state, the Optuna study and the trial folders agree with the experiment state (``study``:
    a :class:`LocalStudy` or :class:`StoredStudy`); returns a line for each change.

    - Tune's trial counter is set to the trials the experiment state holds. Ahead of it (found by
      tests/storage: "5 of 6 trials finished" after a resume on S3), Tune would create too few trials and end the
      sweep short; behind it, one too many.
    - The concurrency limiter's live trials become the experiment's unfinished trials: a phantom (a trial only
      the search state knew) would hold a slot for ever, and a restored running trial must count.
    - A trial the experiment state records as finished but the Optuna study still has running (or never had) is
      told to Optuna with its last result, so TPE learns from it and the study holds every trial once.
    - A trial's ``result.json`` that lacks epochs its checkpoint holds (uploaded before the experiment state that
      records them, or after: each file on its own) gets the missing epochs' metrics from the checkpoint the
      experiment state names (the trainable keeps its history there), marked ``restored_from_checkpoint``;
      otherwise a finished trial's history would stay short for ever, and a resumed one's would have a gap.
    - Trial folders of trials the experiment state never recorded (numbered past its last trial: the kill came
      before the state that would have named them reached the store) are removed: their history is partial,
      nothing resumes them, and their configuration is not suggested again (the Optuna study keeps it as running).
    """
    import ray.cloudpickle as cloudpickle

    names = study.names()
    experiment = sorted(n for n in names if n.startswith(EXPERIMENT_STATE) and n.endswith(".json"))
    if not experiment:
        return []
    text = study.read(experiment[-1]).decode(errors="replace")
    trials = trial_states_in(text)
    if not trials:  # unreadable or empty: Tune's own restore reports it; nothing to measure the rest against
        return []
    notes = []
    search_states = sorted(n for n in names if n.startswith(SEARCH_STATE) and n.endswith(".json"))
    if search_states:
        try:
            search = cloudpickle.loads(study.read(search_states[-1]))
        except Exception:
            search = None
        if isinstance(search, dict) and _agree_search(search, trials, notes):
            study.write(search_states[-1], cloudpickle.dumps(search))
    searchers = sorted(n for n in names if n.startswith(SEARCHER_STATE) and n.endswith(".pkl"))
    if searchers:
        try:
            searcher = cloudpickle.loads(study.read(searchers[-1]))
        except Exception:
            searcher = None
        if isinstance(searcher, dict) and _agree_optuna(searcher, trials, _last_results(text), notes):
            study.write(searchers[-1], cloudpickle.dumps(searcher))
    notes += _fill_histories(study, text, trials)
    for folder in study.trial_folders():
        found = TRIAL_FOLDER.search(folder)
        if found and found[1] not in trials and int(found[2]) > len(trials):
            study.remove_folder(folder)
            notes.append(f"trial folder {folder} removed (its trial was never recorded: a kill mid-save)")
    return notes


def _fill_histories(study, state_text: str, trials: dict[str, str]) -> list[str]:
    import io
    import json

    import torch

    from raygex.layout import CHECKPOINT_FILE, RESULT_FILE

    named: dict[str, str] = {}
    for folder, checkpoint in checkpoint_references(state_text):
        named[folder] = max(checkpoint, named.get(folder, checkpoint))
    notes = []
    for folder, checkpoint in sorted(named.items()):
        found = TRIAL_FOLDER.search(folder)
        saved = study.read(f"{folder}/{checkpoint}/{CHECKPOINT_FILE}")
        if not found or found[1] not in trials or not saved:
            continue
        text = study.read(f"{folder}/{RESULT_FILE}").decode(errors="replace")
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            reported = max((json.loads(line).get("epoch", 0) for line in lines), default=0)
            history = torch.load(io.BytesIO(saved), map_location="cpu", weights_only=True).get("history") or []
        except Exception:  # unreadable: the trial's own restore reports it
            continue
        missing = [row for row in history if isinstance(row, dict) and row.get("epoch", 0) > reported]
        if not missing:
            continue
        lines += [json.dumps({**row, "trial_id": found[1], "restored_from_checkpoint": checkpoint})
                  for row in missing]
        study.write(f"{folder}/{RESULT_FILE}", ("\n".join(lines) + "\n").encode())
        notes.append(f"trial {found[1]}'s history: epochs {missing[0]['epoch']}-{missing[-1]['epoch']} put back "
                     f"from {checkpoint}")
    return notes


def _agree_search(search: dict, trials: dict[str, str], notes: list[str]) -> bool:
    changed = False
    if isinstance(search.get("counter"), int) and search["counter"] != len(trials):
        notes.append(f"trial counter {search['counter']} set to the {len(trials)} trials the experiment recorded")
        search["counter"], search["finished"] = len(trials), False
        changed = True
    live = {t for t, status in trials.items() if status not in TERMINAL_STATES}
    # Tune keys each wrapper's state by "name:<class>": "name:SlotLimiter" for ours (a ConcurrencyLimiter
    # subclass), "name:ConcurrencyLimiter" for a study saved before studies swept side by side
    for key, limiter in search.items():
        if str(key).startswith("name:") and isinstance(limiter, dict) and isinstance(limiter.get("live_trials"), set):
            if limiter["live_trials"] != live:
                notes.append(f"live trials {sorted(limiter['live_trials'])} set to {sorted(live)}")
                limiter["live_trials"], limiter["num_unfinished_live_trials"] = set(live), len(live)
                changed = True
    return changed


def _last_results(state_text: str) -> dict[str, dict]:
    """Trial id → the last result the experiment state holds for it."""
    import json

    results = {}
    for entry in json.loads(state_text).get("trial_data", []):
        if isinstance(entry, list) and len(entry) == 2:
            try:
                meta, run = (json.loads(part) if isinstance(part, str) else part for part in entry)
            except (TypeError, ValueError):
                continue
            if isinstance(meta, dict) and isinstance(run, dict) and isinstance(run.get("last_result"), dict):
                results[str(meta.get("trial_id"))] = run["last_result"]
    return results


def _agree_optuna(searcher: dict, trials: dict[str, str], results: dict[str, dict], notes: list[str]) -> bool:
    """Tell the saved Optuna study the trials the experiment state has as finished that it does not."""
    from raygex.search.searcher import add_finished_trial

    study, known, done = searcher.get("_ot_study"), searcher.get("_ot_trials"), searcher.get("_completed_trials")
    metric = searcher.get("_metric")
    if study is None or not isinstance(known, dict) or not isinstance(done, set):
        return False
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    changed = False
    for trial_id, status in trials.items():
        if status != "TERMINATED" or trial_id in done:
            continue
        value = results.get(trial_id, {}).get(metric)
        ot_trial = known.get(trial_id)
        if ot_trial is not None:
            if states[ot_trial.number].is_finished():
                continue
            if value is None:
                study.tell(ot_trial.number, state=_fail())
            else:
                study.tell(ot_trial.number, float(value))
        elif value is None or not add_finished_trial(study, trial_id, dict(results[trial_id].get("config") or {}),
                                                     float(value)):
            continue
        done.add(trial_id)
        notes.append(f"trial {trial_id}'s result told to the Optuna study")
        changed = True
    return changed


def _fail():
    from optuna.trial import TrialState

    return TrialState.FAIL


def _loadable(path: Path) -> bool:
    try:
        pickle.loads(path.read_bytes())
    except Exception:  # empty, truncated, or unreadable: any of them breaks Tuner.restore
        return False
    return True


def back_up_tuner_state(study_dir: Path) -> None:
    """Keep a good copy of Tune's ``tuner.pkl``: Tune rewrites it in place, so a kill mid-write truncates it."""
    from raygex.fileio import atomic_path

    state = study_dir / TUNER_STATE
    if state.exists() and _loadable(state):
        with atomic_path(study_dir / TUNER_BACKUP) as tmp:
            Path(tmp).write_bytes(state.read_bytes())


def repair_tuner_state(study_dir: Path) -> None:
    """Put the last good ``tuner.pkl`` back when a killed driver left it truncated (found by bench soak)."""
    state, backup = study_dir / TUNER_STATE, study_dir / TUNER_BACKUP
    if not _loadable(state) and backup.exists() and _loadable(backup):
        state.write_bytes(backup.read_bytes())


CHECKPOINT_REF = re.compile(rb"([^/\\\"\x00-\x1f]+)/(checkpoint_\d{6})")
HEX_BLOB = re.compile(r"[0-9a-f]{64,}")


def checkpoint_references(state_text: str) -> set[tuple[str, str]]:
    """(trial folder, checkpoint folder) pairs an experiment state names.

    Tune writes a trial's checkpoint manager as a hex-encoded cloudpickle inside the JSON (its
    ``CLOUDPICKLE_FALLBACK``), so the paths are looked for in the plain text and in every decoded hex blob;
    nothing is unpickled.
    """
    found = set(CHECKPOINT_REF.findall(state_text.encode()))
    for blob in HEX_BLOB.findall(state_text):
        if len(blob) % 2 == 0:
            found.update(CHECKPOINT_REF.findall(bytes.fromhex(blob)))
    return {(trial.decode(errors="replace"), name.decode()) for trial, name in found}


def repair_missing_checkpoints(study_dir: Path) -> list[Path]:
    """Put back checkpoints that Tune's saved state still points at but that are gone (found by test_resume).

    Tune keeps one checkpoint per trial: when a trial saves checkpoint N+1 it deletes N, and the experiment state
    that records N+1 is written a moment later. A driver killed in between leaves a state pointing at a deleted
    checkpoint, and Tune's restore then fails the trial ("Could not recover from checkpoint"). Each missing one is
    replaced by a copy of the newest checkpoint left in that trial's folder: the trainable's own state inside it
    (its epoch, weights, optimiser, shuffling) says where training really is, so nothing is lost or repeated.
    Returns the checkpoints put back.
    """
    import shutil

    states = sorted(study_dir.glob("experiment_state-*.json"))
    if not states:
        return []
    restored = []
    for trial, name in sorted(checkpoint_references(states[-1].read_text(errors="replace"))):
        folder = study_dir / trial
        missing = folder / name
        if not folder.is_dir() or missing.exists():
            continue
        left = sorted(p for p in folder.glob("checkpoint_*") if p.is_dir())
        if left:
            shutil.copytree(left[-1], missing)
            restored.append(missing)
    return restored


def repair_missing_remote_checkpoints(remote) -> list[str]:
    """:func:`repair_missing_checkpoints` on an object store (``remote``: the study's :class:`Remote`): the same
    race exists there (Tune deletes checkpoint N on the store before its synced state names N+1)."""
    files = remote.files()
    states = sorted(f for f in files if "/" not in f and f.startswith("experiment_state-") and f.endswith(".json"))
    if not states:
        return []
    text = (remote.read_bytes(states[-1]) or b"").decode(errors="replace")
    restored = []
    for trial, name in sorted(checkpoint_references(text)):
        mine = [f for f in files if f.startswith(f"{trial}/")]
        if not mine or any(f.startswith(f"{trial}/{name}/") for f in mine):
            continue
        left = sorted({f.split("/")[1] for f in mine if f.split("/")[1].startswith("checkpoint_")
                       and f.count("/") >= 2})
        if not left:
            continue
        for f in mine:
            if f.startswith(f"{trial}/{left[-1]}/"):
                remote.fs.copy_file(remote.key(f), remote.key(f.replace(f"/{left[-1]}/", f"/{name}/", 1)))
        restored.append(f"{trial}/{name}")
    return restored

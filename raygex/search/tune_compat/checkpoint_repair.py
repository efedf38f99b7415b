"""Two repairs of Ray Tune's own files that a killed driver can leave broken: ``tuner.pkl`` truncated by Tune's
in-place rewrite, and a checkpoint that the experiment state names but Tune had already replaced. One algorithm
each, on a local folder or an object store alike (:class:`raygex.files.storage.StoreFolder`). Used by
:mod:`raygex.search.tune_compat.saved_state` before a study is restored.
"""

from __future__ import annotations

import pickle
import re

from raygex.errors import SweepInterrupted
from raygex.files.storage import StoreFolder

TUNER_STATE, TUNER_BACKUP = "tuner.pkl", ".raygex-tuner.pkl"


def _loadable(data: bytes | None) -> bool:
    try:
        pickle.loads(data)
    except Exception:  # absent, empty, truncated, or unreadable: any of them breaks Tuner.restore
        return False
    return True


def back_up_tuner_state(study: StoreFolder) -> None:
    """Keep a good copy of Tune's ``tuner.pkl``: Tune rewrites it in place, so a kill mid-write truncates it."""
    state = study.read_bytes(TUNER_STATE)
    if _loadable(state):
        study.write_bytes(TUNER_BACKUP, state)


def repair_tuner_state(study: StoreFolder) -> bool:
    """Put the last good ``tuner.pkl`` back when a killed driver left it truncated (found by bench soak); returns
    whether it did."""
    if _loadable(study.read_bytes(TUNER_STATE)):
        return False
    backup = study.read_bytes(TUNER_BACKUP)
    if not _loadable(backup):
        return False
    study.write_bytes(TUNER_STATE, backup)
    return True


SEARCH_STATE_PREFIX = "search_gen_state-"  # Tune's search algorithm state (a cloudpickle, named .json)


def check_search_state(study: StoreFolder) -> None:
    """Refuse, with one line, a study whose newest search-algorithm state a kill left empty or cut off (Tune
    copies it from its staging folder to the study's in place, and a SIGKILL mid-copy leaves a stub): Tune would
    fail to restore it and then wait forever for a searcher it never got back."""
    states = sorted(f for f in study.files() if "/" not in f and f.startswith(SEARCH_STATE_PREFIX))
    if states and not _loadable(study.read_bytes(states[-1])):
        raise SweepInterrupted(f"{study.child(states[-1]).uri}: Tune's search state was cut off by the kill that "
                               f"stopped the sweep (empty or truncated), so the sweep cannot be resumed; start it "
                               f"again under a new name (raygex search CONFIG --name NEW)")


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


def repair_missing_checkpoints(study: StoreFolder) -> list[str]:
    """Put back checkpoints that Tune's saved state still points at but that are gone (found by test_resume).

    Tune keeps one checkpoint per trial: when a trial saves checkpoint N+1 it deletes N, and the experiment state
    that records N+1 is written a moment later. A driver killed in between leaves a state pointing at a deleted
    checkpoint, and Tune's restore then fails the trial ("Could not recover from checkpoint"). Each missing one is
    replaced by a copy of the newest checkpoint left in that trial's folder: the trainable's own state inside it
    (its epoch, weights, optimiser, shuffling) says where training really is, so nothing is lost or repeated.
    The same race exists on an object
    store (Tune deletes checkpoint N on the store before its synced state names N+1), and the same code repairs it
    there. Returns the checkpoints put back (``<trial folder>/<checkpoint>``).
    """
    files = study.files()
    states = sorted(f for f in files if "/" not in f and f.startswith("experiment_state-") and f.endswith(".json"))
    if not states:
        return []
    text = (study.read_bytes(states[-1]) or b"").decode(errors="replace")
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
                study.copy(f, f.replace(f"/{left[-1]}/", f"/{name}/", 1))
        restored.append(f"{trial}/{name}")
    return restored

"""Reading Ray Tune's saved files without Tune: which trials exist and their status, and a trial's epochs."""

from __future__ import annotations

import json
from pathlib import Path

TERMINAL_STATES = ("TERMINATED", "ERROR")  # a trial's status once it will run no more
# A trial's report to Tune may carry the epochs held back since its previous one (raygex.search.epoch_reports)
EARLIER_EPOCHS = "earlier_epochs"
# ... and, after it is restored from a checkpoint, the epochs that checkpoint holds, marked so: a driver killed
# before it wrote its last reports to the store loses them, the checkpoint does not (they fill the gap only)
RESTORED = "restored_from_checkpoint"

# Which trial and process a held-back epoch came from: the fields Tune adds to the report that carries it (its
# other fields, such as ``timestamp`` or ``done``, describe that report, not the earlier epoch).
_TRIAL_FIELDS = ("trial_id", "pid", "hostname", "node_ip")


def epoch_rows(result: dict) -> list[dict]:
    """One row per epoch a Tune result carries: its earlier epochs (with the report's trial fields), then the
    result itself without the list."""
    earlier = result.get(EARLIER_EPOCHS) or []
    own = {k: v for k, v in result.items() if k != EARLIER_EPOCHS}
    trial = {k: own[k] for k in _TRIAL_FIELDS if k in own}
    return [{**trial, **row} for row in earlier] + [own]


def trial_epochs(lines) -> list[dict]:
    """A trial's ``result.json`` lines as one row per epoch, in epoch order: every epoch each report carries, and
    for an epoch reported twice (a trial restored from a checkpoint trains the epochs after it again) the later;
    an epoch re-sent from a checkpoint (:data:`RESTORED`) only where the epoch is missing."""
    latest: dict = {}
    for line in lines:
        if line.strip():
            for row in epoch_rows(json.loads(line)):
                if row.get(RESTORED) and row.get("epoch") in latest:
                    continue
                latest[row.get("epoch")] = row
    return sorted(latest.values(), key=lambda row: (row.get("epoch") is None, row.get("epoch") or 0))


def trial_states(study_dir: Path) -> dict[str, str]:
    """Trial id → Tune status, from the newest ``experiment_state-*.json`` in ``study_dir`` ({} when unreadable)."""
    states: dict[str, str] = {}
    for path in sorted(Path(study_dir).glob("experiment_state-*.json"))[-1:]:
        try:
            blob = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        for entry in blob.get("trial_data", []) if isinstance(blob, dict) else []:
            # Tune 2.x writes [trial state JSON (trial_id, status, ...), run metadata JSON] per trial
            for part in entry if isinstance(entry, list) else [entry]:
                try:
                    meta = json.loads(part) if isinstance(part, str) else part
                except json.JSONDecodeError:
                    continue
                if isinstance(meta, dict) and "status" in meta:
                    states[str(meta.get("trial_id", len(states)))] = meta["status"]
                    break
    return states


def newest_searcher_state(study_dir: Path) -> Path | None:
    """Tune's newest saved searcher state of a study (``searcher-state-*.pkl``: the Optuna study lives inside),
    or None."""
    states = sorted(Path(study_dir).glob("searcher-state-*.pkl"))
    return states[-1] if states else None

"""Reading Ray Tune's saved experiment state without Tune: which trials exist and their status."""

from __future__ import annotations

import json
from pathlib import Path

TERMINAL_STATES = ("TERMINATED", "ERROR")  # a trial's status once it will run no more


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

"""Reading Ray Tune's saved experiment state without Tune: which trials exist and their status."""

from __future__ import annotations

import json
from pathlib import Path


def trial_states(study_dir: Path) -> dict[str, str]:
    """Trial id → Tune status, from the newest ``experiment_state-*.json`` in ``study_dir``."""
    states: dict[str, str] = {}
    for path in sorted(Path(study_dir).glob("experiment_state-*.json"))[-1:]:
        try:
            blob = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for entry in blob.get("trial_data", []):
            # Tune 2.x writes [trial state JSON (trial_id, status, ...), run metadata JSON] per trial
            for part in entry if isinstance(entry, list) else [entry]:
                meta = json.loads(part) if isinstance(part, str) else part
                if isinstance(meta, dict) and "status" in meta:
                    states[str(meta.get("trial_id", len(states)))] = meta["status"]
                    break
    return states

"""Ray Tune's results of a study as leaderboard rows: one per trial, its configuration and best metrics."""

from __future__ import annotations

from pathlib import Path

# Per-trial facts copied from its last report (device and memory facts come from the trainable).
TRIAL_FACTS = ("epoch", "best_epoch", "n_params", "time_total_s", "node_id", "device", "gpu_ids", "private_mb",
               "private_epoch1_mb", "shares_memory", "worker_trial", "gpu_memory_share", "reserved_memory_mb", "pid",
               "fit_iteration_capped", "refitted_on_valid")


def _reason(error: BaseException) -> str:
    """The root cause's last line (Tune wraps a trial's exception in its own error types)."""
    text = str(getattr(error, "cause", None) or error).strip().splitlines()
    reasons = [line for line in text if "Error" in line or "error" in line] or text or [type(error).__name__]
    return reasons[-1][:300]


def result_rows(results) -> list[dict]:
    """Leaderboard rows from a Tune ``ResultGrid``."""
    rows = []
    for result in results:
        config = dict(result.config or {})
        last = dict(result.metrics or {})
        row = {"trial_id": last.get("trial_id") or (result.path and Path(result.path).name),
               "status": "ERROR" if result.error else "TERMINATED",
               "error": _reason(result.error) if result.error else None}
        row.update({f"config/{k}": v for k, v in config.items()})
        for key in TRIAL_FACTS:
            row[key] = last.get(key)
        for key, value in last.items():
            if key.startswith(("best_valid_", "best_test_")):
                row[key] = value
        row["path"] = str(result.path) if result.path else None
        rows.append(row)
    return rows


def read_results(study_dir: Path):
    """The ``ResultGrid`` of a study's finished Tune experiment, read from its folder (no Ray needed)."""
    from ray.tune import ResultGrid
    from ray.tune.analysis import ExperimentAnalysis

    return ResultGrid(ExperimentAnalysis(str(study_dir)))

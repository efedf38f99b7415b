"""The driver's Ray: join a cluster (``--address`` or ``RAY_ADDRESS``) or start a local one, and check that a
trial's resource request can ever be met."""

from __future__ import annotations

import os

from raygex.errors import ConfigError


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Connect to a running cluster (``--address`` or ``RAY_ADDRESS``) or start a local Ray (once)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Checkpointing every few epochs is deliberate (ASHA stops, resume); Tune's warning about it is noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # raygex draws its own progress (raygex.search.progress): Tune's output engine would print its configuration
    # box and a TensorBoard hint even when silent; its TensorBoard writer (added by default) is not read by
    # anything of ours and runs in the driver's result loop, so the sweep adds Tune's JSON and CSV writers itself.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")


def check_resources(resources) -> None:
    """Refuse a per-trial request (``config.resources``) larger than the whole cluster."""
    import ray

    total = ray.cluster_resources()
    for key, wanted in (("CPU", resources.cpu), ("GPU", resources.gpu)):
        if wanted > total.get(key, 0):
            raise ConfigError(f"resources.{key.lower()} = {wanted} per trial, but the cluster has "
                              f"{total.get(key, 0):g} {key}s: no trial could ever start")

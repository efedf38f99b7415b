"""The driver's Ray: join a cluster (``--address`` or ``RAY_ADDRESS``) or start a local one, and check that a
trial's resource request can ever be met."""

from __future__ import annotations

import logging
import os

import yaml

from raygex.errors import ConfigError
from raygex.runtime.allocator import worker_env

logger = logging.getLogger(__name__)


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
    # the workers' allocator setting (one malloc arena: a reused worker hands each trial's memory back)
    env = worker_env()
    if address:
        # the nodes read the inputs from the store themselves (Ray Data's read tasks): they need the driver's
        # endpoint and credentials, as the job's environment. Inside a `ray job submit` job these variables came
        # from the job's own runtime environment (same values): Ray refuses to merge the two unless told to.
        env.update(storage_env())
        os.environ.setdefault("RAY_OVERRIDE_JOB_RUNTIME_ENV", "1")
        ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": env})
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                 runtime_env={"env_vars": env})


# What reaches an object store from any node: endpoints, regions and credentials given as values. Variables that
# name a file on the driver's machine (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE's ~/.aws) mean nothing elsewhere.
STORAGE_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION",
               "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "RAYGEX_S3_INSTANCE_CREDENTIALS", "STORAGE_EMULATOR_HOST")


def storage_env() -> dict[str, str]:
    """The driver's object-store settings (:data:`STORAGE_ENV`) that are set, for the job's workers."""
    return {name: os.environ[name] for name in STORAGE_ENV if os.environ.get(name)}


BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"  # where `ray up` leaves the cluster file on the head node


def autoscaler_node_types(path: str | None = None) -> dict[str, dict]:
    """Worker node types the autoscaler may start, name -> resources (``{"CPU": 4, "GPU": 1}``), from the cluster
    file: ``path``, else ``RAYGEX_CLUSTER_CONFIG``, else the copy `ray up` leaves on the head; {} when none."""
    path = path or os.environ.get("RAYGEX_CLUSTER_CONFIG") or os.path.expanduser(BOOTSTRAP_CONFIG)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as handle:
            cluster = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cluster file {path}: cannot be read ({err})", path=path) from None
    head = cluster.get("head_node_type")
    return {name: dict(spec.get("resources") or {}) for name, spec in (cluster.get("available_node_types") or {}).items()
            if name != head and int(spec.get("max_workers", cluster.get("max_workers", 0)) or 0) > 0}


_REQUEST_KEYS = {"CPU": ("cpu", 1, "CPUs"), "GPU": ("gpu", 1, "GPUs"), "memory": ("memory_mb", 2**20, "MiB of memory")}


def check_request(cpu: float, gpu: float, nodes: list[dict], node_types: dict[str, dict],
                  memory_mb: float | None = None) -> str | None:
    """Refuse (ConfigError) a per-trial request no node could ever hold: no node of the cluster as it is now
    (``nodes``: each alive node's resources, :func:`node_resources`) holds all of it, and no node type the
    autoscaler may start. Returns a note when only nodes still to be started can hold it."""
    wanted = {"CPU": cpu, "GPU": gpu}
    if memory_mb is not None:
        wanted["memory"] = memory_mb * 2**20
    if any(all(amount <= node.get(key, 0) for key, amount in wanted.items()) for node in nodes):
        return None
    # A node type's CPUs and memory may be left to detection (absent from its resources): only its GPUs are known.
    fitting = [name for name, res in node_types.items()
               if all(amount <= res.get(key, float("inf") if key in ("CPU", "memory") else 0)
                      for key, amount in wanted.items())]
    if fitting:
        return (f"note: no node has resources.cpu = {cpu:g} and resources.gpu = {gpu:g} for a trial now; the autoscaler "
                f"will start nodes of type {', '.join(fitting)}")
    most = {key: max((node.get(key, 0) for node in nodes), default=0) for key in wanted}
    short = next((key for key, amount in wanted.items() if amount > most[key]), None)
    types = f" nor any node type of the cluster file ({', '.join(sorted(node_types))})" if node_types else ""
    if short is None:  # each resource is somewhere, never all of them on one node
        asked = ", ".join(f"resources.{_REQUEST_KEYS[k][0]} = {a / _REQUEST_KEYS[k][1]:g}" for k, a in wanted.items())
        raise ConfigError(f"no node has {asked} at once{types}: no trial could ever start")
    field, unit, what = _REQUEST_KEYS[short]
    raise ConfigError(f"resources.{field} = {wanted[short] / unit:g} per trial, but the largest node has "
                      f"{most[short] / unit:g} {what}{types}: no trial could ever start")


def node_resources(nodes: list[dict] | None = None) -> list[dict[str, float]]:
    """The resources of each alive node (``nodes``: :func:`ray.nodes`'s records; default: the running cluster's,
    none before Ray is up). A trial runs on one node, so these, not the cluster's totals, say whether a request
    can be met."""
    if nodes is None:
        import ray

        if not ray.is_initialized():
            return []
        nodes = ray.nodes()
    return [{k: float(v) for k, v in node.get("Resources", {}).items()} for node in nodes if node.get("Alive")]


def largest_node_memory_mb() -> float | None:
    """The memory resource of the cluster's largest alive node, in MiB (None before Ray is up)."""
    memory = max((node.get("memory", 0.0) for node in node_resources()), default=0.0)
    return memory / 2**20 if memory else None


def check_resources(resources) -> None:
    """:func:`check_request` against the running cluster's largest node and the autoscaler's node types."""
    note = check_request(resources.cpu, resources.gpu, node_resources(), autoscaler_node_types(),
                         resources.fixed_memory_mb)
    if note:
        logger.info(note)

"""Every cluster file passes Ray's own cluster-config validation (what `ray up` runs before it launches anything) and
keeps the cluster closed to strangers: dashboard on localhost, token authentication, SSH the only inbound port, no
secret written in the files."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
FILES = sorted(p for p in CLUSTER.iterdir() if p.suffix in (".yaml", ".yml"))

SECRET_PATTERNS = {
    "an AWS access key id": r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
    "an AWS secret key setting": r"aws_secret_access_key|AWS_SECRET_ACCESS_KEY\s*[:=]\s*[^\s$]",
    "a private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "a W&B key value": r"WANDB_API_KEY\s*[:=]\s*['\"]?[^\s'\"$]",
    "a Ray token value": r"RAY_AUTH_TOKEN\s*[:=]\s*['\"]?[^\s'\"$]",
    "a long hex or base64 string (a token?)": r"\b[0-9a-fA-F]{32,}\b|[A-Za-z0-9+/]{40,}={0,2}",
    "a password": r"(?i)password\s*[:=]\s*\S",
    "GCP credentials": r"gcp_credentials|\"private_key\"",
}


def prepared(path: Path) -> dict:
    """The config as `ray up` sees it before launching: Ray's defaults for the provider merged in, then validated
    against Ray's JSON schema (ray/autoscaler/ray-schema.json) and Ray's own consistency checks."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(yaml.safe_load(path.read_text())))
    validate_config(config)
    return config


def commands(config: dict) -> list[str]:
    keys = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
            "head_start_ray_commands", "worker_start_ray_commands")
    found = [c for key in keys for c in config.get(key) or []]
    for node_type in config.get("available_node_types", {}).values():
        found += [c for key in keys for c in node_type.get(key) or []]
    return found


def inbound_rules(config: dict) -> list[dict]:
    """The inbound rules Ray's AWS provider gives a security group it creates for this config (Ray's own function;
    its module imports boto3, which the function does not use: stand-ins are lent while it loads if it is absent)."""
    import importlib
    import sys
    from unittest import mock

    extra = config["provider"].get("security_group", {}).get("IpPermissions", [])
    try:
        from ray.autoscaler._private.aws.config import _create_default_inbound_rules
    except ModuleNotFoundError as err:
        if err.name.split(".")[0] not in ("boto3", "botocore"):
            raise
        stand_ins = {name: mock.MagicMock() for name in (
            "boto3", "boto3.exceptions", "boto3.resources", "boto3.resources.base", "botocore", "botocore.client",
            "botocore.config", "botocore.exceptions")}
        stand_ins["boto3"].__version__ = stand_ins["botocore"].__version__ = "1.40.0"
        with mock.patch.dict(sys.modules, stand_ins):  # sys.modules is restored afterwards
            module = importlib.import_module("ray.autoscaler._private.aws.config")
            _create_default_inbound_rules = module._create_default_inbound_rules
    return _create_default_inbound_rules({"sg-of-this-cluster"}, extra)


def security_problems(path_text: str, config: dict) -> list[str]:
    problems = []
    starts = [c for c in commands(config) if "ray start" in c]
    if not any("--head" in c for c in starts):
        problems.append("no `ray start --head` command")
    for command in starts:
        if not re.search(r"\bRAY_AUTH_MODE=token\b", command):
            problems.append(f"`ray start` without RAY_AUTH_MODE=token: {command!r}")
        if "--head" in command and not re.search(r"--dashboard-host[= ](127\.0\.0\.1|localhost)\b", command):
            problems.append(f"the head's dashboard is not bound to localhost: {command!r}")
    for command in commands(config):
        if "0.0.0.0" in command or re.search(r"RAY_AUTH_MODE=(disabled|none)", command):
            problems.append(f"a command opens Ray up: {command!r}")
        for port in re.findall(r"ufw\s+allow\s+(?:proto\s+\w+\s+)?(?:from\s+\S+\s+)?(?:to\s+\S+\s+)?(?:port\s+)?(\d+)",
                               command) + re.findall(r"--dport\s+(\d+)", command):
            if port != "22":
                problems.append(f"a firewall command opens port {port}: {command!r}")
    if "--dashboard-host=0.0.0.0" in path_text or "dashboard_host" in path_text:
        problems.append("the file mentions a public dashboard host")
    if "~/.ray/auth_token" not in (config.get("file_mounts") or {}):
        problems.append("Ray's token (~/.ray/auth_token) is not copied to the nodes")
    provider = config["provider"]
    if provider["type"] == "aws":
        for rule in inbound_rules(config):
            if rule.get("UserIdGroupPairs") and not rule.get("IpRanges") and not rule.get("Ipv6Ranges"):
                continue  # traffic between the cluster's own nodes
            if (rule.get("FromPort"), rule.get("ToPort"), rule.get("IpProtocol")) != (22, 22, "tcp"):
                problems.append(f"a security group rule opens more than SSH: {rule}")
        for node_type in config["available_node_types"].values():
            if node_type["node_config"].get("SecurityGroupIds"):
                problems.append("a node type brings its own security groups: their rules are not checked")
    if provider["type"] == "gcp":
        for node_type in config["available_node_types"].values():
            tags = node_type["node_config"].get("tags", {}).get("items", [])
            if set(tags) & {"http-server", "https-server"}:
                problems.append(f"network tags open web ports: {tags}")
    for what, pattern in SECRET_PATTERNS.items():
        for match in re.finditer(pattern, path_text):
            problems.append(f"{what} in the file: {match.group(0)[:12]}...")
    return problems


def test_the_cluster_folder_has_the_cloud_and_local_files():
    names = {p.name for p in FILES}
    assert {"cluster.yaml", "cluster-gcp.yaml", "local.yaml"} <= names, names
    assert prepared(CLUSTER / "cluster.yaml")["provider"]["type"] == "aws"
    assert prepared(CLUSTER / "cluster-gcp.yaml")["provider"]["type"] == "gcp"
    assert prepared(CLUSTER / "local.yaml")["provider"]["type"] == "local"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_ray_accepts_the_cluster_file(path):
    config = prepared(path)
    if config["provider"]["type"] == "local":
        # A local cluster needs no cloud: run all of `ray up`'s config bootstrap (provider included).
        from ray.autoscaler._private.commands import _bootstrap_config

        config = _bootstrap_config(yaml.safe_load(path.read_text()), no_config_cache=True)
        assert config["provider"]["head_ip"] and isinstance(config["provider"]["worker_ips"], list)
    assert config["cluster_name"].startswith("raygex")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_the_cluster_file_keeps_strangers_out(path):
    assert security_problems(path.read_text(), prepared(path)) == []


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-gcp.yaml"])
def test_cloud_clusters_have_a_cpu_head_autoscaling_gpu_workers_and_the_official_image(name):
    import ray

    config = prepared(CLUSTER / name)
    assert config["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"
    images = [config["docker"].get(k, "") for k in ("image", "head_image", "worker_image")]
    images += [t.get("docker", {}).get("worker_image", "") for t in config["available_node_types"].values()]
    assert not any("ray-ml" in image for image in images)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert not head["resources"].get("GPU"), "the head is a CPU node"
    gpus = sorted(t["resources"].get("GPU", 0) for n, t in types.items() if n != config["head_node_type"])
    assert gpus == [1, 4], "a single-GPU and a 4-GPU worker type"
    for node_name, node_type in types.items():
        if node_name != config["head_node_type"]:
            assert node_type["min_workers"] == 0 < node_type["max_workers"], "GPU workers come and go with demand"
    setup = " ".join(commands(config))
    assert "pip install -q -r ~/raygex/cluster/requirements.txt" in setup and "-e ~/raygex" in setup
    assert "/mnt/raygex" in setup and any("/mnt/raygex" in o for o in config["docker"]["run_options"]), \
        "shared storage for the experiment state, mounted on every node and in its container"


def test_the_s3_cluster_needs_no_shared_file_system_and_writes_no_key():
    """cluster-s3.yaml: the AWS cluster without EFS; every node reaches S3 through an instance profile."""
    config = prepared(CLUSTER / "cluster-s3.yaml")
    aws = prepared(CLUSTER / "cluster.yaml")
    assert config["available_node_types"].keys() == aws["available_node_types"].keys()
    setup = " ".join(commands(config))
    assert "/mnt/raygex" not in setup and "nfs" not in setup
    assert not any("/mnt/raygex" in o for o in config["docker"]["run_options"])
    assert "--env RAYGEX_S3_INSTANCE_CREDENTIALS=1" in config["docker"]["run_options"]
    for name, node_type in config["available_node_types"].items():
        if name != config["head_node_type"]:
            assert node_type["node_config"]["IamInstanceProfile"]["Name"].startswith("raygex-s3")
    assert "pip install -q -r ~/raygex/cluster/requirements.txt" in setup


def test_local_cluster_installs_raygex_in_a_venv_and_puts_it_on_path():
    setup = prepared(CLUSTER / "local.yaml")["setup_commands"]
    assert any("pip install -q -r ~/raygex/cluster/requirements.txt" in c for c in setup)
    assert any("raygex-venv/bin" in c and ".bashrc" in c for c in setup)


def test_requirements_pin_every_dependency_and_the_installed_ray():
    import ray

    lines = [line.split("#")[0].strip() for line in (CLUSTER / "requirements.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if line)
    assert all(re.fullmatch(r"[\w.\-\[\],]+", name) and version for name, version in pins.items())
    assert pins["ray[default,tune,data]"] == ray.__version__
    project = (REPO / "pyproject.toml").read_text()
    declared = re.findall(r'^\s*"([A-Za-z][\w\-]*)', project.split("dependencies = [", 1)[1].split("]\n", 1)[0],
                          re.M)
    pinned = {re.sub(r"\[.*\]", "", name).lower().replace("_", "-") for name in pins}
    assert {d.lower() for d in declared} <= pinned, "every dependency of pyproject.toml is pinned"


def test_the_checks_catch_an_open_cluster():
    """Ray's stock AWS start command binds the dashboard to 0.0.0.0: a file that leaves it in, opens 8265, or
    writes a key in the file is refused."""
    raw = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())
    del raw["head_start_ray_commands"]  # Ray's defaults come back: --dashboard-host=0.0.0.0, no token
    raw["provider"]["security_group"]["IpPermissions"] = [
        {"FromPort": 8265, "ToPort": 8265, "IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    raw["setup_commands"].append("echo export WANDB_API_KEY=0123456789abcdef >> ~/.bashrc")
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(raw)
    validate_config(config)
    problems = "\n".join(security_problems(yaml.safe_dump(raw), config))
    assert "not bound to localhost" in problems
    assert "without RAY_AUTH_MODE=token" in problems
    assert "opens more than SSH" in problems and "8265" in problems
    assert "a W&B key value" in problems


def test_the_readme_walks_through_the_cluster():
    text = (CLUSTER / "README.md").read_text()
    for needed in ("ray up cluster/cluster.yaml", "ray dashboard cluster/cluster.yaml", "ray job submit",
                   "RAY_AUTH_MODE=token", "ray[default]", "raygex search configs/", "--address auto",
                   "--storage /mnt/raygex/results", "raygex resume", "ray rsync-down", "ray down",
                   "WANDB_API_KEY", "CVE-2023-48022", "cluster/local.yaml", "cluster/cluster-s3.yaml",
                   "--storage s3://"):
        assert needed in text, needed

"""A real S3-compatible server on 127.0.0.1 (moto's server mode, as Ray's own storage tests use), with fake
credentials, shared by a module; each test gets its own bucket."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    """The endpoint URL of a moto S3 server started for this module (stopped at its end)."""
    pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path):
    """This process's environment pointed at the server (fake credentials, AWS_ENDPOINT_URL); returns a copy of it
    for child processes."""
    for key, value in {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": s3_server}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return dict(os.environ)


@pytest.fixture
def bucket(s3_env, s3_server):
    """A fresh bucket on the server; its name."""
    import boto3

    name = f"raygex-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def list_keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys

"""Fixtures for the cluster tests: the tiny demo cohort of tests/search, and a config over it."""

from __future__ import annotations

import pytest

from tests.search.conftest import write_config, write_demo

__all__ = ["write_config"]


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("cluster-demo"))

"""A Ray or Optuna outside the tested range is one warning line when the CLI starts, and the command still runs."""

from __future__ import annotations

import os
import subprocess
import sys

from raygex.search.tune_compat.versions import TESTED


def run_cli(tmp_path, extra_path: str | None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (extra_path, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-m", "raygex", "--help"], env=env, capture_output=True, text=True,
                          timeout=120)


def test_an_untested_optuna_is_one_warning_line(tmp_path):
    fake = tmp_path / "site" / "optuna-9.0.0.dist-info"  # found before the installed optuna's metadata
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: optuna\nVersion: 9.0.0\n")
    done = run_cli(tmp_path, str(tmp_path / "site"))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("raygex: warning:")]
    assert len(warnings) == 1 and "optuna 9.0.0 is outside" in warnings[0] and ">={},<{}".format(*TESTED["optuna"]) in warnings[0], done.stderr
    assert "Usage:" in done.stdout


def test_the_tested_versions_print_no_warning(tmp_path):
    done = run_cli(tmp_path, None)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr

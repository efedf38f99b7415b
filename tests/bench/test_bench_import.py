"""`raygex bench import` reports its child's own peak memory, not the peak the child inherits from its parent."""

from __future__ import annotations

import json

import numpy as np


def test_bench_import_peak_is_the_childs_own(run_cli, tmp_path):
    ballast = np.ones(2 * 2**30 // 8)  # 2 GiB resident in this (the parent) process
    code, out, err = run_cli("bench", "import", "--samples", "300", "--genes", "200", "--layout", "xena",
                             "--workdir", str(tmp_path), "--json")
    assert code == 0, err
    (result,) = json.loads(out.strip().splitlines()[-1])["results"]
    assert 0 < result["baseline_rss_mb"] <= result["peak_rss_mb"] < 1024, result  # ru_maxrss would say > 2 GiB
    assert ballast[-1] == 1.0

"""`raygex search configs/demo.yaml` ends with a report.html that a browser renders completely.

The page is opened in headless Chromium (Debian's package; `.ci/run` installs it). A copy of the report gets a
one-line probe script that records, once the page has loaded, how many images failed to decode; Chromium's
``--dump-dom`` then gives the DOM the browser built.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pandas as pd
import pytest

from tests.conftest import REPO

PROBE = """<script>window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !i.complete || i.naturalWidth === 0).length;
  document.body.setAttribute('data-images', images.length);
  document.body.setAttribute('data-broken', broken);
});</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("headless Chromium is not installed (.ci/run installs Debian's chromium package)")


class _Sections(HTMLParser):
    """Task sections (by id) and the h3 headings (by class) inside each."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, set[str]] = {}
        self.current = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and "task" in attrs.get("class", ""):
            self.current = attrs["id"]
            self.sections[self.current] = set()
        elif tag in ("h3", "img") and self.current is not None:
            self.sections[self.current].add(attrs.get("class") or f"img:{attrs.get('alt', '')}")


@pytest.fixture(scope="module")
def demo_sweep(tmp_path_factory):
    """The README's main command on a freshly generated demo, made smaller with --set/--num-samples."""
    import ray

    from raygex.cli import main

    folder = tmp_path_factory.mktemp("demo_report")
    data = folder / "data"

    def run(*args):
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        assert exit_info.value.code == 0

    run("data", "demo", data, "--samples", "240", "--genes", "300")
    run("search", REPO / "configs" / "demo.yaml", "--num-samples", "8", "--storage", folder / "results",
        "--set", f"data.expression={data / 'expression.parquet'}", "--set", f"graphs.true={data / 'graph_true.parquet'}",
        "--set", f"graphs.decoy={data / 'graph_decoy.parquet'}", "--set", "train.max_epochs=4",
        "--set", "search.scheduler.grace_period=2", "--set", "tasks.1.inputs.size=60",
        "--set", "split.seeds=[0,1,2]", "--set", "split.folds=null")
    ray.shutdown()
    return folder / "results" / "demo"


def test_report_renders_in_headless_chromium(demo_sweep, tmp_path):
    report = demo_sweep / "report.html"
    assert report.exists()
    assert report.stat().st_size < 5 * 2**20
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    run = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-background-networking", "--virtual-time-budget=10000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    broken = int(re.search(r'data-broken="(\d+)"', dom).group(1))
    assert images >= 2 * 4 and broken == 0, (images, broken)

    parser = _Sections()
    parser.feed(dom)
    assert set(parser.sections) == {"task-subtype", "task-sgi_G0001"}
    for task, parts in parser.sections.items():
        for heading in ("leaderboard", "choices", "hyperparameters", "curves", "model"):
            assert heading in parts, (task, heading)
        assert any(p.startswith("img:") and "per graph choice" in p for p in parts), task
        assert any(p.startswith("img:") and "learning curves" in p for p in parts), task


def test_seed_runs_cover_every_choice_and_seed(demo_sweep):
    for task in ("subtype", "sgi_G0001"):
        seeds = pd.read_parquet(demo_sweep / task / "seeds.parquet")
        board = pd.read_parquet(demo_sweep / task / "leaderboard.parquet")
        choices = {f"gcn/{g}" if m == "gcn" else m for m, g in zip(board["config/model"], board.get(
            "config/graph", pd.Series([None] * len(board))))}
        assert set(seeds["choice"]) == choices
        assert sorted(seeds["seed"].unique()) == [0, 1, 2]
        assert len(seeds) == 3 * len(choices)
        assert seeds["test_auc"].between(0, 1).all()
        # Seed 0 is the sweep's own split: the retrained best trial of each choice matches its leaderboard row.
        # (unless ASHA cut the trial short: its retrain then gets the full epoch budget).
        for _, row in board.drop_duplicates("trial_id").head(3).iterrows():
            choice = f"gcn/{row['config/graph']}" if row["config/model"] == "gcn" else row["config/model"]
            # the best GCN's configuration is also trained with every other graph under its trial id: its own graph
            again = seeds[(seeds["trial_id"] == row["trial_id"]) & (seeds["seed"] == 0) & (seeds["choice"] == choice)]
            if len(again) and row["epoch"] == 4:
                assert again["valid_auc"].iloc[0] == pytest.approx(row["best_valid_auc"], abs=1e-6)


def test_report_command_rebuilds_and_wandb_report_needs_a_server(demo_sweep, run_cli, monkeypatch):
    (demo_sweep / "report.html").unlink()
    code, out, err = run_cli("report", demo_sweep)
    assert code == 0, err
    assert (demo_sweep / "report.html").exists()
    html = (demo_sweep / "report.html").read_text()
    # each leaderboard says which trial won and why, under which rule; test metrics for the winner only
    assert html.count('<p class="selection">winner ') == 2 and "rule <code>one_se</code>" in html
    monkeypatch.setenv("WANDB_MODE", "offline")
    code, out, err = run_cli("report", demo_sweep, "--wandb-report")
    assert code == 2 and "--wandb-report needs a reachable W&B server" in err

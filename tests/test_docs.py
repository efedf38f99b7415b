"""The docs site builds with warnings as errors (a broken link, a missing page, an API name that moved), the README
stays a two-minute read whose links all resolve, and neither speaks of anything but the product."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

DOCS = sorted((REPO / "docs").rglob("*.md"))
USER_TEXTS = [REPO / "README.md", *DOCS]


def test_the_docs_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocs")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(REPO / ".venv" / "bin") + ":/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("getting-started", "your-data", "concepts", "python-api", "reference/config", "reference/cli",
                 "cluster", "storage", "benchmarks", "design"):
        assert (site / page / "index.html").exists(), page
    api = (site / "python-api" / "index.html").read_text()
    assert "raygex.run" in api and "leaderboard" in api and "load_model" in api  # generated from the docstrings


def test_every_docs_page_is_in_the_navigation():
    nav = (REPO / "mkdocs.yml").read_text()
    for page in DOCS:
        assert str(page.relative_to(REPO / "docs")) in nav, f"{page} is not in mkdocs.yml's nav"


def test_the_readme_is_short_and_its_links_resolve():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    commands = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert "raygex search configs/demo.yaml" in commands and "python -m pytest -q" in commands
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("http"):
            assert (REPO / target).exists(), f"README links to {target}, which does not exist"


@pytest.mark.parametrize("path", USER_TEXTS, ids=[str(p.relative_to(REPO)) for p in USER_TEXTS])
def test_user_docs_speak_about_the_product_only(path):
    text = path.read_text()
    assert "../shared" not in text, f"{path.name} points at the project's shared test data"
    assert not re.search(r"\bissue\s*#?\d+|\bissues?'\s|closing note", text, flags=re.I), f"{path.name} cites issues"
    assert not re.search(r"no GPU (has been|was) available|development machine", text, flags=re.I), path.name

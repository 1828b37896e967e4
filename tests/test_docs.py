"""The documentation's relative links lead somewhere: each file exists and each #anchor is a heading there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {github_anchor(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_github_anchor_matches_known_examples():
    assert github_anchor("CPU study: the controls ablation where the models learn") == \
        "cpu-study-the-controls-ablation-where-the-models-learn"
    assert github_anchor("How much does IM smooth? epsilon against degradation level") == \
        "how-much-does-im-smooth-epsilon-against-degradation-level"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_reach_a_file_and_heading(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:: not checked offline
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading #{anchor})")
    assert broken == [], f"{page.name}: {broken}"


def test_the_library_page_names_every_public_name():
    import importlib

    page = (ROOT / "docs" / "library.md").read_text()
    missing = [f"{package}.{name}" for package in ("data", "augment", "base_augment", "labels", "models", "training",
                                                   "metrics")
               for name in importlib.import_module(f"infomatch.{package}").__all__ if f"`{name}" not in page]
    assert missing == [], f"docs/library.md does not name {missing}"


def test_the_version_is_one_and_every_entry_point_prints_it():
    import subprocess
    import sys

    import yaml

    from infomatch import __version__

    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    assert str(yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"]) == __version__
    for command in (["train.py"], ["evaluate.py"], ["-m", "infomatch.tasks.results"]):
        printed = subprocess.run([sys.executable, *command, "--version"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout
        assert printed.strip() == f"infomatch {__version__}"


def test_tests_mirror_the_package():
    """A module's tests live in the folder of its subpackage (CONTRIBUTING.md, 'Where tests live'); only the tests of
    the configs, the docs and the example stay at the top."""
    tests = ROOT / "tests"
    assert sorted(path.name for path in tests.glob("test_*.py")) == ["test_configs.py", "test_docs.py",
                                                                       "test_example.py"]
    packages = {path.parent.name for path in (ROOT / "src" / "infomatch").glob("*/__init__.py")}
    folders = {path.name for path in tests.iterdir() if path.is_dir() and path.name not in ("fixtures", "__pycache__")}
    assert folders <= packages, folders - packages
    assert all(any(folder.glob("test_*.py")) for folder in map(tests.joinpath, folders))

"""The README is a front page that works: short, every docs page linked, no dangling link, and the
API tour runs as printed (its results checked against hand-computed values)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    in_code = False
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(_anchor(line.lstrip("#")))
    return found


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_a_front_page():
    assert len(README.read_text().splitlines()) < 250


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / target.split("#")[0]).resolve() for target in LINK.findall(README.read_text())
              if not target.startswith(("http://", "https://", "#"))}
    pages = set(p.resolve() for p in DOCS.glob("*.md"))
    assert pages, "docs/ has no pages"
    assert pages - linked == set()


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_no_dangling_links(page):
    dangling = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            dangling.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            dangling.append(target)
    assert dangling == []


def _tour() -> str:
    text = README.read_text()
    section = text[text.index("## A short tour of the API"):]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("\n```", start)]


def test_the_readme_tour_runs_as_printed(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # connect() with no configuration uses ./warehouse
    for key in [k for k in __import__("os").environ if k.startswith("FEATURESTORE_")]:
        monkeypatch.delenv(key)
    printed = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(_tour(), "README.md tour", "exec"), namespace)  # noqa: S102 - the README's own code
    fs = namespace["fs"]
    try:
        # hand-computed: tid 3 upserted to 8.0 at hour 4; two commits; the training rows take the card's
        # newest spend at or before each transaction (tid 1 at hour 1 -> 50.0 of hour 0, tid 2 at hour 3
        # -> 75.0 of hour 2, tid 3 at hour 4 -> 10.0 of hour 0)
        snapshot = sorted((r.tid, r.amount) for r in namespace["trans"].read().collect())
        assert snapshot == [(1, 12.5), (2, 900.0), (3, 8.0)]
        assert len(namespace["trans"].commit_details()) == 2
        training = sorted((r.tid, r.avg_spend, r.is_fraud) for r in namespace["training"].collect())
        assert training == [(1, 50.0, False), (2, 75.0, True), (3, 10.0, False)]
        assert "8.0" in printed.getvalue().splitlines()[-1]  # the online vector of tid 3
        assert (tmp_path / "warehouse").is_dir()
    finally:
        fs.close()

"""The README and docs/ link to each other: every relative link must land on a file, and
every `#anchor` on a heading of the target (GitHub's slugs). Fast, no network: external
links are only checked for being well-formed URLs."""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250  # issue 26: a newcomer finishes the README; the rest is in docs/

MD = MarkdownIt("commonmark").enable("table")


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def _plain(inline) -> str:
    # a heading's text as GitHub slugs it: code spans keep their content, markup goes
    return "".join(t.content for t in inline.children or [] if t.type in ("text", "code_inline"))


def slug(text: str) -> str:
    # github-slugger: lower case, drop everything but letters, marks, digits, "_", "-"
    # and spaces, then each space becomes "-"
    kept = "".join(c for c in text.lower() if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return kept.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    tokens = MD.parse(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open":
            continue
        base = slug(_plain(tokens[i + 1]))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")  # GitHub numbers repeated headings
    return frozenset(out)


def links(path: Path) -> list[str]:
    found = []
    for tok in MD.parse(path.read_text(encoding="utf-8")):
        for child in tok.children or []:
            if child.type == "link_open":
                found.append(child.attrs["href"])
            elif child.type == "image":
                found.append(child.attrs["src"])
    return found


def all_links() -> list[tuple[Path, str]]:
    return [(p, href) for p in markdown_files() for href in links(p)]


def _id(param) -> str:
    return f"{param[0].relative_to(REPO)}->{param[1]}" if isinstance(param, tuple) else str(param)


def test_readme_is_short():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_keeps_the_test_command():
    # CI runs "the README's test command" (.ci/run)
    assert "make test" in (REPO / "README.md").read_text(encoding="utf-8")


def test_the_checker_finds_links_and_anchors():
    # guards against a parser change that would make every other test vacuous
    found = all_links()
    assert len(found) > 40
    assert any(href.startswith("docs/") for p, href in found if p.name == "README.md")
    assert "post-solve" in anchors(REPO / "docs" / "api.md")
    assert (
        slug("The published checkpoint: rationalyst import-checkpoint")
        == "the-published-checkpoint-rationalyst-import-checkpoint"
    )
    assert slug("Reproducing the paper's table on a GPU") == "reproducing-the-papers-table-on-a-gpu"


@pytest.mark.parametrize("source_href", all_links(), ids=_id)
def test_link_resolves(source_href):
    source, href = source_href
    url = urlparse(href)
    if url.scheme in ("http", "https"):
        assert url.netloc and "." in url.netloc and " " not in href, f"malformed URL {href!r}"
        return
    assert not url.scheme, f"{source.name}: unexpected link scheme in {href!r}"
    target = (source.parent / unquote(url.path)).resolve() if url.path else source
    assert target.exists(), f"{source.relative_to(REPO)}: {href!r} points at nothing"
    assert REPO in target.parents or target == REPO, f"{href!r} leaves the repository"
    if url.fragment:
        assert target.suffix == ".md", f"{href!r}: an anchor into a non-Markdown file"
        assert url.fragment in anchors(target), (
            f"{source.relative_to(REPO)}: no heading #{url.fragment} in {target.relative_to(REPO)}"
        )

"""The README stays a front page whose links work, and the documentation site builds strictly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_README_LINES = 150

# [text](target) and ![alt](target); the target ends at the first space or closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text: str) -> str:
    """The markdown without its fenced code blocks, where brackets are not links."""
    kept, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            in_fence = not in_fence
            continue
        if not in_fence:
            kept.append(line)
    return "\n".join(kept)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and MkDocs both write it for the headings these pages use."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a markdown file's headings."""
    found = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            found.add(slug(match.group(1)))
    return found


def broken_links(markdown: Path) -> list[str]:
    """Relative links of a markdown file whose target file, or anchor in it, does not exist."""
    problems = []
    for target in LINK.findall(prose(markdown.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (markdown.parent / path_part).resolve() if path_part else markdown
        if not path.exists():
            problems.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{target}: no heading with anchor #{anchor} in {path.name}")
    return problems


@pytest.mark.processes
def test_the_site_builds_with_mkdocs_strict(tmp_path: Path) -> None:
    """mkdocs build --strict succeeds: no broken link or anchor, no page left out of the nav."""
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}\n{build.stderr}"


def test_every_relative_link_of_the_readme_points_at_something_that_exists() -> None:
    """Each relative link of README.md names an existing file, and an existing heading if anchored."""
    assert LINK.findall(prose(README.read_text(encoding="utf-8"))), "README.md has no links at all"
    assert broken_links(README) == []


def test_the_readme_is_a_front_page_of_at_most_150_lines() -> None:
    """README.md stays short; everything else belongs in docs/."""
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines, at most {MAX_README_LINES}: move the rest to a page in docs/"
    )


def test_the_link_checker_catches_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    """The checker itself can fail: a dead file link and a dead anchor are both reported."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page\n\n## The verdict\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/page.md#the-verdict) [gone](docs/missing.md) [bad](docs/page.md#nowhere)\n"
        "```\n[not a link](inside/a/fence.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(readme) == [
        "docs/missing.md: no such file",
        "docs/page.md#nowhere: no heading with anchor #nowhere in page.md",
    ]

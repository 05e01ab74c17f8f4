"""The README and the docs link to files and sections that exist: every relative markdown link in
README.md, docs/*.md and bench/RESULTS.md names a file of the repository and, for a .md target
with an #anchor, a heading of it (by GitHub's slug rules); every path the README's code map
names exists."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "RESULTS.md"]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without its code: links inside fences and code spans are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (links and code reduced to their words), lowercased,
    without punctuation but hyphens and underscores, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for match in HEADING.finditer(FENCE.sub("", path.read_text())):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path.read_text())) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        if not resolved.exists():
            broken.append(f"{target}: no {resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == [], f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_slugs_follow_githubs_rules() -> None:
    assert slug("Which test (`design`)") == "which-test-design"
    assert slug("Built artifacts (issue #2)") == "built-artifacts-issue-2"
    assert slug("In the browser: posthog-js") == "in-the-browser-posthog-js"
    assert slug("Hot keys, and the ceilings they set") == "hot-keys-and-the-ceilings-they-set"


def code_map() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Code map")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def test_every_path_in_the_code_map_exists() -> None:
    section = code_map()
    named = re.findall(r"`([^`\s]+)`", section)
    spans = {span.rstrip("/") for span in named if "/" in span and "{" not in span and "..." not in span}
    # The map names the package's modules from abacus/ on, as imports do: they live in the layers.
    places = {
        span: [ROOT / layer / span for layer in ("layers/shared", "layers/stats")]
        for span in spans
        if span.startswith("abacus/")
    }
    places |= {span: [ROOT / span] for span in spans if not span.startswith("abacus/")}
    assert len(places) > 20, section
    missing = [span for span, paths in sorted(places.items()) if not any(path.exists() for path in paths)]
    assert missing == [], missing

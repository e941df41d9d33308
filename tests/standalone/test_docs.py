"""The documentation site's code samples come from files a test runs, between well-formed markers.

Every code sample of ``docs/`` is a ``literalinclude`` of an ``example_dags/`` file between ``[START name]``
and ``[END name]`` comments, and ``tests/system/test_example_*.py`` run those files with ``dag.test()``. These
tests read the text only (no Sphinx, no Airflow): a sample that names a missing file or marker, Python
written inline in a page, or a marker pair that is broken fails here, before ``make docs``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import EXAMPLE_DAGS, REPO

DOCS = REPO / "docs"
PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.relative_to(DOCS).parts)
EXAMPLES = sorted(EXAMPLE_DAGS.glob("*.py"))

#: A MyST literalinclude: ```{literalinclude} <path> then its :option: value lines.
_INCLUDE = re.compile(r"^(`{3,}|~{3,})\{literalinclude\}\s+(?P<path>\S+)\s*\n(?P<options>(?::[\w-]+:.*\n)*)", re.M)
_OPTION = re.compile(r"^:(?P<name>[\w-]+):[ \t]*(?P<value>.*?)[ \t]*$", re.M)
#: An opening code fence and its info string (language, or {directive}).
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$", re.M)
_MARKER = re.compile(r"#\s*\[(?P<kind>START|END) (?P<name>[^\]]+)\]")
_PYTHON_INFO = {"python", "py", "python3", "py3", "pycon", "ipython", "{code-block} python", "{code} python"}


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value


def literal_includes(page: Path) -> list[tuple[int, Path, dict[str, str]]]:
    """``(line, included file, options)`` for each literalinclude of ``page``."""
    text = page.read_text()
    found = []
    for match in _INCLUDE.finditer(text):
        options = {m["name"]: _unquote(m["value"]) for m in _OPTION.finditer(match["options"])}
        line = text.count("\n", 0, match.start()) + 1
        found.append((line, (page.parent / match["path"]).resolve(), options))
    return found


def test_there_are_pages_and_samples():
    assert {"index.md", "connection.md"} <= {page.name for page in PAGES}
    assert sum(len(literal_includes(page)) for page in PAGES) >= 10


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_every_literalinclude_names_a_file_and_markers_that_exist_once(page):
    problems = []
    for line, path, options in literal_includes(page):
        where = f"{page.relative_to(REPO)}:{line}"
        if not path.is_file():
            problems.append(f"{where}: {path} does not exist")
            continue
        if EXAMPLE_DAGS not in path.parents:
            problems.append(
                f"{where}: {path.relative_to(REPO)} is not an example DAG (samples come from example_dags/)"
            )
        start, end = options.get("start-after"), options.get("end-before")
        if not start or not end:
            problems.append(f"{where}: a sample needs :start-after: [START name] and :end-before: [END name]")
            continue
        text = path.read_text()
        for option, marker in (("start-after", start), ("end-before", end)):
            if text.count(marker) != 1:
                problems.append(f"{where}: {option} {marker!r} occurs {text.count(marker)} times in {path.name}")
        if start.startswith("[START ") and end != "[END " + start.removeprefix("[START "):
            problems.append(f"{where}: {start!r} ends at {end!r}, not its own END marker")
        if text.count(start) == 1 and text.count(end) == 1 and text.index(start) > text.index(end):
            problems.append(f"{where}: {end!r} comes before {start!r}")
    assert problems == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_no_python_is_written_inline(page):
    """Python samples are included from example DAGs a test runs, never typed into a page."""
    inline = []
    text = page.read_text()
    fences = list(_FENCE.finditer(text))
    closing: str | None = None
    for match in fences:
        if closing is not None:  # inside a block: only its closing fence counts
            if match["fence"].startswith(closing) and not match["info"].strip():
                closing = None
            continue
        closing = match["fence"]
        info = match["info"].strip().lower()
        if info in _PYTHON_INFO or info.split(" ")[0] in {"python", "py", "python3", "pycon"}:
            inline.append(f"{page.relative_to(REPO)}:{text.count(chr(10), 0, match.start()) + 1}: ```{info}")
        if not info.startswith("{"):  # Python under another name (```text, no language) is inline Python too
            body_end = text.find(closing, match.end())
            body = text[match.end() : body_end if body_end >= 0 else len(text)]
            if re.search(r"^\s*(import \w|from [\w.]+ import |def \w+\(|with \w+\(.*\) as \w+:)", body, re.M):
                inline.append(
                    f"{page.relative_to(REPO)}:{text.count(chr(10), 0, match.start()) + 1}: Python as ```{info}"
                )
        if re.match(r"\{eval-rst\}", info):
            body_end = text.find(closing, match.end())
            body = text[match.end() : body_end if body_end >= 0 else len(text)]
            if re.search(r"\.\.\s+(code-block|code|sourcecode)::\s*(python|py)\b", body):
                inline.append(f"{page.relative_to(REPO)}: a python code-block inside eval-rst")
    assert inline == [], "include Python from example_dags/ with literalinclude instead"


def example_markers(path: Path) -> list[tuple[int, str, str]]:
    return [
        (number, match["kind"], match["name"])
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for match in _MARKER.finditer(line)
    ]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_markers_are_well_formed(example):
    """Each name has one START, then one END after it; pairs do not interleave; markers are comments."""
    problems, open_name = [], None
    seen: dict[str, list[str]] = {}
    for number, kind, name in example_markers(example):
        seen.setdefault(name, []).append(kind)
        where = f"{example.name}:{number}"
        if kind == "START":
            if open_name is not None:
                problems.append(f"{where}: [START {name}] inside the open pair {open_name!r}")
            open_name = name
        elif open_name != name:
            problems.append(f"{where}: [END {name}] without its [START {name}] before it")
        else:
            open_name = None
    if open_name is not None:
        problems.append(f"{example.name}: [START {open_name}] is never ended")
    problems += [
        f"{example.name}: {name!r} has markers {kinds}" for name, kinds in seen.items() if kinds != ["START", "END"]
    ]
    for number, line in enumerate(example.read_text().splitlines(), 1):
        if re.search(r"\[(START|END) ", line) and not line.lstrip().startswith("#"):
            problems.append(f"{example.name}:{number}: a marker outside a comment line: {line.strip()!r}")
    assert problems == []


def test_marker_names_are_unique_across_examples():
    """A name means one sample: the same name in two files would make a page's include ambiguous to read."""
    owners: dict[str, list[str]] = {}
    for example in EXAMPLES:
        for _, kind, name in example_markers(example):
            if kind == "START":
                owners.setdefault(name, []).append(example.name)
    assert {name: files for name, files in owners.items() if len(files) > 1} == {}


def marked_sections() -> dict[str, str]:
    """Every example's text between ``# [START name]`` and ``# [END name]``, by name."""
    sections = {}
    for example in EXAMPLES:
        text = example.read_text()
        for match in re.finditer(
            r"^# \[START (?P<name>[^\]]+)\]\n(?P<body>.*?)^# \[END (?P=name)\]$", text, re.M | re.S
        ):
            sections[match["name"]] = match["body"]
    return sections


def test_the_readme_is_short_and_its_python_is_an_example_section():
    """The README is a page long; its Python (GitHub cannot include files) is a tested example's section,
    character for character, so it cannot drift from code that runs."""
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    blocks = re.findall(r"^```python\n(.*?)^```$", readme, re.M | re.S)
    assert blocks, "the README shows a DAG"
    sections = marked_sections()
    for block in blocks:
        assert block in sections.values(), "a README Python block that is no example section:\n" + block[:300]


def test_the_readmes_links_into_the_repository_resolve():
    readme = (REPO / "README.md").read_text()
    targets = {target.split("#")[0] for target in re.findall(r"\]\((?!https?://)([^)\s]+)\)", readme)}
    assert targets, "the README links into the site"
    assert sorted(target for target in targets if not (REPO / target).exists()) == []

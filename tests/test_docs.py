"""The documentation: the MkDocs site builds without a warning, the README
keeps what CI and a new user rely on, and the tutorial's code runs.

The tutorial test executes the ```python blocks of ``docs/tutorial.md`` in
order, in one namespace, from the repository root, as a reader would. A
block right after a ``<!-- docs-test: skip (reason) -->`` line is shown but
not run (a full-length estimate). Tracebacks point to the line of
``docs/tutorial.md``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"
SKIP_MARK = re.compile(r"^<!--\s*docs-test:\s*skip\b.*-->\s*$")


def _require_mkdocs():
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"{exc}: install the documentation tools, pip install -e '.[test]' "
                    "(or '.[docs]')", pytrace=False)


def test_site_builds_without_warnings(tmp_path):
    _require_mkdocs()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    # --strict aborts on MkDocs' own warnings; also refuse any other warning
    # printed during the build (e.g. from a plugin's logger).
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert not warnings, log
    site = tmp_path / "site"
    for page in ("index.html", "tutorial.html", "api.html"):
        assert (site / page).is_file(), page
    assert 'id="backtrace"' in (site / "api.html").read_text(), "API reference not rendered"


def _relative_links(markdown: str):
    for target in re.findall(r"\]\(([^)\s]+)\)", markdown):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # external link or anchor in the same file
        yield target.split("#", 1)[0]


def test_readme_links_resolve():
    for doc in (ROOT / "README.md", ROOT / "studies" / "README.md"):
        for target in _relative_links(doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def _section(markdown: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def test_readme_keeps_the_ci_commands_and_stays_short():
    readme = (ROOT / "README.md").read_text()
    # .ci/run installs and tests exactly as these two sections say.
    assert "pip install -e . && backtrace run --tracks examples/sample.parquet" in _section(
        readme, "Install and run")
    assert "pip install -e '.[test]' && pytest" in _section(readme, "Tests")
    n = len(readme.splitlines())
    assert n <= 300, f"README.md has {n} lines: keep it to a five-minute read, move details to docs/"


def tutorial_blocks(markdown: str):
    """(first line number, code) of each ```python block to run, in order."""
    lines = markdown.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            end = start
            while lines[end].strip() != "```":
                end += 1
            previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
            if not SKIP_MARK.match(previous.strip()):
                blocks.append((start + 1, "\n".join(lines[start:end])))
            i = end
        i += 1
    return blocks


def test_tutorial_blocks_are_found():
    blocks = tutorial_blocks(TUTORIAL.read_text())
    assert len(blocks) >= 5
    assert any("backtrace.estimate(" in code for _, code in blocks)


def test_tutorial_runs(monkeypatch, tmp_path):
    import backtrace

    if not hasattr(backtrace, "estimate"):
        pytest.skip("backtrace.estimate does not exist yet (the public API, backtrace/api.py, "
                    "is being written): the tutorial cannot run until it does")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(ROOT)
    # The tutorial writes into tempfile.mkdtemp(): keep that under pytest's tmp_path.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    namespace = {"__name__": "__tutorial__"}
    try:
        for line, code in tutorial_blocks(TUTORIAL.read_text()):
            # Pad so that tracebacks give the line numbers of docs/tutorial.md.
            source = "\n" * (line - 1) + code
            exec(compile(source, str(TUTORIAL), "exec"), namespace)
    finally:
        plt.close("all")

"""Every ```python block of README.md, CHANGELOG.md and docs/ runs, and prints what it says.

The convention (docs/contributing.md, "Examples that stay true"):
- a block is run as a script, in a fresh namespace, from an empty temporary folder;
- a line ending in ``# -> TEXT`` prints TEXT: the lines the block prints must be exactly
  the TEXTs of its ``# ->`` comments, in order, up to spaces at either end (a block
  without one must print nothing); a value printed on several lines takes one ``# ->``
  comment per line;
- a block whose first line is ``# requires: pkg1, pkg2`` is skipped when one of those
  packages cannot be imported (only then); scikit-learn is needed by many blocks and is
  part of the test extra, so those blocks run in CI.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
EXPECT = re.compile(r"#\s*->\s?(.*?)\s*$")
REQUIRES = re.compile(r"^#\s*requires:\s*(.+)$")


def _blocks():
    out = []
    for f in FILES:
        if not f.exists() or "_build" in f.parts:
            continue
        text = f.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 2  # the block's first line
            out.append(pytest.param(m.group(1), id=f"{f.relative_to(ROOT)}:{line}"))
    return out


BLOCKS = _blocks()


def test_the_documentation_has_examples():
    names = {p.id.split(":")[0] for p in BLOCKS}
    assert "README.md" in names and len(BLOCKS) >= 20, sorted(names)


@pytest.mark.parametrize("code", BLOCKS)
def test_example(code, tmp_path, monkeypatch):
    lines = code.splitlines()
    m = REQUIRES.match(lines[0]) if lines else None
    if m:
        for pkg in (p.strip() for p in m.group(1).split(",")):
            try:
                importlib.import_module(pkg)
            except ImportError:
                pytest.skip(f"needs {pkg}, which is not installed")
    expected = [e.group(1) for e in map(EXPECT.search, lines) if e]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "<example>", "exec"), {"__name__": "__example__"})  # noqa: S102
    printed = [line.strip() for line in buf.getvalue().splitlines()]
    assert printed == expected
    assert os.getcwd() == str(tmp_path)


def _docstring_examples():
    import doctest
    import pkgutil

    import fastloss

    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for m in pkgutil.iter_modules(fastloss.__path__):
        if m.name.startswith("_") or m.name in ("cli",):
            continue
        try:
            mod = importlib.import_module(f"fastloss.{m.name}")
        except ImportError:  # a module of an optional package that is not installed
            continue
        tests += [t for t in finder.find(mod) if t.examples]
    return tests


def test_docstring_examples():
    """The ``>>>`` examples of the public docstrings (the API reference shows them)."""
    import doctest

    tests = _docstring_examples()
    assert len(tests) >= 2
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    out = io.StringIO()
    for t in tests:
        runner.run(t, out=out.write)
    assert runner.failures == 0, out.getvalue()


def test_the_readme_is_short_and_for_users():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 160
    lines = text.splitlines()
    assert lines[2:6] == [
        "```bash",
        'pip install ".[all]" && python -m fastloss train',
        'pip install ".[test]" && python -m pytest tests',
        "```",
    ]
    for word in ("session", "issue", "helper", "agent", "the lead"):
        assert not re.search(rf"\b{word}", text, re.IGNORECASE), word


def _command_lines():
    """Every `fastloss ...` / `python -m fastloss ...` command the README and the docs show:
    the lines of bash blocks, the `$ ` prompts of transcripts, and text blocks that are
    lists of commands (every line a `fastloss` command line)."""
    block = re.compile(r"^```(text|bash)\n(.*?)^```", re.DOTALL | re.MULTILINE)
    cmd = re.compile(r"^(?:python -m )?fastloss(?: (.*))?$")
    out = []
    for f in FILES:
        if not f.exists() or "_build" in f.parts:
            continue
        for m in block.finditer(f.read_text(encoding="utf-8")):
            lines = [ln for ln in m.group(2).splitlines() if ln.strip()]
            if any(ln.startswith("$ ") for ln in lines):
                lines = [ln[2:] for ln in lines if ln.startswith("$ ")]
            elif m.group(1) == "text" and not all(ln.startswith("fastloss ") for ln in lines):
                continue  # output, not commands
            for line in lines:
                for part in line.split("&&"):
                    c = cmd.match(part.split("#")[0].strip())
                    if c:
                        out.append((f.relative_to(ROOT).as_posix(), (c.group(1) or "").strip()))
    return out


def test_the_documented_command_lines_parse():
    """Each command line the documentation shows is accepted by the command line's parser:
    the commands and options it names exist."""
    import shlex

    from fastloss.cli import _parser

    cmds = _command_lines()
    assert len(cmds) >= 8, cmds
    for where, args in cmds:
        try:
            ns = _parser().parse_args(shlex.split(args))
        except SystemExit as e:
            pytest.fail(f"{where}: `fastloss {args}` is refused by the parser (exit {e.code})")
        assert ns is not None

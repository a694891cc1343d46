"""The docs must not drift from the code: commands they show exist and parse, links resolve."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from fasterseg.cli import build_parser

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"
DOC_FILES = sorted(DOCS.rglob("*.md"))

# Subcommands the docs may describe before they are merged (being built on their own branches):
# none now. A name added here is not checked by the tests below; remove it when it merges, and
# test_pending_names_are_really_unmerged fails until it is.
PENDING: set[str] = set()

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
# `fasterseg CMD` or `python -m fasterseg.cli CMD` / `torchrun ... -m fasterseg.cli CMD`.
INVOCATION = re.compile(r"(?:^|[\s(])fasterseg(?:\.cli)?\s+([a-z][a-z0-9_-]*)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _exact(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """No abbreviated options: a doc saying --plot for --plots must fail, not pass by prefix."""
    parser.allow_abbrev = False
    for sub in _subparsers(parser).values():
        _exact(sub)
    return parser


PARSER = _exact(build_parser())
COMMANDS = _subparsers(PARSER)


def _code(text: str) -> tuple[list[str], list[str]]:
    """(command lines of fenced blocks, inline code spans outside them)."""
    lines: list[str] = []
    for block in FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)  # shell line continuations
        lines += [line for line in joined.splitlines() if line.strip()]
    return lines, INLINE.findall(FENCE.sub("", text))


def _argv(line: str) -> list[str] | None:
    """The arguments after ``fasterseg`` / ``fasterseg.cli`` in a shell line, or None."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    for i, word in enumerate(words):
        if word in ("fasterseg", "fasterseg.cli") and i + 1 < len(words):
            return words[i + 1:]
    return None


def test_docs_exist():
    names = {p.relative_to(DOCS).as_posix() for p in DOC_FILES}
    assert {"overview.md", "recipes/cityscapes.md", "recipes/camvid.md", "recipes/custom.md", "recipes/official.md"} <= names


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_subcommand_named_exists(doc: Path):
    blocks, spans = _code(doc.read_text())
    named = {m for text in blocks + spans for m in INVOCATION.findall(text)}
    unknown = sorted(named - set(COMMANDS) - PENDING)
    assert not unknown, f"{doc.relative_to(REPO_ROOT)}: no such subcommand: {unknown} (known: {sorted(COMMANDS)})"


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_full_command_parses(doc: Path, capsys):
    """Commands in code blocks are complete: the merged CLI's parser accepts them as written."""
    blocks, _ = _code(doc.read_text())
    checked = 0
    for line in blocks:
        argv = _argv(line)
        if not argv or argv[0] in PENDING:
            continue
        try:
            PARSER.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{doc.relative_to(REPO_ROOT)}: the CLI rejects: {line.strip()}\n{capsys.readouterr().err}")
        checked += 1
    if doc.parent.name == "recipes":
        assert checked, f"{doc}: no command checked; did the extraction break?"


def test_pending_names_are_really_unmerged():
    """A merged command must leave PENDING so that its documented commands get checked."""
    assert not PENDING & set(COMMANDS), f"merged now, remove from PENDING: {sorted(PENDING & set(COMMANDS))}"


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_no_pending_remarks_when_nothing_is_pending(doc: Path):
    """Once everything has merged, no page may still call a command unmerged or on a branch."""
    if PENDING:
        pytest.skip(f"pending: {sorted(PENDING)}")
    text = doc.read_text().lower()
    stale = [s for s in ("subject to change", "not merged", "branch issue-", "branch `issue-") if s in text]
    assert not stale, f"{doc.relative_to(REPO_ROOT)}: stale remarks {stale}; PENDING is empty"


def test_second_level_tools_exist():
    """`fasterseg lut ACTION` / `fasterseg data TOOL` in the docs name real actions."""
    for doc in DOC_FILES:
        blocks, spans = _code(doc.read_text())
        for text in blocks + spans:
            for m in re.finditer(r"fasterseg(?:\.cli)?\s+(lut|data)\s+([a-z][a-z0-9_-]*)", text):
                tools = _subparsers(COMMANDS[m.group(1)])
                assert m.group(2) in tools, f"{doc.relative_to(REPO_ROOT)}: fasterseg {m.group(1)} has no '{m.group(2)}' ({sorted(tools)})"


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_relative_links_resolve(doc: Path):
    broken = []
    for target in LINK.findall(FENCE.sub("", doc.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # web links and anchors within the page
        path = (doc.parent / target.split("#")[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(REPO_ROOT)}: links to missing files: {broken}"


def test_extractors_on_a_hand_made_page(tmp_path):
    """The helpers find what they should (so that the tests above cannot pass vacuously)."""
    text = ("Run `fasterseg nosuch` or `fasterseg.load_model`.\n[a](gone.md) ![b](images/x.png) [c](https://x.org)\n"
            "```bash\nfasterseg train --genotype G.json \\\n    --set epochs=1  # tiny\n"
            "torchrun --nproc_per_node=2 -m fasterseg.cli eval --model M --data synth:d\n```\n")
    blocks, spans = _code(text)
    assert blocks == ["fasterseg train --genotype G.json  --set epochs=1  # tiny",
                      "torchrun --nproc_per_node=2 -m fasterseg.cli eval --model M --data synth:d"]
    assert {m for t in blocks + spans for m in INVOCATION.findall(t)} == {"nosuch", "train", "eval"}
    assert _argv(blocks[0]) == ["train", "--genotype", "G.json", "--set", "epochs=1"]
    assert _argv(blocks[1])[0] == "eval"
    assert LINK.findall(text) == ["gone.md", "images/x.png", "https://x.org"]
    with pytest.raises(SystemExit):  # a misspelt option in a doc would be caught
        PARSER.parse_args(_argv("fasterseg train --genotpye G.json"))
    with pytest.raises(SystemExit):  # ... and so would a prefix of the real option
        PARSER.parse_args(_argv("fasterseg eval --model M --data synth:d --plot out/"))


def test_pipeline_diagram_script_draws_a_png(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_pipeline_diagram", DOCS / "make_pipeline_diagram.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.draw(tmp_path / "pipeline.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (DOCS / "images" / "pipeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

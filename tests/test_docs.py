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
README = REPO_ROOT / "README.md"
PAGES = DOC_FILES + [README]  # the README's commands are held to the same checks

# Subcommands the docs may describe before they are merged (being built on their own branches):
# none now. A name added here is not checked by the tests below; remove it when it merges, and
# test_pending_names_are_really_unmerged fails until it is.
PENDING: set[str] = set()

FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)  # (info string, body); ```text blocks are not commands
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
    for info, block in FENCE.findall(text):
        if info.strip() == "text":
            continue
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


@pytest.mark.parametrize("doc", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_subcommand_named_exists(doc: Path):
    blocks, spans = _code(doc.read_text())
    named = {m for text in blocks + spans for m in INVOCATION.findall(text)}
    unknown = sorted(named - set(COMMANDS) - PENDING)
    assert not unknown, f"{doc.relative_to(REPO_ROOT)}: no such subcommand: {unknown} (known: {sorted(COMMANDS)})"


@pytest.mark.parametrize("doc", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
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


@pytest.mark.parametrize("doc", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
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


SET = re.compile(r"--set\s+('[^']*'|\"[^\"]*\"|\S+)")


def _set_examples(text: str) -> list[tuple[str | None, str | None, list[str]]]:
    """(command, --config file, overrides) of each command line with --set, and (None, None, [one])
    for each inline `--set key=value` span outside code blocks."""
    blocks, spans = _code(text)
    found = []
    for line in blocks:
        argv = _argv(line)
        if argv and "--set" in argv:
            sets = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--set"]
            config = argv[argv.index("--config") + 1] if "--config" in argv else None
            found.append((argv[0], config, sets))
    for span in spans:
        argv = _argv(span)
        if argv and "--set" in argv:
            found += _set_examples(f"```\n{span}\n```\n")
            continue
        for value in SET.findall(span):
            found.append((None, None, [shlex.split(value)[0]]))
    return found


def _config_classes() -> dict[str, type]:
    from fasterseg.commands.config import CONFIGS, config_class

    from fasterseg.space.config import SupernetConfig

    return {**{name: config_class(name) for name in CONFIGS}, "lut": SupernetConfig}  # lut build --set: the search space


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_set_example_is_a_valid_setting(page: Path):
    """Each `--set key=value` a page shows is applied to the configuration it changes (with the
    page's --config file when the repository has it): a wrong key, value or type fails here."""
    from fasterseg.config import load_config
    from fasterseg.errors import ConfigError

    from fasterseg.config import to_dict

    def key_exists(cls, key: str) -> bool:
        node = to_dict(cls())
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    classes = _config_classes()
    for command, config, sets in _set_examples(page.read_text()):
        if command is not None and command not in classes:
            continue
        sets = [s for s in sets if s.split("=")[0] not in ("key", "k")]  # the syntax itself, not an example
        if not sets:
            continue
        candidates = [classes[command]] if command else list(classes.values())
        path = REPO_ROOT / config if config and (REPO_ROOT / config).is_file() else None
        errors = []
        for cls in candidates:
            try:
                elided = [s.split("=")[0] for s in sets if s.split("=", 1)[1] == "..."]  # `key=...`: the key alone
                if not all(key_exists(cls, key) for key in elided):
                    raise ConfigError(f"no key {elided}")
                load_config(cls, path, [s for s in sets if s.split("=")[0] not in elided])
                break
            except (ConfigError, ValueError) as exc:
                errors.append(f"{cls.__name__}: {exc}")
        else:
            pytest.fail(f"{page.relative_to(REPO_ROOT)}: {' '.join('--set ' + s for s in sets)} fits no configuration: {errors}")


def test_set_examples_are_found():
    text = ("Change it with `--set search.epochs=10`.\n```bash\nfasterseg train --config configs/train/camvid.yaml "
            "--set 'data.train_split=[train,val]' --set epochs=3\n```\n")
    assert _set_examples(text) == [("train", "configs/train/camvid.yaml", ["data.train_split=[train,val]", "epochs=3"]),
                                   (None, None, ["search.epochs=10"])]


# Commands cheap enough to run as written (seconds), when every file they name is in the repository.
RUNNABLE = {("config",), ("info",), ("lut", "show")}


def _names_only_existing_files(argv: list[str]) -> bool:
    """No placeholder (MODEL, [--x], a|b) and every path-like word exists from the repository root."""
    for word in argv:
        if "[" in word or "|" in word or word.isupper():
            return False
        if ("/" in word or word.endswith((".json", ".safetensors", ".yaml", ".png"))) and not word.startswith("-"):
            if not (REPO_ROOT / word).exists() and not word.endswith(".png"):
                return False
    return True


def test_cheap_documented_commands_run_as_written(monkeypatch, capsys, tmp_path):
    """Not only parsed: `fasterseg config ...`, `info` and `lut show` lines of the docs run from the
    repository root and succeed (a short name such as `camvid` or a built-in profile included)."""
    from fasterseg.cli import main

    monkeypatch.chdir(REPO_ROOT)
    ran = []
    for page in PAGES:
        blocks, spans = _code(page.read_text())
        for line in blocks + spans:
            argv = _argv(line)
            if not argv or not any(tuple(argv[:len(k)]) == k for k in RUNNABLE) or not _names_only_existing_files(argv):
                continue
            try:
                PARSER.parse_args(argv)
            except SystemExit:  # an inline mention such as `fasterseg info`, not a whole command
                capsys.readouterr()
                continue
            if "--plot" in argv:  # drawn into the test's folder, not the repository
                argv[argv.index("--plot") + 1] = str(tmp_path / "plot.png")
            try:
                code = main(argv)
            except SystemExit as exc:  # usage that only running finds incomplete: `fasterseg info` alone
                capsys.readouterr()
                if exc.code == 2 and len(argv) == 1:
                    continue
                raise
            err = capsys.readouterr().err
            assert code == 0, f"{page.relative_to(REPO_ROOT)}: `fasterseg {' '.join(argv)}` failed: {err}"
            ran.append(" ".join(argv[:2]))
    assert {"config --markdown", "info camvid", "lut show"} <= set(ran), ran

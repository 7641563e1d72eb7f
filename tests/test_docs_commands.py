"""Every command the README and docs quote (``scripts/…``, ``make …``, ``python main.py …``) exists, with the
flags and environments it shows: an operator at 2 a.m. pastes them."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO
from roi_tf.app import parse_args
from roi_tf.config import ENVIRONMENTS

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")
SCRIPT = re.compile(r"(?:^|[\s(=;&|])(?:\./)?scripts/([a-z]+)\.sh\b([^\n#|;&)]*)")
MAKE = re.compile(r"(?:^|[\s(;&|])make\s+([a-z][a-z-]*)")
MAIN = re.compile(r"(?:^|[\s(;&|])(?:\S*python3?\s+)main\.py\b([^\n#|;&)]*)")
PLACEHOLDER = re.compile(r"^(<[^>]+>|…|\.\.\.)$")  # <env>, and an ellipsis for "any arguments"


def code(text: str) -> Iterator[str]:
    """The code of a markdown text: fenced blocks (line by line, continuations joined) and inline spans."""
    for block in FENCE.findall(text):
        yield from block.replace("\\\n", " ").splitlines()
    # In a table, an inline span writes "or" between options as an escaped pipe: `[--a \\| --b]`.
    yield from (span.replace("\\|", " ") for span in INLINE.findall(FENCE.sub("", text)))


def words(arguments: str) -> list[str]:
    """Arguments as a shell reads them, usage brackets removed (``[--env prod]`` is ``--env prod``)."""
    try:
        return shlex.split(arguments.replace("[", " ").replace("]", " "))
    except ValueError:
        return arguments.replace("[", " ").replace("]", " ").split()


CASE_PATTERN = re.compile(r"^\s+(-[-a-z]+(?:\s*\|\s*-[-a-z]+)*)\)", re.M)


def script_flags(name: str) -> set[str]:
    """The options a script's argument loop accepts (its ``case`` patterns: ``--plan-only)``, ``-h | --help)``)."""
    source = (REPO / "scripts" / f"{name}.sh").read_text()
    loops = [source]
    if calls := re.findall(r"^runbook_args \w+ (\S+) ", source, re.M):  # lib.sh's loop, plus the script's own flag
        lib = (REPO / "scripts" / "lib.sh").read_text()
        loops.append(lib.split("\nrunbook_args() {", 1)[1].split("\n}\n", 1)[0])
        loops += [f"  {flag})" for flag in calls if flag.startswith("-")]
    return {flag.strip() for loop in loops for pattern in CASE_PATTERN.findall(loop) for flag in pattern.split("|")}


def problems(text: str, where: str) -> Iterator[str]:
    makefile = (REPO / "Makefile").read_text()
    for line in code(text):
        for name, arguments in SCRIPT.findall(line):
            if not (REPO / "scripts" / f"{name}.sh").is_file():
                yield f"{where}: scripts/{name}.sh does not exist"
                continue
            accepted = script_flags(name)
            for word in words(arguments):
                if word.startswith("-") and word not in accepted:
                    yield f"{where}: scripts/{name}.sh has no option {word}"
                elif not word.startswith("-") and word not in ENVIRONMENTS and not PLACEHOLDER.match(word):
                    yield f"{where}: scripts/{name}.sh {word}: not an environment"
        for target in MAKE.findall(line):
            if not re.search(rf"^{re.escape(target)}:", makefile, re.M):
                yield f"{where}: make {target}: no such target"
        for arguments in MAIN.findall(line):
            try:
                # A placeholder stands for a value; an ellipsis for more arguments of any kind.
                parse_args(
                    [word if word[0] != "<" else "value" for word in words(arguments) if word not in ("…", "...")]
                )
            except SystemExit:
                yield f"{where}: python main.py {arguments.strip()}: not accepted"


def quoted_commands() -> int:
    total = 0
    for doc in DOCS:
        for line in code(doc.read_text()):
            total += len(SCRIPT.findall(line)) + len(MAKE.findall(line)) + len(MAIN.findall(line))
    return total


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_quoted_command_exists_with_the_flags_it_shows(doc: Path) -> None:
    assert list(problems(doc.read_text(), doc.name)) == []


def test_the_docs_quote_commands_and_the_check_sees_them() -> None:
    assert quoted_commands() >= 30
    assert {"--dry-run", "--plan-only", "--auto-approve", "--allow-production"} <= script_flags(
        "deploy"
    ) | script_flags("destroy")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("`scripts/deploy.sh prod --yolo`", "scripts/deploy.sh has no option --yolo"),
        ("`scripts/deploy.sh produciton`", "scripts/deploy.sh produciton: not an environment"),
        ("```bash\nscripts/rollback.sh prod\n```", "scripts/rollback.sh does not exist"),
        ("`make deploy`", "make deploy: no such target"),
        ("`python main.py --region eu-west-1`", "python main.py --region eu-west-1: not accepted"),
    ],
)
def test_a_wrong_command_is_reported(text: str, found: str) -> None:
    """Negative controls; and prose ("make sure"), placeholders and usage brackets are not mistaken for errors."""
    assert list(problems(text, "doc")) == [f"doc: {found}"]
    assert list(problems("make sure `scripts/deploy.sh <env> [--plan-only]` and `make test`", "doc")) == []

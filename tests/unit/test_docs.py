"""The README says what the code does: its option table is `cronwarden run --help`,
and its list of Event reasons is what the operator can post."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

from cronwarden.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PACKAGE = ROOT / "operator" / "cronwarden"


def run_options() -> set[str]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run = commands.choices["run"]
    return {
        max(action.option_strings, key=len)
        for action in run._actions
        if action.option_strings and "--help" not in action.option_strings
    }


def readme_options() -> set[str]:
    section = README.split("## Running the operator", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `-")]
    return {max(re.findall(r"--[a-z][a-z-]*", row.split("|")[1]), key=len) for row in rows}


def test_readme_option_table_is_the_run_help() -> None:
    assert readme_options() == run_options()


def emitted_event_reasons() -> set[str]:
    """Reasons the operator posts: Event(type, reason, ...), Problem(reason, ...) (posted
    as Warnings when Ready turns False) and post_event(obj, type, reason, ...)."""
    reasons: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            index = {"Event": 1, "Problem": 0, "post_event": 2}.get(name or "")
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                reasons.add(arg.value)
    return reasons


def readme_event_reasons() -> set[str]:
    block = README.split("\nEvents: ", 1)[1].split(".\n", 1)[0]
    return set(re.findall(r"`([A-Za-z]+)`", block))


def test_readme_lists_every_event_reason_the_code_can_post() -> None:
    code = emitted_event_reasons()
    assert {"RunSucceeded", "CronJobNotOwned", "DaylightSavingTime"} <= code  # the scan works
    assert readme_event_reasons() == code

"""The README says what the code does: its option table is `cronwarden run --help`,
and its list of Event reasons is what the operator can post."""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

import yaml

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


# The docs name only values and make targets that exist.

CHART = ROOT / "helm" / "cronwarden"
# Every page a user reads to install or run cronwarden, and the files the chart ships
# for use outside it (the rules file, whose comments say how the chart embeds it).
DOCS = [
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "README.md",
    CHART / "README.md",
    *sorted((CHART / "files").glob("*.yaml")),
]
# Keys that the docs name on purpose although the chart no longer has them: upgrade
# notes that say what to rename.
REMOVED_VALUES = {"highAvailability.peeringName"}
FILE_SUFFIXES = {"py", "md", "yaml", "yml", "json", "txt", "sh", "tpl", "go", "mod", "lock"}


def values_tree() -> dict[str, object]:
    """Every key of values.yaml as a dotted path, with its default."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    paths: dict[str, object] = {}

    def walk(node: dict[str, object], prefix: str) -> None:
        for key, default in node.items():
            paths[prefix + key] = default
            if isinstance(default, dict) and default:
                walk(default, f"{prefix}{key}.")

    walk(values, "")
    return paths


def free_form(path: str) -> bool:
    """Whether values.schema.json lets the value at `path` hold keys of the user's
    choosing (labels, selectors) or a list, so that longer paths below it are valid."""
    node = json.loads((CHART / "values.schema.json").read_text())
    for key in path.split("."):
        node = node["properties"][key]
    return node.get("type") == "array" or (
        "properties" not in node and node.get("additionalProperties") is not False
    )


def value_path_problem(path: str, paths: dict[str, object]) -> str | None:
    """Why `path` (dots, list indexes stripped) is not a value of the chart, or None."""
    if path in paths:
        return None
    segments = path.split(".")
    for end in range(len(segments) - 1, 0, -1):
        prefix = ".".join(segments[:end])
        if prefix in paths:
            return None if free_form(prefix) else f"values.yaml has {prefix} but not {path}"
    full = sorted(p for p in paths if p.endswith("." + path))
    return f"{path} is not a values key; did you mean {' or '.join(full)}?" if full else None


# A dotted name such as metrics.prometheusRule.enabled or networkPolicy.from[0].ipBlock,
# not part of a longer word, path, URL or API group (rbac.authorization.k8s.io/...).
DOTTED = re.compile(
    r"(?<![\w./$-])([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9_]*|\[\d+\])+)(?!\.?[\w/-])"
)


def named_value_paths(text: str) -> set[str]:
    """Dotted names in the text that start like a chart value or end like one: the
    values a page names, and the half-names it should not use."""
    paths = values_tree()
    tops = {p for p in paths if "." not in p}
    found = set()
    for match in DOTTED.finditer(text):
        path = re.sub(r"\[\d+\]", "", match[1])
        if path.rsplit(".", 1)[1] in FILE_SUFFIXES:
            continue
        if path.split(".")[0] in tops or any(p.endswith("." + path) for p in paths):
            found.add(path)
    return found


def yaml_values_blocks(text: str) -> list[dict[str, object]]:
    """```yaml blocks that are chart values (no apiVersion; only top-level value keys)."""
    tops = {p for p in values_tree() if "." not in p}
    blocks = []
    for body in re.findall(r"^```yaml\n(.*?)^```", text, re.M | re.S):
        try:
            doc = yaml.safe_load(body)
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and "apiVersion" not in doc and set(doc) <= tops:
            blocks.append(doc)
    return blocks


def leaf_paths(node: dict[str, object], prefix: str = "") -> list[str]:
    out = []
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out += leaf_paths(value, f"{prefix}{key}.")
        else:
            out.append(prefix + key)
    return out


def test_value_paths_check_catches_half_names_and_unknown_keys() -> None:
    paths = values_tree()
    assert value_path_problem("metrics.prometheusRule.enabled", paths) is None
    assert value_path_problem("metrics.serviceMonitor.labels.release", paths) is None
    assert value_path_problem("metrics.networkPolicy.from.podSelector", paths) is None
    assert "did you mean metrics.prometheusRule.enabled" in str(
        value_path_problem("prometheusRule.enabled", paths)
    )
    assert "has metrics.serviceMonitor but not" in str(
        value_path_problem("metrics.serviceMonitor.enable", paths)
    )
    assert value_path_problem("operator.bindAdress", paths) == (
        "values.yaml has operator but not operator.bindAdress"
    )
    assert value_path_problem("image.repo.name", paths) == (
        "values.yaml has image but not image.repo.name"
    )
    assert value_path_problem("spec.suspend", paths) is None  # not a value at all
    assert named_value_paths("set `prometheusRule.enabled=true` or spec.suspend") == {
        "prometheusRule.enabled"
    }
    assert named_value_paths("see docs/alerting.md and runtime/metrics.py") == set()


def test_every_value_the_docs_name_exists_in_values_yaml() -> None:
    paths = values_tree()
    assert not REMOVED_VALUES & set(paths)
    problems = []
    for page in DOCS:
        text = page.read_text()
        named = named_value_paths(text) | {
            leaf for block in yaml_values_blocks(text) for leaf in leaf_paths(block)
        }
        for path in sorted(named - REMOVED_VALUES):
            if problem := value_path_problem(path, paths):
                problems.append(f"{page.relative_to(ROOT)}: {problem}")
    assert not problems, "\n".join(problems)


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))


def named_make_targets(text: str) -> set[str]:
    """Targets of `make ...` commands in code: fenced blocks and inline code spans, where
    a command starts a line (after an optional `$ ` prompt) or follows ; && || ( or |."""
    code = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.M | re.S)
    code += re.findall(r"`([^`\n]+)`", prose)
    targets = set()
    for snippet in code:
        for line in snippet.splitlines():
            line = line.split(" #", 1)[0]
            for match in re.finditer(r"(?:^\s*(?:\$\s+)?|[;&|(]\s*)make((?:\s+[\w.=/-]+)+)", line):
                targets |= {w for w in match[1].split() if "=" not in w and not w.startswith("-")}
    return targets


def test_make_target_check_reads_commands_not_prose() -> None:
    text = "Run `make kind-up docker-build N=3` then\n```sh\n$ make run   # the demo\n```\n"
    assert named_make_targets(text) == {"kind-up", "docker-build", "run"}
    assert named_make_targets("```console\nChange it in Git to make it last.\n```\n") == set()


def test_every_make_target_the_docs_name_exists() -> None:
    targets = makefile_targets()
    assert {"run", "test", "tools", "help"} <= targets  # the scan works
    missing = {
        f"{page.relative_to(ROOT)}: make {target}"
        for page in DOCS
        for target in named_make_targets(page.read_text())
        if target not in targets
    }
    assert not missing, sorted(missing)


def test_docs_advise_server_side_apply_for_the_crd() -> None:
    """The CRD is ~180 KB as JSON, most of the 256 KiB that a client-side apply's
    last-applied-configuration annotation may take: a few more fields and
    `kubectl apply -f crds/` fails. Every page says --server-side."""
    crd = yaml.safe_load((ROOT / "crds" / "scheduledtasks.cronwarden.io.yaml").read_text())
    assert len(json.dumps(crd, separators=(",", ":"))) > 150_000
    pages = [*DOCS, CHART / "values.yaml", CHART / "templates" / "NOTES.txt"]
    client_side = [
        f"{page.relative_to(ROOT)}: {line.strip()}"
        for page in pages
        for line in page.read_text().splitlines()
        if re.search(r"kubectl apply (?!.*--server-side).*crds/", line)
    ]
    assert not client_side, client_side

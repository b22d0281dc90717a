#!/usr/bin/env python3
"""Check that every role's meta/argument_specs.yml documents exactly its defaults (prometheus-community style).

For each roles/<role>: the keys of defaults/main.yml (or defaults/main/*.yml) must equal the options of
argument_specs.main, and each documented default must equal the value in defaults. Every option of type bool must be
read through `| bool` wherever the role uses it (a value given with -e arrives as the string "false", which is true).
Exit 1 with one line per mismatch.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_defaults(role: Path) -> dict:
    files = [role / "defaults" / "main.yml", *sorted((role / "defaults" / "main").glob("*.yml"))]
    merged: dict = {}
    for path in files:
        if path.is_file():
            merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def check_role(role: Path) -> list[str]:
    spec_file = role / "meta" / "argument_specs.yml"
    if not spec_file.is_file():
        return [f"{role.name}: meta/argument_specs.yml is missing"]
    specs = (yaml.safe_load(spec_file.read_text()) or {}).get("argument_specs", {})
    options = specs.get("main", {}).get("options", {}) or {}
    defaults = load_defaults(role)
    problems = [f"{role.name}: {k} is in defaults but not in argument_specs" for k in sorted(set(defaults) - set(options))]
    problems += [
        f"{role.name}: {k} is in argument_specs but not in defaults"
        for k in sorted(set(options) - set(defaults))
        if "default" in options[k]
    ]
    for key in sorted(set(defaults) & set(options)):
        if "default" in options[key] and options[key]["default"] != defaults[key]:
            problems.append(f"{role.name}: {key} default {options[key]['default']!r} != defaults {defaults[key]!r}")
    for key, option in options.items():
        if not option.get("description"):
            problems.append(f"{role.name}: {key} has no description")
    return problems + check_bool_use(role, [k for k, o in options.items() if o.get("type") == "bool"])


CONDITION_KEYS = ("when", "that", "until", "changed_when", "failed_when")


def _expressions(data):
    """Every Jinja expression in a loaded YAML document: bare conditions and the insides of {{ }} and {% %}."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in CONDITION_KEYS:
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, str):
                        yield item
            else:
                yield from _expressions(value)
    elif isinstance(data, list):
        for item in data:
            yield from _expressions(item)
    elif isinstance(data, str):
        yield from re.findall(r"\{\{.*?\}\}|\{%.*?%\}", data, re.S)


def check_bool_use(role: Path, names: list[str]) -> list[str]:
    """Every read of a bool option in the role's tasks, handlers and vars must go through the bool filter."""
    problems = []
    files = [p for d in ("tasks", "handlers", "vars") for p in sorted((role / d).rglob("*.yml"))]
    for path in files:
        # Quoted text inside an expression is a message, not a read of the variable.
        code = [re.sub(r"'[^']*'", "''", e) for e in _expressions(yaml.safe_load(path.read_text()))]
        for name in names:
            use = re.compile(rf"\b{re.escape(name)}\b(?!\s*\|\s*bool\b)")
            if any(use.search(expression) for expression in code):
                problems.append(f"{role.name}: {path.relative_to(role)} reads {name} without | bool")
    return problems


def main() -> int:
    roles = sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir() and not p.name.startswith("_"))
    problems = [problem for role in roles for problem in check_role(role)]
    for problem in problems:
        print(problem)
    print(f"argument specs: {len(roles)} roles checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

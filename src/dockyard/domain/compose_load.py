"""A compose file as dockyard reads it, from text to a checked document and its warnings:

1. YAML within bounds, with the line of every key path (``compose_yaml.load_located``);
2. the shape dockyard needs first: a mapping of services, each a mapping under a valid name;
3. variables substituted in every string value, not in keys (``interpolation``), from the
   variables given (the environment's over the repository's ``.env``, see ``dotenv``);
4. the result checked against the Compose schema (``compose_schema``);
5. warnings: variables used but not set (each became an empty string, as in Compose), and keys
   dockyard does not honour yet (``compose_support``).

A refusal names file, line and key path (``docker-compose.yml line 12: services/web/ports: should
be a list, not a mapping``), and gives the first MAX_SHOWN violations, not all of them. What
substitution produces stays within the loader's bound on characters (MAX_YAML_CHARS).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from dockyard.domain import compose_schema, compose_support, names
from dockyard.domain.compose_yaml import MAX_YAML_CHARS, KeyLines, Located, at_path, load_located
from dockyard.domain.errors import InvalidSource
from dockyard.domain.interpolation import InterpolationError, interpolate

MAX_SHOWN = 3  # violations given in a refusal
MAX_WARNINGS = 50  # warnings given for one file (variables first); the rest are counted
SCHEMA_HINT = "dockyard checks compose files against the Compose specification (https://compose-spec.io): fix what is named"
NO_VARIABLES: Mapping[str, str] = MappingProxyType({})

Parts = tuple[str | int, ...]


@dataclass(frozen=True)
class Compose:
    """A compose document checked against the schema, with its variables substituted (keys are
    strings), and the warnings for the user: ``SOURCE line N: KEY/PATH: ...``, in file order."""

    doc: dict[str, Any]
    warnings: tuple[str, ...] = ()


def key_text(key: object) -> str:
    """A mapping key as a string, as JSON and the schema see it."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def path_text(parts: Parts) -> str:
    """A key path as messages show it (``services/web/ports/0``), each key cut short."""
    return "/".join(text if len(text) <= 60 else text[:57] + "..." for text in map(str, parts))


def located(source: str, lines: KeyLines, parts: Parts, message: str) -> str:
    """``SOURCE line N: KEY/PATH: message``."""
    where = f": {path_text(parts)}" if parts else ""
    return f"{source} line {lines.line_of(parts)}{where}: {message}"


def load(text: str, *, source: str = "compose file", variables: Mapping[str, str] = NO_VARIABLES) -> Compose:
    """The checked document of a compose file named ``source``; InvalidSource when it cannot be
    read, is not a mapping of valid services, uses a required variable that is not set, or does
    not follow the Compose schema."""
    found = load_located(text)
    check_services(found.doc)
    doc, unset = _substituted(found, source, variables)
    if isinstance(doc.get("version"), (int, float)) and not isinstance(doc["version"], bool):
        doc["version"] = str(doc["version"])  # `version: 3.7` unquoted: informational all the same
    problems, more = compose_schema.violations(doc)
    if problems:
        raise refusal(source, found.lines, problems, more)
    return Compose(doc, _warnings(source, found.lines, unset, compose_support.not_honoured(doc)))


def refusal(source: str, lines: KeyLines, problems: list[tuple[Parts, str]], more: bool,
            hint: str = SCHEMA_HINT) -> InvalidSource:
    """The first MAX_SHOWN violations in file order, on one line: ``SOURCE line 4: KEY/PATH: ...;
    line 9: ... (and 3 more)``."""
    ordered = sorted({(lines.line_of(p), path_text(p), m): p for p, m in problems}.items())
    shown = [located(source, lines, p, m) for (_, _, m), p in ordered[:MAX_SHOWN]]
    left = len(ordered) - len(shown)
    tail = f" (and {'at least ' if more else ''}{left} more)" if left > 0 else " (and more)" if more else ""
    rest = [s.removeprefix(f"{source} ") for s in shown[1:]]
    return InvalidSource("; ".join([shown[0], *rest]) + tail, hint)


def _warnings(source: str, lines: KeyLines, unset: dict[str, Parts], notes: list[tuple[Parts, str]]) -> tuple[str, ...]:
    """Unset variables, then keys not honoured yet, up to MAX_WARNINGS, shown in file order."""
    variables = [(p, f"the variable {name} is not set, so it is replaced by an empty string (set it in the "
                     "environment's variables or in .env, or give it a default: ${" + name + ":-value})")
                 for name, p in unset.items()]
    chosen = (variables[:MAX_WARNINGS] + notes)[:MAX_WARNINGS]
    warnings = [located(source, lines, p, m) for p, m in sorted(chosen, key=lambda n: lines.line_of(n[0]))]
    left = len(variables) + len(notes) - len(chosen)
    if left > 0:
        warnings.append(f"{source}: {left} more warnings not shown")
    return tuple(warnings)


def check_services(doc: Any) -> None:
    """The shape dockyard needs before anything else: a non-empty mapping of services, each a
    mapping under a valid service name."""
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        raise at_path("services", "should be a mapping of service names to definitions")
    for name, body in doc["services"].items():
        path = f"services/{path_text((key_text(name),))}"
        try:
            names.service_name(key_text(name))
        except Exception as exc:
            raise at_path(path, str(exc)) from None
        if not isinstance(body, dict):
            raise at_path(path, "should be a mapping")


def _substituted(found: Located, source: str, variables: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Parts]]:
    """The document with its variables substituted in string values, keys as strings and dates
    as written; and the unset variables used without a default, each with where it was first.
    Each value is visited once where it appears (an alias, where it is used): the loader
    bounded that."""
    unset: dict[str, Parts] = {}
    budget = [MAX_YAML_CHARS]

    def walk(value: Any, parts: Parts) -> Any:
        if isinstance(value, str):
            try:
                text, missing = interpolate(value, variables)
            except InterpolationError as exc:
                raise InvalidSource(located(source, found.lines, parts, exc.message), exc.hint) from None
            for name in missing:
                unset.setdefault(name, parts)
            budget[0] -= len(text)
            if budget[0] < 0:
                raise InvalidSource(
                    located(source, found.lines, parts, f"the compose file expands to more than "
                            f"{MAX_YAML_CHARS // 1024} KiB of text once its variables are substituted"),
                    "use shorter variable values, or fewer of them",
                )
            return text
        if isinstance(value, dict):
            return {key_text(k): walk(v, (*parts, key_text(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*parts, i)) for i, v in enumerate(value)]
        if isinstance(value, datetime.date):  # an unquoted date: the schema wants its text
            return str(value)
        return value

    doc = walk(found.doc, ())
    assert isinstance(doc, dict)  # check_services saw to it
    return doc, unset

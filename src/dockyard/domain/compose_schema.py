"""The compose file checked against the official Compose JSON schema (Draft 7, vendored in
``schemas/compose-spec.json``), each violation told as a key path and a message a user can act
on (``services/web/ports: should be a list, not a mapping``).

The document is pushed content, already bounded by the loader (nodes, characters, depth). The
schema's keywords take time in proportion to it, except jsonschema's ``uniqueItems``, which falls
back to comparing every pair of items when they cannot be sorted: it is replaced here by a check
that hashes each item once. ``oneOf`` first sets aside the alternatives whose ``type`` cannot fit
the value (a port is a number, a string or a mapping): when one is left and it fits, that is the
answer, without validating the others; otherwise jsonschema's own ``oneOf`` runs. A document at
the loader's node bound validates in a few hundred milliseconds at worst. At most MAX_COLLECTED
violations are gathered.

The same checks serve dockyard.yml's own schema (``schemas/dockyard.schema.json``, see
``dockyard_file``): ``violations(doc, schema_file, spec)``.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from dockyard.domain.errors import shown

MAX_COLLECTED = 20
COMPOSE_SCHEMA = "compose-spec.json"
Parts = tuple[str | int, ...]

_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "number": "a number",
               "integer": "a whole number", "boolean": "true or false", "null": "empty"}


def kind(value: Any) -> str:
    """What a loaded value is, in a user's words."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "empty"
    return {"bytes": "binary data", "set": "a set"}.get(type(value).__name__, type(value).__name__)


def _canonical(value: Any) -> Any:
    """A hashable form of a JSON-like value, equal for values JSON Schema calls equal (1 and
    1.0; not 1 and true)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, Mapping):
        return ("o", tuple(sorted((str(k), _canonical(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("a", tuple(_canonical(v) for v in value))
    if value is None:
        return ("z",)
    return ("?", type(value).__name__, repr(value))


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """``uniqueItems`` in linear time (jsonschema's own compares every pair of unsortable items)."""
    from jsonschema.exceptions import ValidationError

    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _canonical(item)
        if key in seen:
            yield ValidationError(f"has {shown(str(item), 60)} more than once")
            return
        seen.add(key)


def _fast_one_of(one_of: Any) -> Any:
    """``oneOf`` that, when a single alternative's ``type`` fits the value and the value is
    valid under it, is done (the others cannot be valid); else jsonschema's ``one_of``."""

    def check(validator: Any, alternatives: Any, instance: Any, schema: Any) -> Iterator[Any]:
        fitting = [a for a in alternatives if not isinstance(a, Mapping) or "type" not in a
                   or any(validator.is_type(instance, t) for t in _listed(a["type"]))]
        if len(fitting) == 1 and validator.evolve(schema=fitting[0]).is_valid(instance):
            return
        yield from one_of(validator, alternatives, instance, schema)

    return check


@functools.cache
def validator(schema_file: str = COMPOSE_SCHEMA) -> Any:
    """The validator of a Draft 7 schema of ``schemas/`` (the Compose schema unless told),
    built once per process (the inspecting child builds it while it waits for a push)."""
    import json
    from importlib import resources

    import jsonschema

    schema = json.loads(resources.files("dockyard.domain").joinpath(f"schemas/{schema_file}").read_text())
    draft7 = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft7Validator,
        {"uniqueItems": _unique_items, "oneOf": _fast_one_of(jsonschema.Draft7Validator.VALIDATORS["oneOf"])},
    )
    return draft7(schema)  # formats are not checked: Draft 7 makes them optional


def violations(doc: Any, schema_file: str = COMPOSE_SCHEMA,
               spec: str = "the Compose specification") -> tuple[list[tuple[Parts, str]], bool]:
    """The violations of the schema, (key path, message) in no set order, from the first
    MAX_COLLECTED errors; and whether there are more. ``spec`` names the schema to the user
    (``unknown key (not in SPEC)``)."""
    errors = list(itertools.islice(validator(schema_file).iter_errors(doc), MAX_COLLECTED + 1))
    found = [violation for error in errors[:MAX_COLLECTED] for violation in _explain(error, spec)]
    return found, len(errors) > MAX_COLLECTED


def _not(value: Any) -> str:
    return "and is empty" if value is None else f"not {kind(value)}"


def _types(names: Any) -> str:
    words = [_TYPE_WORDS.get(n, str(n)) for n in ([names] if isinstance(names, str) else names)]
    words = list(dict.fromkeys(w for w in words if w != "empty")) or ["empty"]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _explain(error: Any, spec: str) -> list[tuple[Parts, str]]:
    """One schema error as key paths and messages: the alternative that fits the value is
    followed into (``oneOf``), and each unknown key is named at its own path."""
    path: Parts = tuple(error.absolute_path)
    check, expected, value = error.validator, error.validator_value, error.instance
    if check in ("oneOf", "anyOf") and error.context:
        fitting = _fitting_alternative(error.context)
        if fitting is None:
            wanted = [e.validator_value for e in error.context if e.validator == "type"]
            return [(path, f"should be {_types([t for ts in wanted for t in _listed(ts)])}, {_not(value)}")]
        return _explain(max(fitting, key=lambda e: len(e.absolute_path)), spec)
    if check == "type":
        return [(path, f"should be {_types(expected)}, {_not(value)}")]
    if check == "additionalProperties" and isinstance(value, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        named, patterns = schema.get("properties", {}), list(schema.get("patternProperties", {}))
        extra = [k for k in value if k not in named and not any(re.search(p, str(k)) for p in patterns)]
        names = [p for p in patterns if p != "^x-"]
        what = ("is not a valid name here (letters, digits, '.', '_' and '-')" if names and not named
                else f"unknown key (not in {spec})")
        return [((*path, k), what) for k in extra] or [(path, "has unknown keys")]
    if check == "required" and isinstance(value, Mapping):
        missing = [k for k in expected if k not in value]
        return [(path, "needs " + ", ".join(shown(str(k)) for k in missing))]
    if check == "enum":
        return [(path, f"should be one of {', '.join(shown(str(v)) for v in expected)}, not {shown(str(value), 60)}")]
    if check == "pattern":
        return [(path, f"{shown(str(value), 60)} does not match {shown(str(expected))}")]
    if check in ("minimum", "maximum"):
        return [(path, f"should be at {'least' if check == 'minimum' else 'most'} {expected}, not {shown(str(value), 30)}")]
    if check == "uniqueItems":
        return [(path, error.message)]
    return [(path, f"is not valid here ({check}: {shown(str(expected), 80)})")]


def _listed(types: Any) -> list[Any]:
    return [types] if isinstance(types, str) else list(types)


def _fitting_alternative(context: list[Any]) -> list[Any] | None:
    """The errors of the first alternative of a ``oneOf`` whose type fits the value, or None
    when none does."""
    by_alternative: dict[Any, list[Any]] = {}
    for e in context:
        by_alternative.setdefault(e.relative_schema_path[0], []).append(e)
    for errors in by_alternative.values():
        if not any(e.validator == "type" and not e.relative_path for e in errors):
            return errors
    return None

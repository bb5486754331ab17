"""Compose's variable interpolation in one string value, in linear time and within a size cap.

The forms Compose knows: ``$NAME`` and ``${NAME}``; ``${NAME:-default}`` (unset or empty) and
``${NAME-default}`` (unset); ``${NAME:?error}`` and ``${NAME?error}`` (required); ``${NAME:+alt}``
and ``${NAME+alt}`` (alternative when set); ``$$`` for a literal ``$``. A default, an alternative or
an error text is itself interpolated, so ``${A:-${B:-c}}`` nests (at most MAX_NESTING levels). A
``$`` followed by anything else stays as it is; ``${`` that is not one of these forms is an error,
as in Compose.

The text is pushed: each character is read once (a default that is not used is scanned, not
evaluated), and a result longer than ``limit`` characters is refused as soon as it gets there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dockyard.domain.errors import shown
from dockyard.domain.limits import MAX_COMPOSE_BYTES

MAX_VALUE_CHARS = MAX_COMPOSE_BYTES  # one value, once its variables are substituted
MAX_NESTING = 32
SYNTAX_HINT = "write ${NAME}, ${NAME:-default} or ${NAME:?message}, and $$ for a literal $"

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_TEXT = re.compile(r"[^$]+")  # outside braces, up to the next $
_WORD = re.compile(r"[^${}]+")  # inside ${NAME:-...}, up to the next $ or brace
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A value whose variables cannot be substituted; ``variable`` names the one at fault, if any."""

    def __init__(self, message: str, hint: str, variable: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.variable = variable


class _Out:
    """The result being written, refused once longer than ``limit`` characters."""

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit

    def add(self, text: str) -> None:
        self.size += len(text)
        if self.size > self.limit:
            raise InterpolationError(
                f"expands to more than {self.limit} characters once its variables are substituted",
                "use shorter variable values, or fewer of them",
            )
        self.parts.append(text)


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, str]) -> None:
        self.s = text
        self.variables = variables
        self.missing: dict[str, None] = {}  # unset variables used without a default, in order

    def text(self, i: int, out: _Out | None, in_word: bool, depth: int) -> int:
        """Read from ``i`` to the end, or (``in_word``) to the ``}`` that closes the word, whose
        index is returned. ``out`` None: scan only (an unused default)."""
        s, n, braces = self.s, len(self.s), 0
        while i < n:
            c = s[i]
            if c == "$":
                i = self.dollar(i, out, depth)
                continue
            if not in_word:
                run = _TEXT.match(s, i)
            elif c == "}":
                if braces == 0:
                    return i
                braces, run = braces - 1, None
            elif c == "{":
                braces, run = braces + 1, None
            else:
                run = _WORD.match(s, i)
            piece = run.group() if run else c
            if out is not None:
                out.add(piece)
            i += len(piece)
        if in_word:
            raise InterpolationError(f"{shown(s, 60)}: '${{' is not closed by '}}'", SYNTAX_HINT)
        return i

    def dollar(self, i: int, out: _Out | None, depth: int) -> int:
        """Read the ``$`` at ``i`` and what it introduces; the index after it."""
        s = self.s
        after = s[i + 1 : i + 2]
        if after == "$":
            if out is not None:
                out.add("$")
            return i + 2
        name = _NAME.match(s, i + 1)
        if name:
            self.substitute(name.group(), out)
            return name.end()
        if after != "{":
            if out is not None:
                out.add("$")
            return i + 1
        name = _NAME.match(s, i + 2)
        if name is None:
            raise InterpolationError(f"{shown(s[i:i + 40])} is not a variable: a name must follow '${{'", SYNTAX_HINT)
        j = name.end()
        if s[j : j + 1] == "}":
            self.substitute(name.group(), out)
            return j + 1
        op = next((o for o in _OPERATORS if s.startswith(o, j)), None)
        if op is None:
            raise InterpolationError(f"{shown(s[i:j + 20])}: {shown(s[j:j + 1] or 'the end')} is not an operator "
                                     "(':-', '-', ':?', '?', ':+' or '+')", SYNTAX_HINT)
        if depth >= MAX_NESTING:
            raise InterpolationError(f"variables are nested deeper than {MAX_NESTING} levels", "flatten the value")
        return self.braced(name.group(), op, j + len(op), out, depth + 1) + 1

    def braced(self, name: str, op: str, start: int, out: _Out | None, depth: int) -> int:
        """``${NAME<op>word}`` with the word at ``start``; the index of its closing brace."""
        if out is None:
            return self.text(start, None, True, depth)
        value = self.variables.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op[-1] == "-":  # the default, when unset
            end = self.text(start, out if unset else None, True, depth)
            if not unset:
                out.add(value or "")
            return end
        if op[-1] == "+":  # the alternative, when set
            return self.text(start, None if unset else out, True, depth)
        if not unset:  # required, and set
            end = self.text(start, None, True, depth)
            out.add(value or "")
            return end
        reason = _Out(out.limit)
        self.text(start, reason, True, depth)
        text = "".join(reason.parts).strip()
        why = "is not set" if op == "?" or value is None else "is empty"
        raise InterpolationError(
            f"required variable {name} {why}" + (f": {text[:200]}" if text else ""),
            f"set {name} in the environment's variables, or in the .env file at the repository root",
            variable=name,
        )

    def substitute(self, name: str, out: _Out | None) -> None:
        if out is None:
            return
        value = self.variables.get(name)
        if value is None:
            self.missing.setdefault(name)
            return
        out.add(value)


def interpolate(text: str, variables: Mapping[str, str], limit: int = MAX_VALUE_CHARS) -> tuple[str, tuple[str, ...]]:
    """``text`` with its variables substituted, and the unset variables it used without a
    default (each became an empty string, as in Compose). Raises InterpolationError."""
    if "$" not in text:
        return text, ()
    parser = _Parser(text, variables)
    out = _Out(limit)
    parser.text(0, out, False, 0)
    return "".join(out.parts), tuple(parser.missing)

"""The ``.env`` file at the repository root: the variables a compose file is interpolated with,
read as Compose reads it (compose-go's dotenv).

- ``KEY=VALUE`` (or ``KEY: VALUE``), with an optional ``export`` before the key; blank lines and
  ``#`` comment lines are skipped. A key is letters, digits, ``_``, ``.``, ``-``, ``[`` and ``]``.
- An unquoted value runs to the end of its line, less a `` #`` comment and trailing blanks.
- ``'single quotes'`` keep the value as written; ``"double quotes"`` read escapes (``\\n``,
  ``\\t``, ``\\"``, ``\\\\``, ``\\$``...). Quoted values may span lines.
- Unquoted and double-quoted values are interpolated (``${OTHER}``), from the environment's
  variables first, then the keys above them in the file.
- A key alone on its line takes its value from the environment's variables, if it is there.

The file is pushed text: it is read in one pass, and what it expands to is capped (each value at
MAX_VALUE_CHARS, all of them at MAX_DOTENV_CHARS).
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass

from dockyard.domain.errors import InvalidSource, shown
from dockyard.domain.interpolation import MAX_VALUE_CHARS, InterpolationError, interpolate
from dockyard.domain.limits import MAX_ENV_FILE_BYTES

DOTENV = ".env"
MAX_DOTENV_CHARS = 4 * MAX_ENV_FILE_BYTES  # all values together, once interpolated
MAX_WARNINGS = 20  # unset variables named; the rest are counted
HINT = "write one KEY=VALUE a line ('export ', quotes and # comments are allowed)"

_BLANK = re.compile(r"\s*")
_SPACES = re.compile(r"[ \t\r\f\v\xa0\x85]*")
_EXPORT = re.compile(r"export[ \t]+")
_KEY_END = re.compile(r"[=:\n]")
_KEY = re.compile(r"[\w.\[\]-]+")
_QUOTE_OR_ESCAPE = {"'": re.compile(r"['\\]"), '"': re.compile(r'["\\]')}
_ESCAPES = re.compile(r"\\(?:[abcfnrtv$\"\\]|0[0-7]{0,3})")
_ESCAPED = {"a": "\a", "b": "\b", "c": "\\c", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            '"': '"', "\\": "\\", "$": "$$"}


@dataclass(frozen=True)
class DotEnv:
    """The variables of a ``.env`` file, and the unset variables its values used (as warnings)."""

    variables: dict[str, str]
    warnings: tuple[str, ...] = ()


def _end(blank: re.Pattern[str], text: str, i: int) -> int:
    """Where the run of ``blank`` characters at ``i`` ends."""
    run = blank.match(text, i)
    return run.end() if run else i


def _unescape(match: re.Match[str]) -> str:
    code = match.group()[1:]
    if code[0] == "0":
        return chr(int(code, 8)) if len(code) > 1 else "\0"
    return _ESCAPED[code]


class _Reader:
    def __init__(self, text: str, source: str, environment: Mapping[str, str]) -> None:
        self.s = text
        self.source = source
        self.environment = environment
        self.values: dict[str, str] = {}
        self.lookup = ChainMap(dict(environment), self.values)  # the environment's first, as in Compose
        self.warnings: dict[str, str] = {}
        self.total = 0
        self.line = 1

    def error(self, message: str, hint: str = HINT) -> InvalidSource:
        return InvalidSource(f"{self.source} line {self.line}: {message}", hint)

    def advance(self, i: int, end: int) -> int:
        """Move to ``end``, counting the lines passed."""
        self.line += self.s.count("\n", i, end)
        return end

    def read(self) -> dict[str, str]:
        s, i, n = self.s, 0, len(self.s)
        while True:
            i = self.advance(i, _end(_BLANK, s, i))
            if i >= n:
                return self.values
            if s[i] == "#":
                end = s.find("\n", i)
                i = n if end < 0 else end
                continue
            export = _EXPORT.match(s, i)
            if export:
                i = export.end()
            stop = _KEY_END.search(s, i)
            end = n if stop is None else stop.start()
            key = s[i:end].strip(" \t\r\f\v\xa0\x85")
            if not _KEY.fullmatch(key):
                bad = next((c for c in key if not _KEY.fullmatch(c)), "")
                what = f"unexpected character {shown(bad)} in variable name" if bad else "a line without a key"
                raise self.error(f"{what} {shown(s[i:end], 60)}")
            if stop is None or s[end] == "\n":  # a key alone: the environment's value, if any
                if key in self.environment:
                    self.values[key] = self.environment[key]
                i = end
                continue
            i = _end(_SPACES, s, end + 1)
            value, i = self.value(key, i)
            self.total += len(value)
            if self.total > MAX_DOTENV_CHARS:
                raise self.error(f"the values add up to more than {MAX_DOTENV_CHARS // 1024} KiB once "
                                 "interpolated", "use shorter values, or fewer of them")
            self.values[key] = value

    def value(self, key: str, i: int) -> tuple[str, int]:
        s = self.s
        quote = s[i : i + 1]
        if quote not in ("'", '"'):
            end = s.find("\n", i)
            end = len(s) if end < 0 else end
            raw = s[i:end].split(" #", 1)[0].rstrip()
            return self.expand(key, raw), end
        parts, j, start = [], i + 1, self.line
        while True:
            stop = _QUOTE_OR_ESCAPE[quote].search(s, j)
            if stop is None:
                self.line = start
                raise self.error(f"the quoted value of {key} is not closed", f"end it with {quote}")
            parts.append(s[j : stop.start()])
            j = stop.start()
            if s[j] == quote:
                break
            escaped = s[j + 1 : j + 2]
            parts.append(escaped if escaped == quote else "\\" + escaped)  # \" in "...", \' in '...'
            j += 2
        raw = "".join(parts)
        value = raw if quote == "'" else self.expand(key, _ESCAPES.sub(_unescape, raw))
        self.advance(i, j)
        return value, j + 1

    def expand(self, key: str, raw: str) -> str:
        try:
            value, missing = interpolate(raw, self.lookup, MAX_VALUE_CHARS)
        except InterpolationError as exc:
            raise self.error(f"{key}: {exc.message}", exc.hint) from None
        for name in missing:
            self.warnings.setdefault(name, f"{self.source} line {self.line}: {key}: the variable {name} is not set: "
                                           "it is replaced by an empty string")
        return value


def parse_dotenv(text: str, environment: Mapping[str, str], source: str = DOTENV) -> DotEnv:
    """The variables ``text`` sets (an environment's ``environment`` variables fill keys written
    alone, and are seen by interpolation before the file's own). Raises InvalidSource naming
    the line."""
    reader = _Reader(text, source, environment)
    values = reader.read()
    warnings = list(reader.warnings.values())
    if len(warnings) > MAX_WARNINGS:
        warnings[MAX_WARNINGS:] = [f"{source}: {len(warnings) - MAX_WARNINGS} more unset variables not shown"]
    return DotEnv(values, tuple(warnings))

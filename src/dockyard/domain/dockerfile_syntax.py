"""A Dockerfile's syntax: its instructions (continuations joined, comments left out) and the
``key=value`` pairs of a LABEL, quotes and escapes resolved as Docker does.

This reads pushed text, so it runs in time linear in its input: no regex that can backtrack over
a line (``label_pairs`` is a scanner that looks at each character once).
"""

from __future__ import annotations

import re

# Runs of characters the LABEL scanner copies as they are (used with ``match`` at a position).
_PLAIN = re.compile(r"[^\s\"'\\=]+")
_IN_DOUBLE_QUOTES = re.compile(r'[^"\\]+')
_SPACES = re.compile(r"\s+")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Dockerfile instructions with continuations joined, numbered by their first line."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not buf:
            if not line or line.startswith("#"):
                continue
            start = number
        elif line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        out.append((start, " ".join(buf)))
        buf = []
    if buf:
        out.append((start, " ".join(buf)))
    return out


def instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, KEYWORD, arguments) of every instruction."""
    out = []
    for number, line in _logical_lines(text):
        # Docker separates the keyword from its arguments by any whitespace, tabs included.
        words = line.split(None, 1)
        out.append((number, words[0].upper() if words else "", words[1] if len(words) > 1 else ""))
    return out


def _double_quoted(args: str, i: int, out: list[str]) -> int:
    """Copy the text of a double-quoted string whose opening quote is at ``i - 1``; return the
    index after its closing quote. A backslash escapes the next character."""
    n = len(args)
    while i < n and args[i] != '"':
        if args[i] == "\\":
            out.append(args[i + 1 : i + 2])
            i += 2
        else:
            run = _IN_DOUBLE_QUOTES.match(args, i)
            assert run is not None  # args[i] is neither '"' nor '\\'
            out.append(run.group())
            i = run.end()
    return i + 1


def label_pairs(args: str) -> dict[str, str]:
    """``key=value`` pairs of a LABEL instruction, quotes and escapes resolved as Docker does.

    A scanner that looks at each character once: words are split at whitespace outside quotes,
    and a word's first ``=`` outside quotes splits key from value."""
    pairs: dict[str, str] = {}
    i, n = 0, len(args)
    while i < n:
        space = _SPACES.match(args, i)
        if space:
            i = space.end()
            continue
        key: str | None = None
        parts: list[str] = []
        while i < n and not args[i].isspace():
            c = args[i]
            if c == "'":
                end = args.find("'", i + 1)
                end = n if end < 0 else end
                parts.append(args[i + 1 : end])
                i = end + 1
            elif c == '"':
                i = _double_quoted(args, i + 1, parts)
            elif c == "\\":
                parts.append(args[i + 1 : i + 2])
                i += 2
            elif c == "=":
                if key is None:
                    key, parts = "".join(parts), []
                else:
                    parts.append(c)
                i += 1
            else:
                run = _PLAIN.match(args, i)
                assert run is not None  # c is none of the characters handled above
                parts.append(run.group())
                i = run.end()
        if key:
            pairs[key] = "".join(parts)
    return pairs

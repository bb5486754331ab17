"""A command written as one string, split into words as a POSIX shell would (``shlex.split``),
in linear time: shlex itself takes quadratic time over a long word, and the string is pushed text.
"""

from __future__ import annotations

import re

_WORD_RUN = re.compile(r"[^ \t\r\n'\"\\]+")
_DOUBLE_RUN = re.compile(r'[^"\\]+')


def split_words(text: str) -> list[str]:
    """``shlex.split`` (POSIX rules, no comments) in linear time: shlex itself takes quadratic
    time over a long word. Raises ValueError on an unbalanced quote or a trailing backslash."""
    words: list[str] = []
    parts: list[str] = []
    in_word = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            if in_word:
                words.append("".join(parts))
                parts, in_word = [], False
            i += 1
            continue
        in_word = True
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ValueError("No closing quotation")
            parts.append(text[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise ValueError("No closing quotation")
                if text[i] == '"':
                    i += 1
                    break
                if text[i] == "\\":
                    if i + 1 >= n:
                        raise ValueError("No closing quotation")
                    nxt = text[i + 1]
                    parts.append(nxt if nxt in '"\\' else "\\" + nxt)
                    i += 2
                else:
                    run = _DOUBLE_RUN.match(text, i)
                    assert run is not None  # text[i] is neither '"' nor '\\'
                    parts.append(run.group())
                    i = run.end()
        elif c == "\\":
            if i + 1 >= n:
                raise ValueError("No escaped character")
            parts.append(text[i + 1])
            i += 2
        else:
            run = _WORD_RUN.match(text, i)
            assert run is not None  # c is none of the characters handled above
            parts.append(run.group())
            i = run.end()
    if in_word:
        words.append("".join(parts))
    return words

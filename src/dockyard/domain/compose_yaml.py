"""The compose file's YAML, loaded within bounds, and the errors that point into it.

The compose file is pushed text: ``load_compose`` reads at most MAX_COMPOSE_BYTES, and refuses,
before building anything, a document that expands (aliases counted each time they are used) to
more than MAX_YAML_NODES nodes or MAX_YAML_CHARS characters, nests deeper than MAX_YAML_DEPTH, or
holds a number longer than MAX_NUMBER_CHARS. Errors name a line (``compose file line 3: ...``) or,
once loaded, a key path (``compose file: services/web/ports: ...``, see ``at_path``). Other YAML
files dockyard reads (``dockyard.yml``) go through ``load_located`` with their own name and cap.

``load_located`` also returns the line of every key path (``KeyLines``), read from the YAML nodes
as they are composed, so that later checks (schema, variables) can name file, line and key path.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dockyard.domain.errors import InvalidSource, shown
from dockyard.domain.limits import MAX_COMPOSE_BYTES, too_large

# YAML bounds. Aliases count every time they are used, as the document they expand to.
MAX_YAML_NODES = 10_000
MAX_YAML_CHARS = 4 * MAX_COMPOSE_BYTES  # characters of all scalars, aliases expanded
MAX_YAML_DEPTH = 64
MAX_NUMBER_CHARS = 100


class KeyLines:
    """The lines of a loaded document's key paths: a tree shaped like the document. A mapping
    entry's line is its key's, a list item's its own. A value repeated by an alias shares one
    subtree, so the tree is as large as the file, not as what its aliases expand to."""

    __slots__ = ("children", "line")

    def __init__(self, line: int, children: dict[str | int, KeyLines]) -> None:
        self.line = line
        self.children = children

    def line_of(self, parts: Iterable[str | int]) -> int:
        """The line of the key path ``parts`` (``("services", "web", "ports", 0)``), or of its
        nearest ancestor the file spells out (a key brought in by a ``<<`` merge, say)."""
        node = self
        for part in parts:
            child = node.children.get(part)
            if child is None:
                break
            node = child
        return node.line


@dataclass(frozen=True)
class Located:
    """A loaded compose document, and the line of each of its key paths."""

    doc: Any
    lines: KeyLines


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _key_lines(root: Any) -> KeyLines:
    """The KeyLines of a composed node graph (already checked by ``_check_expansion``: no
    cycles, at most MAX_YAML_DEPTH deep). Each node is read once."""
    import yaml

    memo: dict[int, dict[str | int, KeyLines]] = {}

    def children(node: Any) -> dict[str | int, KeyLines]:
        known = memo.get(id(node))
        if known is not None:
            return known
        out: dict[str | int, KeyLines] = {}
        memo[id(node)] = out
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[i] = KeyLines(item.start_mark.line + 1, children(item))
        elif isinstance(node, yaml.MappingNode):
            merged: list[Any] = []
            for key, value in node.value:
                if key.tag == _MERGE_TAG:
                    merged.extend(value.value if isinstance(value, yaml.SequenceNode) else [value])
                elif isinstance(key, yaml.ScalarNode):
                    out[key.value] = KeyLines(key.start_mark.line + 1, children(value))
            for source in merged:  # as YAML merges: keys written out win, then the first merged
                for name, lines in children(source).items():
                    out.setdefault(name, lines)
        return out

    return KeyLines(root.start_mark.line + 1, children(root))


class KeyPathError(InvalidSource):
    """An error at a key path of a loaded compose file. Raised where the lines are not at hand;
    ``stack.compose_stack`` names the file and the line (``docker-compose.yml line 7: PATH: ...``)."""

    def __init__(self, path: str, message: str, hint: str = "") -> None:
        super().__init__(f"compose file: {path}: {message}", hint)
        self.path, self.detail = path, message

    @property
    def parts(self) -> tuple[str | int, ...]:
        return tuple(int(p) if p.isdigit() else p for p in self.path.split("/"))


def at_path(path: str, message: str, hint: str = "") -> InvalidSource:
    """An error at a key path of the loaded compose file (``services/web/ports/0``)."""
    return KeyPathError(path, message, hint)


def _at(node: Any, message: str, hint: str, source: str = "compose file") -> InvalidSource:
    mark = getattr(node, "start_mark", None)
    where = f" line {mark.line + 1}" if mark is not None else ""
    return InvalidSource(f"{source}{where}: {message}", hint)


def _check_expansion(root: Any, source: str = "compose file") -> None:
    """Refuse a document that expands (aliases used as often as they appear) to more than
    MAX_YAML_NODES nodes or MAX_YAML_CHARS characters, nests deeper than MAX_YAML_DEPTH, or
    contains itself. Each node of the composed graph is visited once."""
    import yaml

    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, characters), expanded
    open_nodes: set[int] = set()
    todo: list[tuple[Any, int, bool]] = [(root, 0, False)]
    while todo:
        node, depth, finished = todo.pop()
        key = id(node)
        children: list[Any]
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if finished:
            open_nodes.discard(key)
            count = 1 + sum(sizes[id(c)][0] for c in children)
            chars = (len(node.value) if isinstance(node, yaml.ScalarNode) else 0) + sum(
                sizes[id(c)][1] for c in children
            )
            if count > MAX_YAML_NODES or chars > MAX_YAML_CHARS:
                raise _at(
                    node,
                    f"this value expands to more than {MAX_YAML_NODES} YAML nodes or {MAX_YAML_CHARS // 1024} KiB "
                    "of text (an alias counts each time it is used)",
                    "write the file out without anchors and aliases that repeat large values",
                    source,
                )
            sizes[key] = (count, chars)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _at(node, "an alias refers to the value that contains it", "remove the recursive alias", source)
        if depth > MAX_YAML_DEPTH:
            raise _at(node, f"values are nested deeper than {MAX_YAML_DEPTH} levels", "flatten the file", source)
        open_nodes.add(key)
        todo.append((node, depth, True))
        todo.extend((c, depth + 1, False) for c in children if id(c) not in sizes)


@functools.cache
def _loader() -> type[Any]:
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class BoundedLoader(base):  # type: ignore[misc]
        """yaml's safe loader (libyaml's when installed) that refuses, before building anything,
        a document that expands beyond the bounds of ``_check_expansion``, and numbers longer
        than MAX_NUMBER_CHARS (a long sexagesimal ``1:2:3:...`` takes quadratic time)."""

        key_lines = KeyLines(1, {})
        source = "compose file"  # the file's name in errors

        def get_single_node(self) -> Any:
            node = super().get_single_node()
            if node is not None:
                _check_expansion(node, self.source)
                self.key_lines = _key_lines(node)
            return node

        def construct_number(self, node: Any) -> Any:
            if len(node.value) > MAX_NUMBER_CHARS:
                raise _at(node, f"the number {shown(node.value, 40)} is too long", "quote it to make it a string",
                          self.source)
            if node.tag.endswith(":int"):
                return self.construct_yaml_int(node)
            return self.construct_yaml_float(node)

        def construct_timestamp(self, node: Any) -> Any:
            try:
                return self.construct_yaml_timestamp(node)
            except (ValueError, OverflowError):
                raise _at(node, f"{shown(node.value, 40)} is not a date", "quote it to make it a string",
                          self.source) from None

    BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_number)
    BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_number)
    BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", BoundedLoader.construct_timestamp)
    return BoundedLoader


def load_compose(text: str) -> Any:
    """The compose file's YAML, within bounds; any failure is an InvalidSource naming a line."""
    return load_located(text).doc


def load_located(text: str, source: str = "compose file", limit: int = MAX_COMPOSE_BYTES) -> Located:
    """``load_compose``, with the line of each key path; errors name the file ``source``, and a
    text over ``limit`` characters is refused before it is parsed."""
    import yaml  # only pushes with a compose file pay for it

    if len(text) > limit:
        raise too_large(source, len(text.encode(errors="replace")), limit)
    try:
        loader = _loader()(text)
        loader.source = source
        try:
            doc = loader.get_single_data()
            return Located(doc, loader.key_lines)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "line 1"
        problem = exc.problem or exc.context or "syntax error"
        raise InvalidSource(f"{source} is not valid YAML: {where}: {problem}", "fix the YAML syntax") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise InvalidSource(
            f"{source} is not valid YAML: line {line}: character #x{exc.character:04x} is not allowed"
            if isinstance(exc.character, int) else f"{source} is not valid YAML: line {line}: {exc.reason}",
            "fix the YAML syntax; remove control characters",
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidSource(f"{source} is not valid YAML: line 1: {exc}", "fix the YAML syntax") from None
    except RecursionError:
        raise InvalidSource(
            f"{source} is not valid YAML: line 1: values are nested deeper than {MAX_YAML_DEPTH} levels",
            "flatten the file",
        ) from None

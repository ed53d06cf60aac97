"""A typed, dotted-path reader over YAML data that collects every problem.

Each accessor records the key it was asked for (with list indices as ``[]``) in
``Context.known``, so a test can check every key the code reads is documented.
Wrong or missing values become :class:`ConfigIssue`s; the accessor then returns the
default so reading can go on and report everything at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

from warmup.core.duration import parse_duration
from warmup.core.errors import ConfigIssue

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "Context",
    "Node",
    "parse_yaml",
]

T = TypeVar("T")


@dataclass(slots=True)
class Context:
    """Where we are reading from and what went wrong so far."""

    file: str
    lines: dict[str, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    known: set[str] = field(default_factory=set)
    # The text could not be parsed at all (parse_yaml said why).
    unreadable: bool = False
    # One line per deprecated key found: warnings, not issues (the file still loads).
    deprecations: list[str] = field(default_factory=list)

    def where(self, path: str) -> str:
        line = self.lines.get(path)
        return f"{self.file}:{line}" if line else self.file

    def issue(self, path: str, message: str) -> None:
        self.issues.append(
            ConfigIssue(file=self.where(path), path=path, message=message)
        )

    def deprecated(self, old: str, new: str) -> None:
        """``old`` (a dotted path) was given where ``new`` is now the name."""
        self.deprecations.append(
            f"{self.where(old)}: warning: {old} is deprecated and will be removed "
            f"in the next release; use {new}"
        )


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _pattern(path: str) -> str:
    """``ips[3].address`` -> ``ips[].address``."""
    out, skipping = [], False
    for char in path:
        if char == "[":
            skipping = True
            out.append("[]")
        elif char == "]":
            skipping = False
        elif not skipping:
            out.append(char)
    return "".join(out)


#: A config or schedule file is a few KB; these bound what a hostile one costs.
MAX_YAML_BYTES = 256 * 1024
MAX_YAML_DEPTH = 64  # nesting, aliases expanded
MAX_YAML_NODES = 100_000  # nodes, aliases expanded ("billion laughs")


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last,
    and documents nested too deeply or expanding (through aliases) too far.

    While composing, each open collection keeps [nodes, height] of what it holds
    so far; an alias adds the size and height its anchor's node ended with."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._open: list[list[int]] = [[0, 0]]
        self._sizes: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise _problem("found a recursive alias", mark)
            self._add(*size, mark=mark)
            return node
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if len(self._open) > MAX_YAML_DEPTH:
            raise _problem(f"nested deeper than {MAX_YAML_DEPTH} levels", mark)
        self._open.append([0, 0])
        node = super().compose_node(parent, index)
        nodes, height = self._open.pop()
        self._sizes[id(node)] = (nodes + 1, height + 1)
        self._add(nodes + 1, height + 1, mark=mark)
        return node

    def _add(self, nodes: int, height: int, *, mark: Any) -> None:
        current = self._open[-1]
        current[0] += nodes
        current[1] = max(current[1], height)
        if current[0] > MAX_YAML_NODES:
            raise _problem(
                f"more than {MAX_YAML_NODES:,} values once aliases are expanded", mark
            )
        if len(self._open) - 1 + current[1] > MAX_YAML_DEPTH:
            raise _problem(
                f"nested deeper than {MAX_YAML_DEPTH} levels once aliases are expanded",
                mark,
            )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _problem(text: str, mark: Any) -> yaml.composer.ComposerError:
    return yaml.composer.ComposerError(None, None, text, mark)


def _line_map(node: yaml.Node | None, path: str, out: dict[str, int]) -> None:
    if node is None:
        return
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = _join(path, str(key_node.value))
            out[child] = key_node.start_mark.line + 1
            _line_map(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, _join(path, index), out)


def parse_yaml(text: str, ctx: Context) -> Any:
    """Parse YAML text; a syntax error, or a document over the size, nesting or
    alias-expansion limits, becomes an issue and ``None`` is returned."""
    if len(text) > MAX_YAML_BYTES:
        ctx.unreadable = True
        ctx.issues.append(
            ConfigIssue(
                file=ctx.file,
                path="",
                message=f"larger than {MAX_YAML_BYTES // 1024} KiB; not a config file",
            )
        )
        return None
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        _line_map(node, "", ctx.lines)
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{ctx.file}:{mark.line + 1}" if mark is not None else ctx.file
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}: {problem}" if context else str(problem)
        ctx.unreadable = True
        ctx.issues.append(
            ConfigIssue(file=where, path="", message=f"bad YAML: {detail}")
        )
        return None
    finally:
        loader.dispose()


_MISSING = object()


class Node:
    """A mapping in the YAML tree, at a dotted path."""

    def __init__(self, ctx: Context, path: str, data: Any) -> None:
        self.ctx = ctx
        self.path = path
        self.used: set[str] = set()
        if data is None:
            data = {}
        if not isinstance(data, dict):
            ctx.issue(path, f"expected a mapping, got {data!r}")
            data = {}
        self.data: dict[Any, Any] = data

    # -- generic access -------------------------------------------------------

    def _raw(self, key: str) -> Any:
        self.used.add(key)
        self.ctx.known.add(_pattern(_join(self.path, key)))
        return self.data.get(key, _MISSING)

    def has(self, key: str) -> bool:
        return key in self.data

    def alias(self, old: str, new: str) -> None:
        """``old`` is the deprecated name of ``new`` (kept for one release): its value
        is read as ``new``'s, with one warning naming both; giving both is an issue.
        Call it before reading ``new``."""
        if old not in self.data:
            return
        self.used.add(old)
        old_path, new_path = _join(self.path, old), _join(self.path, new)
        if new in self.data:
            self.ctx.issue(old_path, f"deprecated name of {new_path}, also given here")
            return
        self.ctx.deprecated(old_path, new_path)
        self.data[new] = self.data[old]
        for path, line in list(self.ctx.lines.items()):
            if path == old_path or path.startswith((f"{old_path}.", f"{old_path}[")):
                self.ctx.lines.setdefault(new_path + path[len(old_path) :], line)

    def issue(self, key: str, message: str) -> None:
        self.ctx.issue(_join(self.path, key), message)

    def value(
        self,
        key: str,
        default: T,
        convert: Callable[[Any], T],
        *,
        required: bool = False,
    ) -> T:
        raw = self._raw(key)
        if raw is _MISSING or raw is None:
            if required:
                self.issue(key, "is required")
            return default
        try:
            return convert(raw)
        except (TypeError, ValueError) as exc:
            self.issue(key, str(exc))
            return default

    def retired_fraction(self, key: str, new: str) -> float | None:
        """A deprecated key whose value now feeds ``new`` (a dotted path) by a rule
        of the caller's: its fraction, or None when absent or wrong (an issue)."""
        if key not in self.data:
            return None
        self.used.add(key)
        self.ctx.deprecated(_join(self.path, key), new)
        try:
            result = _as_float(self.data[key])
        except ValueError as exc:
            self.issue(key, str(exc))
            return None
        if not 0.0 <= result <= 1.0:
            self.issue(key, f"must be between 0 and 1, got {result!r}")
            return None
        return result

    # -- typed accessors --------------------------------------------------------

    def child(self, key: str) -> Node:
        raw = self._raw(key)
        return Node(self.ctx, _join(self.path, key), None if raw is _MISSING else raw)

    def children(self, key: str, *, required: bool = False) -> Iterator[Node]:
        for path, item in self.entries(key, required=required):
            yield Node(self.ctx, path, item)

    def items(self, key: str) -> Iterator[tuple[str, Any]]:
        """Free-form mapping entries (name -> value) under ``key``."""
        raw = self._raw(key)
        if raw is _MISSING or raw is None:
            return
        if not isinstance(raw, dict):
            self.issue(key, f"expected a mapping, got {raw!r}")
            return
        for name, item in raw.items():
            yield str(name), item

    def entries(self, key: str, *, required: bool) -> Iterator[tuple[str, Any]]:
        raw = self._raw(key)
        if raw is _MISSING or raw is None:
            if required:
                self.issue(key, "is required")
            return
        if not isinstance(raw, list):
            self.issue(key, f"expected a list, got {raw!r}")
            return
        for index, item in enumerate(raw):
            yield _join(_join(self.path, key), index), item

    def string(self, key: str, default: str = "", *, required: bool = False) -> str:
        return self.value(key, default, _as_str, required=required)

    def optional_string(self, key: str) -> str | None:
        return self.value(key, None, _as_str)

    def integer(self, key: str, default: int, *, minimum: int | None = None) -> int:
        result = self.value(key, default, _as_int)
        if minimum is not None and result < minimum:
            self.issue(key, f"must be >= {minimum}, got {result!r}")
            return default
        return result

    def fraction(self, key: str, default: float) -> float:
        result = self.value(key, default, _as_float)
        if not 0.0 <= result <= 1.0:
            self.issue(key, f"must be between 0 and 1, got {result!r}")
            return default
        return result

    def number(self, key: str, default: float, *, positive: bool = True) -> float:
        result = self.value(key, default, _as_float)
        if positive and result <= 0:
            self.issue(key, f"must be positive, got {result!r}")
            return default
        return result

    def boolean(self, key: str, default: bool) -> bool:
        return self.value(key, default, _as_bool)

    def duration(self, key: str, default: Any) -> Any:
        return self.value(key, default, parse_duration)

    def strings(self, key: str) -> tuple[str, ...]:
        out = []
        for path, item in self.entries(key, required=False):
            if isinstance(item, str) and item.strip():
                out.append(item.strip())
            else:
                self.ctx.issue(path, f"expected a non-empty string, got {item!r}")
        return tuple(out)

    def finish(self) -> None:
        """Report every key present here that no accessor asked for."""
        allowed = sorted(self.used)
        for key in self.data:
            if key in self.used:
                continue
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            choices = ", ".join(allowed) if allowed else "none"
            self.issue(str(key), f"unknown key{suggestion}; allowed here: {choices}")


def _as_str(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"expected a string, got {raw!r}")
    text = str(raw).strip()
    if not text:
        raise ValueError(f"must not be empty, got {raw!r}")
    return text


def _as_int(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"expected a whole number, got {raw!r}")
    return raw


def _as_float(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"expected a number, got {raw!r}")
    return float(raw)


def _as_bool(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"expected true or false, got {raw!r}")
    return raw

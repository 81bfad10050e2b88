"""YAML text -> Python values, within limits on size, nodes and depth (billion laughs, deep nesting).

PyYAML builds an aliased node once and shares it, so a 478-byte document of nested aliases
("billion laughs") loads quickly as a small graph that expands to ~10^9 values the moment
anything walks or prints it. :class:`BoundedLoader` is :class:`yaml.SafeLoader` with a
composer that counts every node *as expanded* (an alias counts the whole node it names) and
tracks the expanded depth while it composes, so such a document is refused after a few
hundred nodes, in milliseconds, without ever being expanded; a recursive alias is refused too.
Nesting deeper than the limit is refused before the (recursive) composer gets near Python's
recursion limit.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import Node

from ._limits import env_limit

__all__ = ["YamlLimitError", "BoundedLoader", "bounded_load", "max_config_bytes",
           "MAX_CONFIG_BYTES", "MAX_CONFIG_NODES", "MAX_CONFIG_DEPTH"]

#: Largest configuration text read (bytes); ``$SEMCATHODE_MAX_CONFIG_BYTES`` overrides it.
MAX_CONFIG_BYTES = 1 << 20
#: Most YAML nodes in one document, aliases counted expanded; ``$SEMCATHODE_MAX_CONFIG_NODES``.
MAX_CONFIG_NODES = 100_000
#: Deepest nesting of one document, aliases counted expanded; ``$SEMCATHODE_MAX_CONFIG_DEPTH``.
MAX_CONFIG_DEPTH = 64

_BYTES_ENV, _NODES_ENV, _DEPTH_ENV = ("SEMCATHODE_MAX_CONFIG_BYTES", "SEMCATHODE_MAX_CONFIG_NODES",
                                      "SEMCATHODE_MAX_CONFIG_DEPTH")


class YamlLimitError(Exception):
    """A YAML document over a limit (or one the parser cannot nest); ``problem`` says which, with where."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        self.problem = problem + where
        super().__init__(self.problem)


def max_config_bytes() -> int:
    """The configuration-size limit in force: ``$SEMCATHODE_MAX_CONFIG_BYTES``, else :data:`MAX_CONFIG_BYTES`."""
    return int(env_limit(_BYTES_ENV, MAX_CONFIG_BYTES))


class BoundedLoader(yaml.SafeLoader):
    """:class:`yaml.SafeLoader` that refuses documents over ``max_nodes`` nodes or ``max_depth`` levels.

    Both are counted with aliases expanded, while composing (before any Python value is built).

    Parameters
    ----------
    stream : str
        The YAML text.
    max_nodes, max_depth : int
        The limits (0 = none).
    """

    def __init__(self, stream: str, max_nodes: int = MAX_CONFIG_NODES, max_depth: int = MAX_CONFIG_DEPTH) -> None:
        super().__init__(stream)
        self._max_nodes, self._max_depth = int(max_nodes), int(max_depth)
        self._nodes = 0  # nodes composed so far, aliases expanded
        self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded height)
        self._open: list[int] = []  # per node being composed: the largest height of its children so far

    def _add(self, nodes: int, height: int, mark: Any) -> None:
        self._nodes += nodes
        if self._max_nodes and self._nodes > self._max_nodes:
            raise YamlLimitError(f"the document expands to more than {self._max_nodes:,} YAML nodes (aliases "
                                 f"counted where they are used); limit ${_NODES_ENV}", mark)
        depth = len(self._open) + height
        if self._max_depth and depth > self._max_depth:
            raise YamlLimitError(f"the document nests more than {self._max_depth} levels deep (aliases counted "
                                 f"where they are used); limit ${_DEPTH_ENV}", mark)

    def _child_done(self, height: int) -> None:
        if self._open:
            self._open[-1] = max(self._open[-1], height)

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # noqa: D102 - PyYAML's hook
        event = self.peek_event()
        if self.check_event(yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                if id(target) not in self._measured:
                    raise YamlLimitError(f"alias *{event.anchor} is used inside the node it names (a recursive "
                                         "structure)", event.start_mark)
                nodes, height = self._measured[id(target)]
                self._add(nodes, height, event.start_mark)
                self._child_done(height)
            return super().compose_node(parent, index)
        before = self._nodes
        self._add(1, 1, event.start_mark)
        self._open.append(0)
        node = super().compose_node(parent, index)
        height = 1 + self._open.pop()
        self._measured[id(node)] = (self._nodes - before, height)
        self._child_done(height)
        return node


def _limits() -> tuple[int, int]:
    return int(env_limit(_NODES_ENV, MAX_CONFIG_NODES)), int(env_limit(_DEPTH_ENV, MAX_CONFIG_DEPTH))


def bounded_load(text: str) -> Any:
    """``yaml.safe_load`` within the node and depth limits.

    Parameters
    ----------
    text : str
        One YAML document.

    Returns
    -------
    object
        The document's value (aliased parts shared, as PyYAML builds them).

    Raises
    ------
    YamlLimitError
        Over :data:`MAX_CONFIG_NODES` nodes or :data:`MAX_CONFIG_DEPTH` levels (or their
        environment variables), or nested too deeply for the parser.
    yaml.YAMLError
        Not valid YAML.
    ValueError
        A scalar PyYAML cannot build (a date such as ``2020-13-45``, an integer of more
        than 4300 digits).

    Examples
    --------
    >>> bounded_load("a: &x [1, 2]\\nb: *x")
    {'a': [1, 2], 'b': [1, 2]}
    >>> try:
    ...     bounded_load("[" * 100 + "]" * 100)
    ... except YamlLimitError as exc:
    ...     print(exc.problem.split(";")[0])
    the document nests more than 64 levels deep (aliases counted where they are used)
    """
    max_nodes, max_depth = _limits()
    loader = BoundedLoader(text, max_nodes, max_depth)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise YamlLimitError(f"the document is nested too deeply to parse; limit ${_DEPTH_ENV}") from None
    finally:
        loader.dispose()

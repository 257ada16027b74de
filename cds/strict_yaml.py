"""YAML as the service reads its own configuration (rules.yaml, the trusted-clients file): PyYAML's
SafeLoader with bounded nesting, no aliases and no repeated keys.

A configuration file is written by hand and read at start: an alias, a repeated key or a
thousand-deep nesting there is a mistake or an attack, never something meant. A repeated key is
the dangerous one: YAML keeps the last silently, so a second `jwks_url:` in a trusted client, or a
second `operator:` block in rules.yaml, would replace the first without a word.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

MAX_YAML_DEPTH = 16
"""rules.yaml nests three levels (a section's list), a trusted-clients file six (an inline JWKS
key's `x5c`); deeper input would only exhaust the stack."""


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with bounded nesting, no aliases and no repeated keys: a 100k-deep `[[[…` was a
    RecursionError traceback, and aliases of aliases expand to billions of values."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise ComposerError(None, None, "aliases (*name) are not allowed", self._mark())
        if self._depth >= MAX_YAML_DEPTH:
            deep = f"nested more than {MAX_YAML_DEPTH} levels deep"
            raise ComposerError(None, None, deep, self._mark())
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        # YAML keeps the last of two equal keys: a site's second `operator:` block or a repeated
        # flag would silently replace the first.
        lines: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # SafeConstructor refuses it below
            if key in lines:
                problem = f"duplicate key {key!r} (first at line {lines[key]})"
                raise ConstructorError(None, None, problem, key_node.start_mark)
            lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def _mark(self) -> yaml.Mark | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        return event.start_mark if isinstance(event.start_mark, yaml.Mark) else None

"""Changing values in a YAML file's text without rewriting the file.

A user's ``mirix.yaml`` carries comments, order and quoting that ``yaml.safe_dump``
would lose.  Export's redaction and a config restore's merge therefore replace
only the source span of each scalar they change, and keep every other byte.
The caller checks the result parses to the document it meant (``edited_or_dumped``)
and falls back to a rewrite only when in-place editing cannot express the change
(a key added or removed, an anchor shared by two places).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import yaml

Path_ = tuple  # keys and list indices from the root


def scalars(text: str) -> Iterator[tuple[Path_, yaml.ScalarNode]]:
    """Every scalar value in ``text`` that sits under a mapping key or in a list, with its path."""
    def walk(node: yaml.Node, path: Path_) -> Iterator[tuple[Path_, yaml.ScalarNode]]:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                yield from walk(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                yield from walk(item, path + (i,))
        elif isinstance(node, yaml.ScalarNode) and path:
            yield path, node

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        yield from walk(root, ())


def leaves(doc: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every non-container value of a parsed document, with its path (as ``scalars`` names it)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from leaves(value, path + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from leaves(value, path + (i,))
    elif path:
        yield path, doc


def flow_scalar(value: Any) -> str:
    """``value`` as a one-line YAML scalar (quoted when it must be)."""
    return yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=1 << 20).strip()[1:-1]


def replace_scalars(text: str, new_value: Callable[[Path_, yaml.ScalarNode], Any]) -> str:
    """``text`` with each scalar for which ``new_value`` returns something other than ``KEEP``
    replaced, in place, by that value."""
    spans: dict[int, tuple[int, str]] = {}
    for path, node in scalars(text):
        value = new_value(path, node)
        if value is not KEEP:
            spans[node.start_mark.index] = (node.end_mark.index, flow_scalar(value))
    for start in sorted(spans, reverse=True):
        end, literal = spans[start]
        text = text[:start] + literal + text[end:]
    return text


KEEP = object()


def edited_or_dumped(original: str, edit: Callable[[Path_, yaml.ScalarNode], Any], wanted: Any) -> str:
    """The in-place edit of ``original`` if it parses to ``wanted``, else ``wanted`` dumped afresh."""
    try:
        edited = replace_scalars(original, edit)
        if yaml.safe_load(edited) == wanted:
            return edited
    except yaml.YAMLError:
        pass
    return yaml.safe_dump(wanted, sort_keys=False, allow_unicode=True)

"""Editing YAML text in place: only the changed values' bytes move; what cannot be expressed in
place falls back to a rewrite that still parses to the wanted document."""
from __future__ import annotations

import yaml

from snapstore.yaml_edit import KEEP, edited_or_dumped, flow_scalar, leaves


def test_changed_values_only_and_comments_kept():
    text = "# notes\na: 1   # one\nb:\n  - x\n  - {c: 'y'}\n"
    wanted = {"a": 2, "b": ["x", {"c": "z: w"}]}
    changes = {("a",): 2, ("b", 1, "c"): "z: w"}
    out = edited_or_dumped(text, lambda path, node: changes.get(path, KEEP), wanted)
    assert out == "# notes\na: 2   # one\nb:\n  - x\n  - {c: 'z: w'}\n"
    assert yaml.safe_load(out) == wanted


def test_a_change_in_place_cannot_express_is_rewritten():
    text = "a: 1\n"
    wanted = {"a": 1, "added": True}
    out = edited_or_dumped(text, lambda path, node: KEEP, wanted)
    assert yaml.safe_load(out) == wanted


def test_leaves_and_flow_scalars():
    assert dict(leaves({"a": {"b": [1, None]}})) == {("a", "b", 0): 1, ("a", "b", 1): None}
    for value in ("***REDACTED***", "a: b", "123", "plain", 7, True, None):
        assert yaml.safe_load(f"k: {flow_scalar(value)}") == {"k": value}

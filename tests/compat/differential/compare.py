"""Compares two normalized traces field by field and explains the first difference.

Rule: traces are compared in the order things happened (setup, each step, teardown, final
tree), and only the first differing part is reported, with every differing field named by
its location (`outcome[1].mzxid`), because later parts usually differ as a consequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.compat.differential.model import Scenario

MISSING = "<missing>"


@dataclass(frozen=True)
class Difference:
    part: str  # "setup", "step 3", "teardown" or "final tree"
    step_index: int | None  # 0-based index into the scenario's steps, if a step
    fields: tuple[str, ...]  # "location: left != right"
    left: Any
    right: Any


def field_differences(left: Any, right: Any, location: str = "") -> list[str]:
    """Every leaf where the two values differ, as `location: left != right`."""
    if isinstance(left, dict) and isinstance(right, dict):
        found: list[str] = []
        for key in list(left) + [key for key in right if key not in left]:
            found += field_differences(
                left.get(key, MISSING), right.get(key, MISSING), f"{location}.{key}"
            )
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        found = []
        for index, (left_item, right_item) in enumerate(zip(left, right, strict=False)):
            found += field_differences(left_item, right_item, f"{location}[{index}]")
        return found
    if left == right:
        return []
    return [f"{location.lstrip('.') or '(value)'}: {left!r} != {right!r}"]


def _part(part: str, step_index: int | None, left: Any, right: Any) -> Difference | None:
    fields = field_differences(left, right)
    if not fields:
        return None
    return Difference(part, step_index, tuple(fields), left, right)


def first_difference(left: dict[str, Any], right: dict[str, Any]) -> Difference | None:
    """The earliest part of two normalized traces that differs, or None if they agree."""
    found = _part("setup", None, left["setup"], right["setup"])
    if found:
        return found
    left_steps, right_steps = left["steps"], right["steps"]
    for index in range(max(len(left_steps), len(right_steps))):
        left_step = left_steps[index] if index < len(left_steps) else MISSING
        right_step = right_steps[index] if index < len(right_steps) else MISSING
        found = _part(f"step {index + 1}", index, left_step, right_step)
        if found:
            return found
    return _part("teardown", None, left["teardown"], right["teardown"]) or _part(
        "final tree", None, left["final_tree"], right["final_tree"]
    )


def report(scenario: Scenario, names: tuple[str, str], difference: Difference) -> str:
    """The readable failure: the steps (first difference marked) and each differing field."""
    left_name, right_name = names
    lines = [
        f"{left_name} and {right_name} differ at {difference.part}:",
        scenario.render(marked_step=difference.step_index),
        f"fields ({left_name} != {right_name}):",
        *(f"  {line}" for line in difference.fields),
        f"{left_name}: {difference.left!r}",
        f"{right_name}: {difference.right!r}",
    ]
    return "\n".join(lines)

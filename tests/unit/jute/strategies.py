"""Hypothesis strategies derived from a record's `_jute_fields`, and discovery of every record.

Rule: nothing here is written per record. Strategies come from the field kinds, and the record
list comes from walking the jute package, so a record added later is covered without edits.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from hypothesis import strategies as st

import jute
from jute.primitives import Fixed, Trailing, Variable, Vector

JUTE_INT_RANGES: dict[str, tuple[int, int]] = {
    "byte": (-(2**7), 2**7 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
VECTOR_ITEMS_MAX = 4

# Every code point, lone surrogates included: Java strings may carry them, and the codec
# round-trips them with surrogatepass (PROTOCOL.md §1.1).
_any_character = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
_text = st.one_of(st.none(), st.just(""), st.text(_any_character, max_size=12))
_buffer = st.one_of(st.none(), st.just(b""), st.binary(max_size=24))


def all_record_classes() -> list[type]:
    """Every @record class defined in a jute.* module, in a stable order."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(jute.__path__):
        module = importlib.import_module(f"jute.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and hasattr(value, "_jute_fields")
                and value.__module__ == module.__name__
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


def kind_strategy(kind: Any) -> st.SearchStrategy[Any]:
    """Values of one field kind, covering the edges the wire distinguishes (null vs empty)."""
    if isinstance(kind, Fixed):
        if kind.name == "boolean":
            return st.booleans()
        low, high = JUTE_INT_RANGES[kind.name]
        return st.integers(low, high)
    if isinstance(kind, Variable):
        return _text if kind.is_text else _buffer
    if isinstance(kind, Vector):
        items = st.lists(kind_strategy(kind.element), min_size=1, max_size=VECTOR_ITEMS_MAX)
        return st.one_of(st.none(), st.just([]), items)
    if isinstance(kind, Trailing):
        return st.one_of(st.none(), kind_strategy(kind.kind))
    if hasattr(kind, "_jute_fields"):
        return record_strategy(kind)
    raise TypeError(f"no strategy for jute kind {kind!r}")


def record_strategy(cls: Any) -> st.SearchStrategy[Any]:
    return st.builds(cls, *(kind_strategy(kind) for _, kind in cls._jute_fields))

"""java.util.Properties text and Java's number rules, as zoo.cfg and myid are read.

Pure: text in, values out; a bad value raises ConfigError with its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyzk.config.errors import ConfigError

# ---------------------------------------------------------------------------------------------
# java.util.Properties


@dataclass(frozen=True, slots=True)
class Property:
    """One logical `key=value` line; `value` is as Properties.load gives it (not trimmed)."""

    key: str
    value: str
    line: int


_PROPERTIES_WHITESPACE = " \t\f"
_NATURAL_LINE_END = re.compile(r"\r\n|\r|\n")
_ESCAPED_CONTROL_CHARS = {"t": "\t", "r": "\r", "n": "\n", "f": "\f"}


def _ends_with_odd_backslashes(line: str) -> bool:
    run = len(line) - len(line.rstrip("\\"))
    return run % 2 == 1


def _unescape(text: str, line_number: int) -> str:
    """Properties.loadConvert: `\\uXXXX`, `\\t \\r \\n \\f`, and `\\c` -> `c`."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        i += 1
        if char != "\\" or i == len(text):
            out.append(char)
            continue
        char = text[i]
        i += 1
        if char == "u":
            digits = text[i : i + 4]
            if len(digits) != 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise ConfigError("", line_number, text, "Malformed \\uxxxx encoding.")
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append(_ESCAPED_CONTROL_CHARS.get(char, char))
    return "".join(out)


def _split_key_value(logical_line: str) -> tuple[str, str]:
    """The key ends at the first unescaped `=`, `:` or whitespace (Properties.load)."""
    key_end = len(logical_line)
    value_start = len(logical_line)
    has_separator = False
    preceding_backslash = False
    for i, char in enumerate(logical_line):
        if not preceding_backslash and char in "=:":
            key_end, value_start, has_separator = i, i + 1, True
            break
        if not preceding_backslash and char in _PROPERTIES_WHITESPACE:
            key_end, value_start = i, i + 1
            break
        preceding_backslash = (not preceding_backslash) if char == "\\" else False
    while value_start < len(logical_line):
        char = logical_line[value_start]
        if char in _PROPERTIES_WHITESPACE:
            value_start += 1
        elif not has_separator and char in "=:":
            has_separator = True
            value_start += 1
        else:
            break
    return logical_line[:key_end], logical_line[value_start:]


def parse_properties(text: str, source: str = "") -> dict[str, Property]:
    """Parse as java.util.Properties.load does; a repeated key keeps its last line."""
    properties: dict[str, Property] = {}
    natural_lines = _NATURAL_LINE_END.split(text)
    index = 0
    while index < len(natural_lines):
        first_line_number = index + 1
        line = natural_lines[index].lstrip(_PROPERTIES_WHITESPACE)
        index += 1
        if not line or line[0] in "#!":
            continue  # a comment line never continues, even if it ends with a backslash
        parts: list[str] = []
        while _ends_with_odd_backslashes(line) and index < len(natural_lines):
            parts.append(line[:-1])
            line = natural_lines[index].lstrip(_PROPERTIES_WHITESPACE)
            index += 1
        if _ends_with_odd_backslashes(line):
            line = line[:-1]  # a continuation at end of file just ends
        parts.append(line)
        raw_key, raw_value = _split_key_value("".join(parts))
        try:
            key = _unescape(raw_key, first_line_number)
            value = _unescape(raw_value, first_line_number)
        except ConfigError as error:
            raise ConfigError(source, first_line_number, raw_key, error.reason) from None
        properties.pop(key, None)  # re-insert so the order is that of the last occurrence
        properties[key] = Property(key, value, first_line_number)
    return properties


# ---------------------------------------------------------------------------------------------
# Java number and boolean parsing

_JAVA_INT_MIN, _JAVA_INT_MAX = -(2**31), 2**31 - 1
_JAVA_LONG_MIN, _JAVA_LONG_MAX = -(2**63), 2**63 - 1
_DECIMAL = re.compile(r"[+-]?[0-9]+")


def java_trim(text: str) -> str:
    """String.trim(): strips every char <= U+0020, not Unicode whitespace."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def parse_java_int(text: str, *, bits: int = 32) -> int:
    """Integer.parseInt / Long.parseLong: optional sign, ASCII digits, in range; else ValueError."""
    low, high = (_JAVA_INT_MIN, _JAVA_INT_MAX) if bits == 32 else (_JAVA_LONG_MIN, _JAVA_LONG_MAX)
    if not _DECIMAL.fullmatch(text):
        raise ValueError(text)
    number = int(text)
    if not low <= number <= high:
        raise ValueError(text)
    return number


def decode_java_int(text: str, *, bits: int = 32) -> int:
    """Integer.decode (used by Integer.getInteger): sign, then 0x/0X/# hex, 0 octal, decimal."""
    low, high = (_JAVA_INT_MIN, _JAVA_INT_MAX) if bits == 32 else (_JAVA_LONG_MIN, _JAVA_LONG_MAX)
    match = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F]+|#[0-9a-fA-F]+|0[0-7]+|[0-9]+)", text)
    if match is None:
        raise ValueError(text)
    sign, digits = match.groups()
    if digits[:2] in ("0x", "0X"):
        number = int(digits, 0)
    elif digits.startswith("#"):
        number = int(digits[1:], 16)
    elif len(digits) > 1 and digits.startswith("0"):
        number = int(digits, 8)
    else:
        number = int(digits)
    number = -number if sign == "-" else number
    if not low <= number <= high:
        raise ValueError(text)
    return number

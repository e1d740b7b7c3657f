"""Znode path rules (ZooKeeper's PathUtils.validatePath) and path arithmetic.

Rule 1: a path is valid exactly when PathUtils.validatePath accepts it, and a rejection
carries the same message text, because that text reaches clients in logs and tests.
Rule 2: paths are Python str, but ZooKeeper checks Java chars (UTF-16 code units); a
character outside the BMP is checked as its two surrogates, which fall in the forbidden
U+D800-U+F8FF range, so such a path is invalid at the index of its high surrogate.
"""

from __future__ import annotations


class BadPath(ValueError):
    """An invalid znode path; str(exc) is PathUtils' IllegalArgumentException message."""


def _is_forbidden_char(code: int) -> bool:
    return (
        0x0001 <= code <= 0x001F
        or 0x007F <= code <= 0x009F
        or 0xD800 <= code <= 0xF8FF
        or 0xFFF0 <= code <= 0xFFFF
    )


def _utf16_units(path: str) -> list[int]:
    """The Java chars of path: supplementary characters become surrogate pairs."""
    units: list[int] = []
    for char in path:
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            units.append(0xD800 + (code >> 10))
            units.append(0xDC00 + (code & 0x3FF))
        else:
            units.append(code)
    return units


_SLASH = ord("/")
_DOT = ord(".")


def validate_path(path: str | None) -> None:
    """Raise BadPath unless path is a valid znode path (PathUtils.validatePath)."""
    # Fast path for the common case, checked on every write: printable ASCII with no empty,
    # "." or ".." segment (anything starting with "/." takes the exact slow path).
    if (
        path
        and path[0] == "/"
        and path[-1] != "/"
        and path.isascii()
        and path.isprintable()
        and "//" not in path
        and "/." not in path
    ):
        return
    if path is None:
        raise BadPath("Path cannot be null")
    if len(path) == 0:
        raise BadPath("Path length must be > 0")
    if path[0] != "/":
        raise BadPath("Path must start with / character")
    if len(path) == 1:
        return
    if path[-1] == "/":
        raise BadPath("Path must not end with / character")
    chars = _utf16_units(path)
    reason = _first_violation(chars)
    if reason is not None:
        raise BadPath(f'Invalid path string "{path}" caused by {reason}')


def _first_violation(chars: list[int]) -> str | None:
    """The reason text for the first bad char after the leading '/', as PathUtils words it."""
    count = len(chars)
    last = _SLASH
    for i in range(1, count):
        char = chars[i]
        is_segment_end = i + 1 == count or chars[i + 1] == _SLASH
        if char == 0:
            return f"null character not allowed @{i}"
        if char == _SLASH and last == _SLASH:
            return f"empty node name specified @{i}"
        if char == _DOT and last == _DOT:
            if chars[i - 2] == _SLASH and is_segment_end:
                return f"relative paths not allowed @{i}"
        elif char == _DOT:
            if chars[i - 1] == _SLASH and is_segment_end:
                return f"relative paths not allowed @{i}"
        elif _is_forbidden_char(char):
            return f"invalid character @{i}"
        last = char
    return None


def validate_path_with_seq(path: str | None, is_sequential: bool) -> None:
    """validate_path for a create: a sequential create is checked as path + "1",
    since the server appends a counter (so "/a/" is a valid sequential prefix)."""
    if is_sequential and path is not None:
        validate_path(path + "1")
    else:
        validate_path(path)


def parent_of(path: str) -> str:
    """The parent path: the text before the last '/', or "/" for a child of the root.

    The root's parent is "" (DataTree's convention for the root's parent name)."""
    index = path.rfind("/")
    if index <= 0:
        return "/" if index == 0 and len(path) > 1 else ""
    return path[:index]


def basename(path: str) -> str:
    """The last segment of path (the child name under its parent); "" for the root."""
    return path[path.rfind("/") + 1 :]


def join_child(parent: str, child: str) -> str:
    """The path of child under parent, without doubling the root's slash."""
    return "/" + child if parent == "/" else parent + "/" + child

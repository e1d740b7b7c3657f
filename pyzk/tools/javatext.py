"""How Apache's tools turn values into text, where Java's library decides it: pure functions.

Rule 1: each function names the Java call it stands for, and gives that call's text for the
        values the tools print (the en/en_US locale of the JDK 17 CLDR data; the time zone is
        the caller's: a timezone-aware datetime).
Rule 2: jute records print as ToStringOutputArchive prints them (Record.toString): fields
        joined by ",", strings as ' + text with , } % NUL CR LF percent-escaped, buffers as
        # + Integer.toHexString of each (signed) byte, nested records s{...}, vectors v{...},
        booleans T/F, and a top-level record ends with a newline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

_LONG_MASK = (1 << 64) - 1
_INT_MASK = (1 << 32) - 1
_LONG_MIN = -(1 << 63)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_STRING_ESCAPES = {"\0": "%00", "\n": "%0A", "\r": "%0D", ",": "%2C", "}": "%7D", "%": "%25"}


def long_to_hex(value: int) -> str:
    """Long.toHexString: two's complement, lowercase, no padding."""
    return f"{value & _LONG_MASK:x}"


def hex_016(value: int) -> str:
    """String.format("%#016x", long): 0x and the digits, zero-padded to 16 characters in all."""
    return "0x" + f"{value & _LONG_MASK:x}".rjust(14, "0")


def int_to_hex(value: int) -> str:
    """Integer.toHexString: two's complement of the 32-bit int."""
    return f"{value & _INT_MASK:x}"


def utf8_string(data: bytes | None) -> str:
    """new String(bytes, UTF_8): malformed sequences become U+FFFD (as Python's 'replace')."""
    return data.decode("utf-8", "replace") if data else ""


def long_decode(text: str) -> int:
    """Long.decode: optional sign, then 0x/0X/# hex, a leading 0 octal, else decimal.

    ValueError (Java's NumberFormatException) for anything else or a value outside a long.
    """
    body, negative = text, False
    if body[:1] in ("-", "+"):
        negative, body = body[0] == "-", body[1:]
    if body[:2] in ("0x", "0X"):
        radix, digits = 16, body[2:]
    elif body[:1] == "#":
        radix, digits = 16, body[1:]
    elif body[:1] == "0" and len(body) > 1:
        radix, digits = 8, body[1:]
    else:
        radix, digits = 10, body
    if not digits or digits[0] in "+-" or not digits.isascii() or "_" in digits or digits.strip() != digits:
        raise ValueError(f'For input string: "{text}"')
    try:
        value = int(digits, radix)
    except ValueError:
        raise ValueError(f'For input string: "{text}"') from None
    value = -value if negative else value
    if not _LONG_MIN <= value <= -_LONG_MIN - 1:
        raise ValueError(f'For input string: "{text}"')
    return value


def java_file_path(text: str) -> str:
    """new File(text).getPath(): repeated and trailing slashes dropped (UnixFileSystem.normalize)."""
    absolute = text.startswith("/")
    parts = [p for p in text.split("/") if p]
    return ("/" if absolute else "") + "/".join(parts)


def java_absolute_path(text: str, cwd: str) -> str:
    """File.getAbsolutePath: the working directory prepended to a relative path, nothing resolved."""
    path = java_file_path(text)
    if path.startswith("/"):
        return path
    return cwd.rstrip("/") + "/" + path if path else cwd


def _hour12(moment: datetime) -> int:
    return moment.hour % 12 or 12


def _ampm(moment: datetime) -> str:
    return "AM" if moment.hour < 12 else "PM"


def _zone(moment: datetime) -> str:
    return moment.tzname() or "GMT"


def short_long_datetime(moment: datetime) -> str:
    """DateFormat.getDateTimeInstance(SHORT, LONG).format: 12/7/26, 8:51:43 PM UTC."""
    return (f"{moment.month}/{moment.day}/{moment.year % 100:02d}, {_hour12(moment)}:{moment.minute:02d}:"
            f"{moment.second:02d} {_ampm(moment)} {_zone(moment)}")


def medium_datetime(moment: datetime) -> str:
    """DateFormat.getDateTimeInstance().format (MEDIUM, MEDIUM): Dec 7, 2026, 8:51:43 PM."""
    return (f"{_MONTHS[moment.month - 1]} {moment.day}, {moment.year}, {_hour12(moment)}:{moment.minute:02d}:"
            f"{moment.second:02d} {_ampm(moment)}")


def date_to_string(moment: datetime) -> str:
    """Date.toString: Mon Dec 07 20:51:43 UTC 2026."""
    return (f"{_DAYS[moment.weekday()]} {_MONTHS[moment.month - 1]} {moment.day:02d} {moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d} {_zone(moment)} {moment.year}")


def _escape_string(text: str | None) -> str:
    if text is None:
        return ""
    return "'" + "".join(_STRING_ESCAPES.get(c, c) for c in text)


def _escape_buffer(data: bytes | None) -> str:
    if not data:
        return ""
    return "#" + "".join(int_to_hex(b - 256 if b > 127 else b) for b in data)


class _ToStringArchive:
    """ToStringOutputArchive's state: `first` decides whether a comma comes before a value."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.first = True

    def _comma(self) -> None:
        if not self.first:
            self.parts.append(",")
        self.first = False

    def value(self, kind: Any, value: Any) -> None:
        name = getattr(kind, "name", None)
        if hasattr(kind, "_jute_fields"):  # a nested record
            if value is not None:
                self.record(value, nested=True)
        elif hasattr(kind, "element"):  # a vector
            self._comma()
            self.parts.append("v{")
            self.first = True
            for element in value or ():
                self.value(kind.element, element)
            self.parts.append("}")
            self.first = False
        elif name == "boolean":
            self._comma()
            self.parts.append("T" if value else "F")
        elif name in ("int", "long", "byte"):
            self._comma()
            self.parts.append(str(value))
        elif name == "ustring":
            self._comma()
            self.parts.append(_escape_string(value))
        elif name == "buffer":
            self._comma()
            self.parts.append(_escape_buffer(value))
        else:
            raise TypeError(f"no ToString rendering for jute kind {kind!r}")

    def record(self, rec: Any, nested: bool) -> None:
        if nested:
            self._comma()
            self.parts.append("s{")
            self.first = True
        for name, kind in rec._jute_fields:
            self.value(getattr(kind, "kind", kind), getattr(rec, name))
        if nested:
            self.parts.append("}")
            self.first = False
        else:
            self.parts.append("\n")
            self.first = True


def record_to_string(rec: Any) -> str:
    """A generated jute Record's toString() (Rule 2)."""
    archive = _ToStringArchive()
    archive.record(rec, nested=False)
    return "".join(archive.parts)


def list_to_string(items: list[Any] | None, render: Any = record_to_string) -> str:
    """java.util.List.toString: [a, b]; a null list is "null"."""
    if items is None:
        return "null"
    return "[" + ", ".join(render(item) for item in items) + "]"


def json_quote(text: str) -> str:
    """Jackson's JsonStringEncoder.quoteAsString: \\" \\\\ and control characters escaped."""
    out = []
    for c in text:
        code = ord(c)
        if c in '"\\':
            out.append("\\" + c)
        elif code < 0x20:
            out.append({8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(code, f"\\u{code:04X}"))
        else:
            out.append(c)
    return "".join(out)

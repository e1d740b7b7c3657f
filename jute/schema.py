"""@record: one declaration per Jute record -> a slotted class, its construct schema, a fast codec.

A record is declared once, field for field as in zookeeper.jute:

    @record
    class GetDataRequest:
        path: Annotated[str, UString]
        watch: Annotated[bool, Bool]

From the hints we derive
  - the class: a slotted dataclass with positional __init__ in field order, value equality;
  - `cls._jute_schema`: a construct Struct, the reference codec (slow, obviously right);
  - `cls.decode(buf, pos=0) -> (obj, end)` and `obj.encode() -> bytes`: the fast codec, Python
    source generated from the same hints (runs of fixed-width fields fused into one
    precompiled struct.Struct), kept inspectable as `cls._jute_source`.

tests/unit/jute/ checks that both codecs agree on every record (hypothesis) and on golden
bytes captured from Apache ZooKeeper and kazoo.
"""

from __future__ import annotations

import dataclasses
import struct
import typing
from collections.abc import Callable
from typing import (
    Annotated,
    Any,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)

from jute.primitives import (
    Fixed,
    JuteError,
    Trailing,
    Variable,
    Vector,
    decode_text,
    encode_text,
    make_record_construct,
)

T = TypeVar("T")

_LEN = struct.Struct(">i")


def _fields_of(cls: type) -> list[tuple[str, Any]]:
    hints = get_type_hints(cls, include_extras=True)
    fields = []
    for name in cls.__annotations__:
        hint = hints[name]
        if get_origin(hint) is not Annotated:
            raise TypeError(f"{cls.__name__}.{name}: use Annotated[type, JuteKind]")
        kind = get_args(hint)[1]
        fields.append((name, kind))
    for i, (name, kind) in enumerate(fields):
        if isinstance(kind, Trailing) and i != len(fields) - 1:
            raise TypeError(f"{cls.__name__}.{name}: Trailing fields must come last")
    return fields


class _SourceBuilder:
    """Emits decode/encode function source for one record."""

    def __init__(self, cls: type, fields: list[tuple[str, Any]]) -> None:
        self.cls = cls
        self.fields = fields
        self.globals: dict[str, Any] = {
            "JuteError": JuteError,
            "_LEN": _LEN,
            "_decode_text": decode_text,
            "_encode_text": encode_text,
            "_cls": cls,
        }
        self._n = 0

    def _name(self, prefix: str, value: Any) -> str:
        self._n += 1
        name = f"_{prefix}{self._n}"
        self.globals[name] = value
        return name

    def _runs(self) -> list[tuple[str, Any]]:
        """Group consecutive Fixed fields: [("fixed", [(name, kind)...]) | ("one", (name, kind))]."""
        runs: list[tuple[str, Any]] = []
        for name, kind in self.fields:
            if isinstance(kind, Fixed):
                if runs and runs[-1][0] == "fixed":
                    runs[-1][1].append((name, kind))
                else:
                    runs.append(("fixed", [(name, kind)]))
            else:
                runs.append(("one", (name, kind)))
        return runs

    # -- decode --

    def _emit_decode_value(self, target: str, kind: Any, lines: list[str], ind: str) -> None:
        """Emit code that decodes one value of `kind` at `pos` into local `target`."""
        if isinstance(kind, Fixed):
            s = self._name("S", struct.Struct(">" + kind.fmt))
            lines.append(f"{ind}{target}, = {s}.unpack_from(buf, pos); pos += {kind.size}")
        elif isinstance(kind, Variable):
            lines.append(f"{ind}n, = _LEN.unpack_from(buf, pos); pos += 4")
            lines.append(f"{ind}if n < 0:")
            lines.append(f"{ind}    if n != -1: raise JuteError('unreasonable length %d' % n)")
            lines.append(f"{ind}    {target} = None")
            lines.append(f"{ind}else:")
            lines.append(f"{ind}    e = pos + n")
            lines.append(f"{ind}    if e > end: raise JuteError('length %d runs past the record' % n)")
            if kind.is_text:
                lines.append(f"{ind}    {target} = _decode_text(buf[pos:e]); pos = e")
            else:
                lines.append(f"{ind}    {target} = bytes(buf[pos:e]); pos = e")
        elif isinstance(kind, Vector):
            cnt = f"c{self._n}"
            self._n += 1
            item = f"it{self._n}"
            self._n += 1
            lines.append(f"{ind}{cnt}, = _LEN.unpack_from(buf, pos); pos += 4")
            lines.append(f"{ind}if {cnt} < 0:")
            lines.append(f"{ind}    if {cnt} != -1: raise JuteError('negative vector count %d' % {cnt})")
            lines.append(f"{ind}    {target} = None")
            lines.append(f"{ind}else:")
            lines.append(f"{ind}    if {cnt} > end - pos: raise JuteError('vector count %d runs past the record' % {cnt})")
            lines.append(f"{ind}    {target} = []")
            lines.append(f"{ind}    for _ in range({cnt}):")
            self._emit_decode_value(item, kind.element, lines, ind + "        ")
            lines.append(f"{ind}        {target}.append({item})")
        elif isinstance(kind, Trailing):
            lines.append(f"{ind}if pos >= end:")
            lines.append(f"{ind}    {target} = None")
            lines.append(f"{ind}else:")
            self._emit_decode_value(target, kind.kind, lines, ind + "    ")
        elif hasattr(kind, "_jute_decode"):
            d = self._name("D", kind._jute_decode)
            lines.append(f"{ind}{target}, pos = {d}(buf, pos, end)")
        else:
            raise TypeError(f"not a jute kind: {kind!r}")

    def decode_source(self) -> str:
        lines = ["def _decode(buf, pos, end):"]
        for run_kind, run in self._runs():
            if run_kind == "fixed":
                fmt = ">" + "".join(k.fmt for _, k in run)
                s = self._name("S", struct.Struct(fmt))
                size = struct.calcsize(fmt)
                targets = ", ".join(f"f_{name}" for name, _ in run)
                lines.append(f"    {targets}, = {s}.unpack_from(buf, pos); pos += {size}")
            else:
                name, kind = run
                self._emit_decode_value(f"f_{name}", kind, lines, "    ")
        args = ", ".join(f"f_{name}" for name, _ in self.fields)
        lines.append("    if pos > end: raise JuteError('record runs past the end')")
        lines.append(f"    return _cls({args}), pos")
        return "\n".join(lines) + "\n"

    # -- encode --

    def _emit_encode_value(self, expr: str, kind: Any, lines: list[str], ind: str) -> None:
        if isinstance(kind, Fixed):
            s = self._name("S", struct.Struct(">" + kind.fmt))
            lines.append(f"{ind}out += {s}.pack({expr})")
        elif isinstance(kind, Variable):
            v = f"v{self._n}"
            self._n += 1
            lines.append(f"{ind}{v} = {expr}")
            lines.append(f"{ind}if {v} is None:")
            lines.append(f"{ind}    out += b'\\xff\\xff\\xff\\xff'")
            lines.append(f"{ind}else:")
            if kind.is_text:
                lines.append(f"{ind}    {v} = _encode_text({v})")
            lines.append(f"{ind}    out += _LEN.pack(len({v})); out += {v}")
        elif isinstance(kind, Vector):
            v = f"v{self._n}"
            self._n += 1
            item = f"it{self._n}"
            self._n += 1
            lines.append(f"{ind}{v} = {expr}")
            lines.append(f"{ind}if {v} is None:")
            lines.append(f"{ind}    out += b'\\xff\\xff\\xff\\xff'")
            lines.append(f"{ind}else:")
            lines.append(f"{ind}    out += _LEN.pack(len({v}))")
            lines.append(f"{ind}    for {item} in {v}:")
            self._emit_encode_value(item, kind.element, lines, ind + "        ")
        elif isinstance(kind, Trailing):
            lines.append(f"{ind}if {expr} is not None:")
            self._emit_encode_value(expr, kind.kind, lines, ind + "    ")
        elif hasattr(kind, "_jute_encode_into"):
            e = self._name("E", kind._jute_encode_into)
            lines.append(f"{ind}{e}({expr}, out)")
        else:
            raise TypeError(f"not a jute kind: {kind!r}")

    def encode_source(self) -> str:
        lines = ["def _encode_into(obj, out):"]
        for run_kind, run in self._runs():
            if run_kind == "fixed":
                fmt = ">" + "".join(k.fmt for _, k in run)
                s = self._name("S", struct.Struct(fmt))
                args = ", ".join(f"obj.{name}" for name, _ in run)
                lines.append(f"    out += {s}.pack({args})")
            else:
                name, kind = run
                self._emit_encode_value(f"obj.{name}", kind, lines, "    ")
        lines.append("    return out")
        return "\n".join(lines) + "\n"


def _compile(source: str, namespace: dict[str, Any], filename: str, func: str) -> Callable[..., Any]:
    code = compile(source, filename, "exec")
    exec(code, namespace)  # noqa: S102 - generated from our own schema, as construct.compile() does
    return typing.cast(Callable[..., Any], namespace[func])


def record(cls: type[T]) -> type[T]:
    """Turn a Jute record declaration into a slotted class with reference and fast codecs."""
    fields = _fields_of(cls)
    new_cls = dataclasses.dataclass(slots=True, eq=True, unsafe_hash=True, repr=True)(cls)
    new_cls._jute_names = tuple(name for name, _ in fields)  # type: ignore[attr-defined]
    new_cls._jute_fields = tuple(fields)  # type: ignore[attr-defined]

    builder = _SourceBuilder(new_cls, fields)
    dec_src = builder.decode_source()
    enc_src = builder.encode_source()
    filename = f"<jute {new_cls.__module__}.{new_cls.__qualname__}>"
    decode = _compile(dec_src, builder.globals, filename, "_decode")
    encode_into = _compile(enc_src, builder.globals, filename, "_encode_into")
    new_cls._jute_source = dec_src + "\n" + enc_src  # type: ignore[attr-defined]
    new_cls._jute_decode = staticmethod(decode)  # type: ignore[attr-defined]
    new_cls._jute_encode_into = staticmethod(encode_into)  # type: ignore[attr-defined]
    new_cls._jute_schema = make_record_construct(new_cls, fields)  # type: ignore[attr-defined]

    def decode_from(buf: bytes, pos: int = 0, end: int | None = None) -> tuple[Any, int]:
        """Decode one record at buf[pos:end]; returns (record, position after it)."""
        try:
            return decode(buf, pos, len(buf) if end is None else end)
        except struct.error as exc:
            raise JuteError(f"{new_cls.__name__}: truncated ({exc})") from None
        except UnicodeDecodeError as exc:
            raise JuteError(f"{new_cls.__name__}: invalid UTF-8 ({exc.reason})") from None

    def from_bytes(buf: bytes) -> Any:
        """Decode a whole buffer holding exactly this record (trailing bytes are ignored)."""
        return decode_from(buf, 0, len(buf))[0]

    def encode(self: Any) -> bytes:
        return bytes(encode_into(self, bytearray()))

    new_cls.decode_from = staticmethod(decode_from)  # type: ignore[attr-defined]
    new_cls.from_bytes = staticmethod(from_bytes)  # type: ignore[attr-defined]
    new_cls.encode = encode  # type: ignore[attr-defined]
    new_cls.encode_into = encode_into  # type: ignore[attr-defined]
    return new_cls


def reference_parse(cls: Any, data: bytes) -> Any:
    """Parse with the construct schema (the reference codec)."""
    return cls._jute_schema.parse(data)


def reference_build(obj: Any) -> bytes:
    """Build with the construct schema (the reference codec)."""
    return bytes(type(obj)._jute_schema.build(obj))

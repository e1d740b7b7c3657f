"""Micro-benchmark of the jute codecs on the hottest pair: parse a getData request, build its reply.

    python bench/codec_micro.py [--seconds-per-case 0.5]

Three codecs for the same records: construct interpreted (the reference, `_jute_schema`),
construct `.compile()` of that schema, and the generated fast codec (`decode_from`/`encode`).
Prints µs/op (best of five runs) per case. Not a test: numbers depend on the machine.

About .compile(): it succeeds, but compiles nothing. Each schema's outermost construct is our
_RecordAdapter (and the null-aware kinds _NullablePrefixed/_NullableVector/_TrailingOptional
below it) with no _emitparse/_emitbuild, so construct's generated parseall/buildall just call
the interpreted instance back ("linkedinstances"): interpreted speed plus the Compiled
wrapper's overhead. The script prints whether that is still the case.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jute.codes import OpCode  # noqa: E402
from jute.data import Stat  # noqa: E402
from jute.proto import GetDataRequest, GetDataResponse, ReplyHeader, RequestHeader  # noqa: E402

RUNS = 5
REQUEST_HEADER_BYTES = 8
DATA_BYTES = 100

REQUEST_BODY = (
    RequestHeader(7, OpCode.GET_DATA).encode() + GetDataRequest("/app/config/node-0001", True).encode()
)
REPLY_HEADER = ReplyHeader(7, 0x100000042, 0)
REPLY = GetDataResponse(
    b"x" * DATA_BYTES, Stat(3, 0x100000042, 1700000000000, 1700000000500, 4, 0, 0, 0, DATA_BYTES, 0, 3)
)


def _codec_cases() -> dict[str, tuple[Callable[[], Any], Callable[[], bytes]]]:
    """name -> (parse the request body, build the reply body)."""

    def interpreted_parse() -> Any:
        header = RequestHeader._jute_schema.parse(REQUEST_BODY[:REQUEST_HEADER_BYTES])
        return header, GetDataRequest._jute_schema.parse(REQUEST_BODY[REQUEST_HEADER_BYTES:])

    def interpreted_build() -> bytes:
        return ReplyHeader._jute_schema.build(REPLY_HEADER) + GetDataResponse._jute_schema.build(REPLY)

    compiled = {
        cls: cls._jute_schema.compile()
        for cls in (RequestHeader, GetDataRequest, ReplyHeader, GetDataResponse)
    }

    def compiled_parse() -> Any:
        header = compiled[RequestHeader].parse(REQUEST_BODY[:REQUEST_HEADER_BYTES])
        return header, compiled[GetDataRequest].parse(REQUEST_BODY[REQUEST_HEADER_BYTES:])

    def compiled_build() -> bytes:
        return compiled[ReplyHeader].build(REPLY_HEADER) + compiled[GetDataResponse].build(REPLY)

    def fast_parse() -> Any:
        header, pos = RequestHeader.decode_from(REQUEST_BODY, 0, len(REQUEST_BODY))
        return header, GetDataRequest.decode_from(REQUEST_BODY, pos, len(REQUEST_BODY))[0]

    def fast_build() -> bytes:
        out = bytearray()
        REPLY_HEADER.encode_into(out)
        REPLY.encode_into(out)
        return bytes(out)

    cases = {
        "construct interpreted": (interpreted_parse, interpreted_build),
        "construct .compile()": (compiled_parse, compiled_build),
        "fast (generated)": (fast_parse, fast_build),
    }
    # every codec must produce the same objects and bytes, or the timings mean nothing
    expected_parse, expected_build = fast_parse(), fast_build()
    for name, (parse, build) in cases.items():
        if parse() != expected_parse or build() != expected_build:
            raise SystemExit(f"{name}: disagrees with the fast codec")
    return cases


def microseconds_per_op(func: Callable[[], Any], seconds_per_case: float) -> float:
    timer = timeit.Timer(func)
    loops, elapsed = timer.autorange()
    loops = max(1, int(loops * seconds_per_case / max(elapsed, 1e-9)))
    return min(timer.repeat(repeat=RUNS, number=loops)) / loops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description="jute codec micro-benchmark")
    parser.add_argument("--seconds-per-case", type=float, default=0.5)
    args = parser.parse_args()
    print(
        f"Python {sys.version.split()[0]}; getData request {len(REQUEST_BODY)} B, reply body "
        f"{16 + len(REPLY.encode())} B ({DATA_BYTES} B data); best of {RUNS}"
    )
    print(f"{'codec':<24}{'parse request µs/op':>22}{'build reply µs/op':>20}")
    linked_back = [
        cls.__name__
        for cls in (RequestHeader, GetDataRequest, ReplyHeader, GetDataResponse)
        if "return linkedparsers[" in cls._jute_schema.compile().source
    ]
    print(f".compile() only links back to the interpreted schema for: {', '.join(linked_back) or 'none'}")
    for name, (parse, build) in _codec_cases().items():
        parse_us = microseconds_per_op(parse, args.seconds_per_case)
        build_us = microseconds_per_op(build, args.seconds_per_case)
        print(f"{name:<24}{parse_us:>22.2f}{build_us:>20.2f}")


if __name__ == "__main__":
    main()

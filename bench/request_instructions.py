"""Instructions per request through the connection layer and the pipeline, counted by valgrind.

    python -m bench.request_instructions [--cases get,set] [--requests 5000]

A load-independent regression check between two commits (run it in both checkouts): CPU time
on a shared 2-core machine moves by tens of percent from run to run, an instruction count by
well under one. One `ClientConnection` with a stub transport takes the workload's frames in
pipelined chunks of 16 (as bench.run's clients send them) through `data_received`, the
event loop turning between chunks; the commit stage applies inline (bench.pipeline_micro's
InlineCommit: no disk, no fsync thread). Each case runs twice under callgrind, without and
with the requests; the difference divided by the request count is printed. Needs valgrind
(Debian package `valgrind`); a case takes about 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import struct
import subprocess
import sys
from typing import Any

from bench import pipeline_micro as micro
from jute.codes import OpCode
from jute.proto import CreateRequest
from pyzk.server.connection import ClientConnection

CHUNK_FRAMES = 16
_COLLECTED = re.compile(r"Collected : (\d+)")


class StubTransport:
    """The asyncio.Transport surface ClientConnection uses; counts what is written."""

    def __init__(self) -> None:
        self.closing = False
        self.written = 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _framed(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


async def _serve(case: str, requests: int, run_requests: bool) -> None:
    per_unit, build = micro._workloads(requests)[case]
    server, _, _ = micro._server()
    connection = ClientConnection(server, {})
    transport = StubTransport()
    connection.connection_made(transport)
    connect = (bytes(4) + bytes(8) + (30000).to_bytes(4, "big") + bytes(8) + (16).to_bytes(4, "big")
               + bytes(16) + b"\x00")
    connection.data_received(_framed(connect))
    await asyncio.sleep(0)
    for key in range(micro.KEYS):
        connection.data_received(_framed(micro._frame(key, OpCode.CREATE, CreateRequest(
            f"/k{key}", micro.PAYLOAD, micro.OPEN, 0))))
        await asyncio.sleep(0)
    frames = [frame for unit in range(max(1, requests // per_unit)) for frame in build(micro.KEYS + unit)]
    chunks = [b"".join(_framed(frame) for frame in frames[i:i + CHUNK_FRAMES])
              for i in range(0, len(frames), CHUNK_FRAMES)]
    await asyncio.sleep(0)
    if run_requests:
        for chunk in chunks:
            connection.data_received(chunk)
            await asyncio.sleep(0)
    await asyncio.sleep(0)
    if transport.closing:
        raise SystemExit(f"{case}: the server closed the connection")


def _count(case: str, requests: int, run_requests: bool) -> int:
    """Instructions of one worker process, from callgrind's summary."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m",
               "bench.request_instructions", "--worker", case, str(requests), "1" if run_requests else "0"]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    match = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"{case}: valgrind failed ({done.returncode}): {done.stderr[-400:]}")
    return int(match.group(1))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        asyncio.run(_serve(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="get,set,create_delete,exists_watch,multi5")
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    for case in args.cases.split(","):
        without = _count(case, args.requests, False)
        with_requests = _count(case, args.requests, True)
        print(f"{case:14s} {(with_requests - without) / args.requests:10,.0f} instructions/request", flush=True)


if __name__ == "__main__":
    main()

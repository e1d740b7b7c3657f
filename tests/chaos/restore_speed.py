"""Restart time with a big tree: Apache ZooKeeper writes it, then both start on copies of it.

    python -m tests.chaos.restore_speed [--nodes 1000000] [--data-bytes 100] [--runs 3]

Apache writes `nodes` znodes of `data-bytes` each (1000 children per parent) with pipelined
raw creates, and is stopped. Then, for each run, Apache and pyzk each start on a fresh copy
of that data directory; a run's time is from process launch until `srvr` answers, and its
RSS is read from /proc right then. The medians and the ratio pyzk / Apache are printed.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import struct
import tempfile
import time
from pathlib import Path

from tests.compat.rawclient import OP_CREATE, RawClient, create_request
from tests.compat.targets import (
    Server,
    free_loopback_ports,
    start_target,
    zoo_cfg_text,
)

CHILDREN_PER_PARENT = 1000
WINDOW = 512
START_TIMEOUT_S = 300.0
SYSPROPS = {"zookeeper.forceSync": "no"}  # only the write phase: the restarts read the same files


def _paths(nodes: int) -> list[str]:
    parents = [f"/bench/p{i:04d}" for i in range((nodes + CHILDREN_PER_PARENT - 1) // CHILDREN_PER_PARENT)]
    children = [f"{parents[i // CHILDREN_PER_PARENT]}/n{i:07d}" for i in range(nodes - len(parents) - 1)]
    return ["/bench", *parents, *children]


class _ReplyReader:
    """Reads reply headers (xid, zxid, err) off a socket without quadratic buffer copies."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.pos = 0

    def next_err(self) -> int:
        while True:
            if len(self.buffer) - self.pos >= 4:
                (length,) = struct.unpack_from(">i", self.buffer, self.pos)
                if len(self.buffer) - self.pos >= 4 + length:
                    (err,) = struct.unpack_from(">i", self.buffer, self.pos + 16)
                    self.pos += 4 + length
                    return err
            del self.buffer[:self.pos]
            self.pos = 0
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk


def populate(hosts: str, nodes: int, data_bytes: int) -> None:
    """Create the tree with up to WINDOW creates in flight on one connection."""
    data = b"x" * data_bytes
    client = RawClient.to(hosts, timeout_s=60.0)
    client.handshake(timeout_ms=30000)
    replies = _ReplyReader(client.sock)
    paths = _paths(nodes)
    parents_end = (nodes + CHILDREN_PER_PARENT - 1) // CHILDREN_PER_PARENT  # index of the last parent
    in_flight = 0
    started = time.monotonic()
    for index, path in enumerate(paths):
        client.send_request(index + 1, OP_CREATE, create_request(path, data))
        in_flight += 1
        # Every parent must exist before its first child is sent: drain fully after them.
        drain_all = index == parents_end or index + 1 == len(paths)
        if in_flight >= WINDOW or drain_all:
            keep = 0 if drain_all else WINDOW // 2
            while in_flight > keep:
                err = replies.next_err()
                if err != 0:
                    raise RuntimeError(f"create failed with err {err}")
                in_flight -= 1
        if index % 100_000 == 0:
            print(f"  {index} created, {time.monotonic() - started:.0f} s", flush=True)
    client.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed_start(kind: str, data_dir: Path, server_dir: Path) -> tuple[float, float]:
    """Seconds from launch until `srvr` answers, and the RSS (MB) at that moment."""
    client, quorum, election, admin = free_loopback_ports(4)
    server = Server(kind, 1, client, quorum, election, admin, server_dir=server_dir, sysprop_flags=[])
    shutil.copytree(data_dir, server.data_dir)
    server.config_path.write_text(zoo_cfg_text(server, [server], {}))
    started = time.monotonic()
    server.launch()
    try:
        server.wait_serving(started + START_TIMEOUT_S)
        elapsed = time.monotonic() - started
        assert server.pid is not None
        return elapsed, rss_mb(server.pid)
    finally:
        server.stop()
        shutil.rmtree(server_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--data-bytes", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the written tree here")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="restore-speed-", dir="/var/tmp"))
    data_dir = workdir / "apache-server1" / "data"
    if not (data_dir / "version-2").exists():
        print(f"Apache writes {args.nodes} znodes of {args.data_bytes} bytes into {data_dir}")
        ensemble = start_target("apache", workdir=workdir, sysprops=SYSPROPS)
        try:
            populate(ensemble.hosts, args.nodes, args.data_bytes)
        finally:
            ensemble.stop()
    times: dict[str, list[float]] = {"apache": [], "pyzk": []}
    rss: dict[str, list[float]] = {"apache": [], "pyzk": []}
    for run in range(args.runs):
        for kind in ("apache", "pyzk"):
            elapsed, mb = timed_start(kind, data_dir, workdir / f"run-{kind}-{run}")
            times[kind].append(elapsed)
            rss[kind].append(mb)
            print(f"run {run} {kind}: serving after {elapsed:.2f} s, RSS {mb:.0f} MB", flush=True)
    apache, pyzk = statistics.median(times["apache"]), statistics.median(times["pyzk"])
    print(f"median restart: Apache {apache:.2f} s (RSS {statistics.median(rss['apache']):.0f} MB), "
          f"pyzk {pyzk:.2f} s (RSS {statistics.median(rss['pyzk']):.0f} MB), ratio pyzk/Apache {pyzk / apache:.2f}")


if __name__ == "__main__":
    main()

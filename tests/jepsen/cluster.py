"""A 3-member ensemble (pyzk or Apache ZooKeeper 3.8) whose member links run through proxies.

Rule 1: member i's zoo.cfg names itself at its real quorum/election ports and every other
        member j at the ports of the proxies i->j (tests/jepsen/proxy.py), so cutting the four
        proxies of a pair (quorum and election, both directions) cuts that pair both ways.
        Clients connect to the members' real client ports.
Rule 2: processes are started with tests/compat/targets.py's command lines and are signalled by
        their own PID only: SIGKILL, SIGSTOP/SIGCONT, and at the end SIGCONT then SIGTERM then
        SIGKILL.  ``stop`` runs from ``__exit__`` too, so an exception or ^C stops everything.
Rule 3: every wait is bounded; ``srvr`` (bounded by its socket timeout) tells whether a member
        serves and whether it leads.  A paused member is never asked (it would not answer).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.compat.targets import (
    TARGET_KINDS,
    Server,
    TargetStartError,
    free_loopback_ports,
    serving_mode,
)
from tests.jepsen.proxy import LOOPBACK, ProxyHub

log = logging.getLogger("jepsen.cluster")

SIZE = 3
TICK_TIME_MS = 200
INIT_LIMIT = 20   # ticks: 4 s to connect and sync with a leader
SYNC_LIMIT = 10   # ticks: 2 s without the leader before a follower gives up
MAX_SESSION_TIMEOUT_MS = 20000  # the default (20 ticks = 4 s) would cap a 5 s session
START_TIMEOUT_S = 60.0
POLL_S = 0.2
# The JVMs share two cores with pyzk's test clients: keep them small and quick to start.
APACHE_JVM_FLAGS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
ZK4394 = re.compile(r"NullPointerException", re.IGNORECASE)


def member_cfg_text(member: int, data_dir: Path, client_port: int, admin_port: int,
                    addresses: dict[int, tuple[int, int]]) -> str:
    """zoo.cfg for ``member``; ``addresses[j]`` = (quorum, election) port as member sees j."""
    lines = [
        f"tickTime={TICK_TIME_MS}",
        f"initLimit={INIT_LIMIT}",
        f"syncLimit={SYNC_LIMIT}",
        f"maxSessionTimeout={MAX_SESSION_TIMEOUT_MS}",
        f"dataDir={data_dir}",
        f"clientPort={client_port}",
        f"clientPortAddress={LOOPBACK}",
        "4lw.commands.whitelist=*",
        "admin.enableServer=false",
        f"admin.serverPort={admin_port}",
    ]
    for peer in sorted(addresses):
        quorum, election = addresses[peer]
        lines.append(f"server.{peer}={LOOPBACK}:{quorum}:{election}")
    return "".join(line + "\n" for line in lines)


def proxy_name(link: str, src: int, dst: int) -> str:
    return f"{link}{src}-{dst}"


@dataclass
class Member(Server):
    """targets.Server, optionally running pyzk from another checkout (``pyzk_root``)."""

    pyzk_root: Path | None = None

    def command(self) -> list[str]:
        if self.kind == "pyzk" and self.pyzk_root is not None:
            return [sys.executable, str(self.pyzk_root / "bin" / "zkServer.py"), "start-foreground",
                    *self.sysprop_flags, str(self.config_path)]
        return super().command()


class Cluster:
    """Three members plus their proxies (see the module rules). Members are numbered 1..3."""

    def __init__(self, kind: str, workdir: Path, size: int = SIZE,
                 pyzk_root: Path | None = None) -> None:
        if kind not in TARGET_KINDS:
            raise ValueError(f"unknown target kind {kind!r}")
        self.kind = kind
        self.workdir = workdir
        self.ids = list(range(1, size + 1))
        pairs = [(i, j) for i in self.ids for j in self.ids if i != j]
        ports = free_loopback_ports(4 * size + 2 * len(pairs))
        flags = APACHE_JVM_FLAGS if kind == "apache" else []
        self.servers: dict[int, Member] = {}
        for n, i in enumerate(self.ids):
            client, quorum, election, admin = ports[4 * n: 4 * n + 4]
            self.servers[i] = Member(kind=kind, server_id=i, client_port=client, quorum_port=quorum,
                                     election_port=election, admin_port=admin,
                                     server_dir=workdir / f"member{i}", sysprop_flags=list(flags),
                                     pyzk_root=pyzk_root)
        base = 4 * size
        self.proxy_ports: dict[tuple[int, int], tuple[int, int]] = {}
        for n, pair in enumerate(pairs):
            self.proxy_ports[pair] = (ports[base + 2 * n], ports[base + 2 * n + 1])
        self.paused: set[int] = set()
        self.lock = threading.RLock()
        self.hub: ProxyHub | None = None
        self.events: list[tuple[float, str]] = []  # (monotonic time, what happened)

    # ---- set-up and tear-down ----------------------------------------------------------------

    @property
    def hosts(self) -> str:
        return ",".join(self.servers[i].address for i in self.ids)

    def address(self, i: int) -> str:
        return self.servers[i].address

    def write_configs(self) -> None:
        for i, server in self.servers.items():
            server.data_dir.mkdir(parents=True, exist_ok=True)
            (server.data_dir / "myid").write_text(f"{i}\n")
            addresses = {j: (self.proxy_ports[(i, j)] if j != i
                             else (self.servers[j].quorum_port, self.servers[j].election_port))
                         for j in self.ids}
            server.config_path.write_text(
                member_cfg_text(i, server.data_dir, server.client_port, server.admin_port, addresses))

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.write_configs()
        self.hub = ProxyHub()
        for (i, j), (quorum, election) in self.proxy_ports.items():
            target = self.servers[j]
            self.hub.add(proxy_name("q", i, j), quorum, target.quorum_port)
            # i's header reaches j through here; j must dial i back through j->i.
            back = self.proxy_ports[(j, i)][1]
            self.hub.add(proxy_name("e", i, j), election, target.election_port,
                         rewrite_address=f"{LOOPBACK}:{back}")
        for server in self.servers.values():
            server.launch()
        self.wait_all_serving(timeout_s)
        self._note("started")

    def wait_all_serving(self, timeout_s: float = START_TIMEOUT_S) -> dict[int, str]:
        deadline = time.monotonic() + timeout_s
        for server in self.servers.values():
            server.wait_serving(deadline)  # raises TargetStartError (with the log tail)
        return self.modes()

    def stop(self) -> None:
        """SIGCONT the paused, SIGTERM every member (in parallel), then SIGKILL stragglers."""
        with self.lock:
            for i in list(self.paused):
                self._signal(i, signal.SIGCONT)
            self.paused.clear()
            for server in self.servers.values():
                server.terminate()
            for server in self.servers.values():
                try:
                    server.stop()
                except Exception:
                    log.exception("stopping member %d", server.server_id)
            if self.hub is not None:
                self.hub.close()
                self.hub = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ---- faults ------------------------------------------------------------------------------

    def _note(self, what: str) -> None:
        self.events.append((time.monotonic(), what))
        log.info("%s: %s", self.kind, what)

    def _signal(self, i: int, sig: signal.Signals) -> None:
        server = self.servers[i]
        if server.running and server.pid is not None:
            os.kill(server.pid, sig)

    def kill9(self, i: int) -> None:
        with self.lock:
            self.servers[i].kill9()
            self.paused.discard(i)
            self._note(f"kill -9 member {i}")

    def restart(self, i: int, wait_s: float = 0.0) -> str | None:
        """Launch member i again (same dataDir); wait up to wait_s for it to serve."""
        with self.lock:
            if not self.servers[i].running:
                self.servers[i].launch()
                self._note(f"restart member {i}")
        deadline = time.monotonic() + wait_s
        while True:
            mode = self.mode(i)
            if mode is not None or time.monotonic() >= deadline:
                return mode
            time.sleep(POLL_S)

    def pause(self, i: int) -> None:
        with self.lock:
            if self.servers[i].running and i not in self.paused:
                self._signal(i, signal.SIGSTOP)
                self.paused.add(i)
                self._note(f"SIGSTOP member {i}")

    def resume(self, i: int) -> None:
        with self.lock:
            if i in self.paused:
                self._signal(i, signal.SIGCONT)
                self.paused.discard(i)
                self._note(f"SIGCONT member {i}")

    def _pair_proxies(self, a: int, b: int) -> list[str]:
        return [proxy_name(link, s, d) for link in ("q", "e") for s, d in ((a, b), (b, a))]

    def partition_pair(self, a: int, b: int) -> None:
        assert self.hub is not None
        self.hub.cut(self._pair_proxies(a, b))
        self._note(f"partition pair {a}<->{b}")

    def isolate(self, i: int) -> None:
        assert self.hub is not None
        names = [n for j in self.ids if j != i for n in self._pair_proxies(i, j)]
        self.hub.cut(names)
        self._note(f"isolate member {i}")

    def heal_partitions(self) -> None:
        if self.hub is not None:
            self.hub.heal()
            self._note("heal partitions")

    def heal_all(self, timeout_s: float = START_TIMEOUT_S) -> dict[int, str]:
        """Heal partitions, resume the paused, restart the dead, wait until all serve."""
        self.heal_partitions()
        for i in self.ids:
            self.resume(i)
        for i in self.ids:
            if not self.servers[i].running:
                self.restart(i)
        return self.wait_all_serving(timeout_s)

    # ---- observation -------------------------------------------------------------------------

    def mode(self, i: int) -> str | None:
        if i in self.paused or not self.servers[i].running:
            return None
        return serving_mode(self.servers[i].client_port)

    def modes(self) -> dict[int, str]:
        return {i: self.mode(i) or "-" for i in self.ids}

    def leader(self) -> int | None:
        for i in self.ids:
            if self.mode(i) == "leader":
                return i
        return None

    def log_path(self, i: int) -> Path:
        return self.servers[i].log_path

    def known_apache_bugs(self) -> list[str]:
        """ZOOKEEPER-4394 (NPE in Learner.syncWithLeader during DIFF) seen in a member's log."""
        found = []
        for i in self.ids:
            try:
                text = self.log_path(i).read_text(errors="replace")
            except OSError:
                continue
            lines = text.splitlines()
            for n, line in enumerate(lines):
                if ZK4394.search(line) and any("syncWithLeader" in x for x in lines[n:n + 15]):
                    found.append(f"ZOOKEEPER-4394 on member {i}: {line.strip()[:200]}")
                    break
        return found

    def copy_logs(self, dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        copied = []
        for i in self.ids:
            src = self.log_path(i)
            if src.exists():
                target = dest / f"member{i}.log"
                shutil.copyfile(src, target)
                copied.append(target)
        return copied


__all__ = ["Cluster", "TargetStartError", "member_cfg_text", "proxy_name"]

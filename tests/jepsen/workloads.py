"""Workers that drive an ensemble and record every op in a History.

Rule 1: each worker owns one KazooClient connected to all members (kazoo shuffles the hosts);
        every op is invoked through kazoo's async API and waited for at most op_timeout_s.
        A timeout or a connection/session error is "info" (the request may still be applied,
        later); BadVersion/NodeExists/NoNode are "fail" (definitely not applied).
Rule 2: nothing is retried: each request is sent once, so what the server did is what the
        history says.  Written data are unique (worker id + counter).
Rule 3: every loop checks the stop event; every wait is bounded.
Workloads: CAS registers (write/cas/read on a few keys), unique creates, sequential creates
under one parent, and an ephemeral worker whose sessions all end (closed, or abandoned so that
they must expire).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)
from kazoo.handlers.threading import KazooTimeoutError

from tests.compat.rawclient import (
    OP_CLOSE_SESSION,
    OP_CREATE,
    RawClient,
    create_request,
    read_ustring,
)
from tests.jepsen.history import FAIL, INFO, OK, History, Op

log = logging.getLogger("jepsen.workloads")

ROOT = "/jepsen"
REG = f"{ROOT}/reg"
UNIQ = f"{ROOT}/uniq"
SEQ = f"{ROOT}/seq"
EPH = f"{ROOT}/eph"
INIT_VALUE = "init"
DEFINITE_FAILURES = (BadVersionError, NodeExistsError, NoNodeError, NotEmptyError, BadArgumentsError)
EPHEMERAL_FLAG = 1
ZK_ERRORS_DEFINITE = {-101: "NoNodeError", -110: "NodeExistsError", -103: "BadVersionError",
                      -108: "NoChildrenForEphemeralsError"}


@dataclass
class WorkloadConfig:
    workers: int = 5
    keys: int = 3
    session_timeout_s: float = 5.0
    op_timeout_s: float = 3.0
    think_s: float = 0.01
    max_batch: int = 4   # ops of one session in flight at once (1..max_batch)
    connect_timeout_s: float = 10.0
    # op mix (relative weights)
    read: float = 3.0
    write: float = 1.5
    cas: float = 2.5
    create: float = 1.0
    seq_create: float = 2.0
    ephemeral_session_timeout_ms: int = 4000
    ephemeral_every_s: float = 0.3

    def key_path(self, k: int) -> str:
        return f"{REG}/k{k}"


def quiet_kazoo() -> None:
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)


def new_client(hosts: str, timeout_s: float) -> KazooClient:
    return KazooClient(hosts=hosts, timeout=timeout_s, randomize_hosts=True,
                       connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 1.5,
                                         "max_delay": 1.0, "ignore_expire": True},
                       command_retry=None)


def close_client(client: KazooClient) -> None:
    for step in (client.stop, client.close):
        try:
            step()
        except Exception:
            log.debug("closing a client", exc_info=True)


def start_client(hosts: str, timeout_s: float, connect_timeout_s: float,
                 stop: threading.Event | None = None, attempts: int = 6) -> KazooClient | None:
    """A started client, or None after ``attempts`` bounded tries (or when stop is set)."""
    for _ in range(attempts):
        if stop is not None and stop.is_set():
            return None
        client = new_client(hosts, timeout_s)
        try:
            client.start(timeout=connect_timeout_s)
            return client
        except Exception:  # noqa: BLE001 - kazoo's timeout, refused...
            close_client(client)
            time.sleep(0.5)
    return None


def setup(hosts: str, cfg: WorkloadConfig, timeout_s: float = 60.0) -> None:
    """Create the parents and register keys (value INIT_VALUE, version 0); bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        client = start_client(hosts, 10.0, 10.0, attempts=1)
        if client is not None:
            try:
                for path in (ROOT, REG, UNIQ, SEQ, EPH):
                    client.ensure_path(path)
                for k in range(cfg.keys):
                    try:
                        client.create(cfg.key_path(k), INIT_VALUE.encode())
                    except NodeExistsError:
                        pass
                return
            except Exception as exc:  # noqa: BLE001
                log.info("setup: %r, retrying", exc)
            finally:
                close_client(client)
        if time.monotonic() >= deadline:
            raise RuntimeError(f"could not set up {ROOT} in {timeout_s:.0f} s")
        time.sleep(1.0)


def error_name(exc: BaseException) -> str:
    if isinstance(exc, KazooTimeoutError):
        return "OperationTimeout(client)"
    return type(exc).__name__


class _Failed:
    """An async result that already failed (the request could not even be sent)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def get(self, timeout: float | None = None) -> Any:
        raise self.exc


class Worker(threading.Thread):
    """One client, one op at a time (see the module rules)."""

    def __init__(self, wid: int, hosts: str, history: History, rng: random.Random,
                 stop: threading.Event, cfg: WorkloadConfig) -> None:
        super().__init__(name=f"jepsen-worker-{wid}", daemon=True)
        self.wid = wid
        self.hosts = hosts
        self.history = history
        self.rng = rng
        self.stop_event = stop
        self.cfg = cfg
        self.generation = 0
        self.counter = 0
        self.versions: dict[int, int] = {}
        self.error: str | None = None

    @property
    def process(self) -> int:
        return self.wid * 1000 + self.generation

    def unique(self) -> str:
        self.counter += 1
        return f"w{self.wid}-{self.counter}"

    def run(self) -> None:
        client = start_client(self.hosts, self.cfg.session_timeout_s, self.cfg.connect_timeout_s,
                              self.stop_event, attempts=1000)
        if client is None:
            self.error = "could not connect"
            return
        try:
            while not self.stop_event.is_set():
                self.one_op(client)
                if self.cfg.think_s:
                    self.stop_event.wait(self.cfg.think_s)
        except Exception as exc:
            self.error = f"worker {self.wid} crashed: {exc!r}"
            log.exception("worker %d", self.wid)
        finally:
            close_client(client)

    def _settle(self, op: Op, pending: list[Any], deadline: float,
                finish: Callable[[Any], Any]) -> None:
        """Wait (until deadline) for the op's async results in turn; record the outcome."""
        try:
            result = None
            for async_result in pending:
                result = async_result.get(timeout=max(0.001, deadline - time.monotonic()))
            self.history.complete(op, OK, finish(result))
        except DEFINITE_FAILURES as exc:
            self.history.complete(op, FAIL, error=error_name(exc))
        except Exception as exc:  # noqa: BLE001 - everything else is indeterminate
            self.history.complete(op, INFO, error=error_name(exc))
            self.generation += 1

    def _start(self, client: KazooClient, f: str) -> tuple[Op, list[Any], Callable[[Any], Any]]:
        """Invoke one op: record it, send its request(s) (not waiting)."""
        invoked: list[Op] = []
        try:
            return self._send(client, f, invoked)
        except Exception as exc:  # noqa: BLE001 - e.g. the client is closing: indeterminate
            failed = _Failed(exc)
            return invoked[0], [failed], lambda got: got

    def _send(self, client: KazooClient, f: str,
              invoked: list[Op]) -> tuple[Op, list[Any], Callable[[Any], Any]]:
        cfg = self.cfg
        real_invoke = self.history.invoke

        def invoke(*args: Any) -> Op:
            op = real_invoke(*args)
            invoked.append(op)
            return op

        if f in ("read", "write", "cas"):
            k = self.rng.randrange(cfg.keys)
            path = cfg.key_path(k)

            def keep_version(version: int) -> int:
                self.versions[k] = version
                return version

            if f == "read":
                op = invoke(self.process, "read", path, None)
                # sync then getData: one session's requests are served in order.
                pending = [client.sync_async(path), client.get_async(path)]
                return op, pending, lambda got: [got[0].decode(), keep_version(got[1].version)]
            value = self.unique()
            if f == "write":
                op = invoke(self.process, "write", path, value)
                return op, [client.set_async(path, value.encode(), -1)], \
                    lambda stat: keep_version(stat.version)
            expected = self.versions.get(k, 0)
            if self.rng.random() < 0.2:
                expected = max(0, expected + self.rng.choice([-1, 1]))
            op = invoke(self.process, "cas", path, [expected, value])
            return op, [client.set_async(path, value.encode(), expected)], \
                lambda stat: keep_version(stat.version)
        value = self.unique()
        if f == "create":
            path = f"{UNIQ}/{value}"
            op = invoke(self.process, "create", path, value)
            return op, [client.create_async(path, value.encode())], lambda created: created
        prefix = f"{SEQ}/s-"
        op = invoke(self.process, "seq-create", prefix, value)
        return op, [client.create_async(prefix, value.encode(), sequence=True)], \
            lambda created: created

    def one_op(self, client: KazooClient) -> None:
        """A batch of 1..max_batch ops of one session in flight together (concurrent in the
        history), then wait for all of them (bounded by op_timeout_s)."""
        cfg = self.cfg
        names = ["read", "write", "cas", "create", "seq-create"]
        weights = [cfg.read, cfg.write, cfg.cas, cfg.create, cfg.seq_create]
        size = self.rng.randint(1, cfg.max_batch)
        started = [self._start(client, f) for f in self.rng.choices(names, weights, k=size)]
        deadline = time.monotonic() + cfg.op_timeout_s
        for op, pending, finish in started:
            self._settle(op, pending, deadline, finish)


class EphemeralWorker(threading.Thread):
    """Sessions that create one ephemeral each and then end: closed, or abandoned (the TCP
    connection is dropped without closeSession, so the session has to expire)."""

    def __init__(self, cluster_addresses: list[str], history: History, rng: random.Random,
                 stop: threading.Event, cfg: WorkloadConfig, process: int = 900_000) -> None:
        super().__init__(name="jepsen-ephemerals", daemon=True)
        self.addresses = cluster_addresses
        self.history = history
        self.rng = rng
        self.stop_event = stop
        self.cfg = cfg
        self.base_process = process
        self.counter = 0
        self.sessions = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.counter += 1
                if self.rng.random() < 0.5:
                    self.closed_session()
                else:
                    self.abandoned_session()
                self.stop_event.wait(self.cfg.ephemeral_every_s)
        except Exception as exc:
            self.error = f"ephemeral worker crashed: {exc!r}"
            log.exception("ephemeral worker")

    def closed_session(self) -> None:
        hosts = ",".join(self.addresses)
        client = start_client(hosts, self.cfg.ephemeral_session_timeout_ms / 1000.0,
                              self.cfg.op_timeout_s, self.stop_event, attempts=1)
        if client is None:
            return
        try:
            session = client.client_id[0] if client.client_id else 0
            name = f"e-{self.counter}"
            path = f"{EPH}/{name}"
            op = self.history.invoke(self.base_process + self.counter, "eph-create", path, name)
            try:
                got = client.create_async(path, name.encode(), ephemeral=True).get(
                    timeout=self.cfg.op_timeout_s)
                self.history.complete(op, OK, [got, session])
            except DEFINITE_FAILURES as exc:
                self.history.complete(op, FAIL, error=error_name(exc))
            except Exception as exc:  # noqa: BLE001
                self.history.complete(op, INFO, error=error_name(exc))
        finally:
            end = self.history.invoke(self.base_process + self.counter, "eph-end",
                                      f"{session:#x}", "close")
            close_client(client)
            self.history.complete(end, OK)
            self.sessions += 1

    def abandoned_session(self) -> None:
        address = self.rng.choice(self.addresses)
        host, _, port = address.rpartition(":")
        timeout = self.cfg.op_timeout_s
        try:
            raw = RawClient(host, int(port), timeout_s=timeout)
        except OSError:
            return
        try:
            try:
                response = raw.handshake(timeout_ms=self.cfg.ephemeral_session_timeout_ms)
            except (OSError, TimeoutError, ConnectionError):
                return
            if response.session_id == 0 or response.timeout_ms <= 0:
                return
            session = response.session_id
            name = f"e-{self.counter}"
            path = f"{EPH}/{name}"
            op = self.history.invoke(self.base_process + self.counter, "eph-create", path, name)
            try:
                raw.send_request(1, OP_CREATE, create_request(path, name.encode(), EPHEMERAL_FLAG))
                reply = raw.recv_reply(timeout)
                while reply.xid != 1:  # skip pings/notifications (none expected)
                    reply = raw.recv_reply(timeout)
                if reply.err == 0:
                    got, _ = read_ustring(reply.body, 0)
                    self.history.complete(op, OK, [got, session])
                elif reply.err in ZK_ERRORS_DEFINITE:
                    self.history.complete(op, FAIL, error=ZK_ERRORS_DEFINITE[reply.err])
                else:
                    self.history.complete(op, INFO, error=f"error code {reply.err}")
            except (OSError, TimeoutError, ConnectionError) as exc:
                self.history.complete(op, INFO, error=type(exc).__name__)
            end = self.history.invoke(self.base_process + self.counter, "eph-end",
                                      f"{session:#x}", "abandon")
            self.history.complete(end, OK)
            self.sessions += 1
        finally:
            raw.close()


_ = OP_CLOSE_SESSION  # (closeSession is what kazoo's stop() sends for the closed sessions)


def read_tree(address: str, root: str = ROOT, timeout_s: float = 10.0,
              batch: int = 200) -> dict[str, list[Any]] | None:
    """{path: [data, version, ephemeralOwner]} of root's subtree read from one member only."""
    client = start_client(address, timeout_s, timeout_s, attempts=2)
    if client is None:
        return None
    try:
        tree: dict[str, list[Any]] = {}
        level = [root]
        while level:
            nxt: list[str] = []
            for i in range(0, len(level), batch):
                chunk = level[i:i + batch]
                datas = [client.get_async(p) for p in chunk]
                kids = [client.get_children_async(p) for p in chunk]
                for path, d, c in zip(chunk, datas, kids, strict=True):
                    try:
                        data, stat = d.get(timeout=timeout_s)
                        children = c.get(timeout=timeout_s)
                    except NoNodeError:
                        continue
                    tree[path] = [(data or b"").decode("utf-8", "replace"), stat.version,
                                  stat.ephemeralOwner]
                    base = path.rstrip("/")
                    nxt.extend(f"{base}/{child}" for child in sorted(children))
            level = nxt
        return tree
    except Exception as exc:  # noqa: BLE001
        log.info("read_tree %s: %r", address, exc)
        return None
    finally:
        close_client(client)

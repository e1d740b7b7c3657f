"""Quorum TLS (sslQuorum, portUnification, ssl.quorum.*): pyzk-only and mixed ensembles.

Every member gets the same zoo.cfg: a PKCS12 key store whose certificate (signed by a
throw-away CA) names 127.0.0.1 and localhost, and a JKS trust store holding that CA, with
Apache's defaults otherwise (TLSv1.2, clientAuth need, hostname verification on).

What is shown, on both kinds of member:
- the ensemble elects, replicates and fails over with every quorum and election link in TLS;
- the ports speak TLS only: a TLS client with a certificate of the CA completes a handshake
  and is kept, one without a certificate, with one of another CA or with one naming another
  host is refused, and plaintext gets no plaintext answer (a control shows the same plaintext
  probe does get an election notification from a port that accepts plaintext);
- a member whose certificate the others do not trust never joins while they take 600 writes,
  and joins (catching up by a SNAP or a long DIFF over TLS) once it has a good one;
- portUnification rolls TLS into a live ensemble: plaintext, then TLS dialed one member at a
  time while every port takes both, then TLS only;
- a capture: one follower reaches the leader's quorum port through a recording relay; the
  bytes both ways are TLS records and a value written through the leader does not show in
  them, while without TLS the same capture shows it (the control).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pyzk.quorum.messages import encode_initial_message
from pyzk.server.quorum_tls import looks_like_tls
from tests.compat.conftest import target_kinds_from_env
from tests.compat.targets import (
    Ensemble,
    Server,
    TargetStartError,
    four_letter_word,
    serving_mode,
    start_mixed,
    start_target,
    zoo_cfg_text,
)
from tests.compat.test_mixed import (
    client,
    leader_of,
    roles,
    start_with_leader,
    wait_for,
    wait_leader,
    walks_agree,
)
from tests.compat.tls_certs import Authority, authority, quorum_tls_cfg

pytestmark = pytest.mark.compat

J, P = "apache", "pyzk"
KINDS = set(target_kinds_from_env())
NEEDS_PYZK = pytest.mark.skipif(P not in KINDS, reason="needs pyzk in PYZK_TARGETS")
NEEDS_BOTH = pytest.mark.skipif(not {J, P} <= KINDS, reason="mixed ensembles need apache and pyzk")

CFG: dict[str, str | None] = {"tickTime": "200", "initLimit": "20", "syncLimit": "10",
                              "maxSessionTimeout": "60000"}
START_TIMEOUT_S = 60.0
STEP_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 5.0
PROBE_KEPT_S = 1.5  # a connection the server keeps this long, silent, was accepted
PLAINTEXT_CLOSE_S = 8.0  # Apache waits up to 5 s for the first bytes before deciding
ROGUE_WATCH_S = 8.0  # 40 ticks: an election round and a sync attempt, many times over
FILL_NODES = 600
FILL_NODE_BYTES = 1024
FILL_BATCH = 100


class Certs:
    """The CA, its trust store, and member key stores: good, untrusted, naming another host."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca: Authority = authority("Quorum CA")
        self.rogue_ca: Authority = authority("Rogue CA")
        self.ca_pem = self.ca.pem(workdir / "ca.pem")
        self.trust = self.ca.trust_store(workdir / "trust.jks")
        self.good = self.ca.member(workdir / "member.p12", "member")
        self.untrusted = self.rogue_ca.member(workdir / "rogue.p12", "member")
        self.wrong_name = self.ca.member(workdir / "elsewhere.p12", "elsewhere", ips=("10.255.0.1",),
                                         dns=("elsewhere.invalid",))
        # The rogue trusts the real CA: it is the others who must refuse it.
        self.rogue_trust = self.ca.trust_store(workdir / "rogue-trust.jks", self.rogue_ca)

    def cfg(self, key_store: Path | None = None, trust_store: Path | None = None,
            **extra: str | None) -> dict[str, str | None]:
        cfg = dict(CFG)
        cfg.update(quorum_tls_cfg(key_store or self.good, trust_store or self.trust))
        cfg.update(extra)
        return cfg


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("quorum-tls-certs"))


# ---- probes ---------------------------------------------------------------------------------


def tls_probe(port: int, certs: Certs, client_cert: Path | None) -> str:
    """'kept' if a TLSv1.2 client (trusting only the CA, presenting `client_cert`'s PEM)
    completes the handshake and the server keeps the connection; else 'refused: ...'."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(certs.ca_pem))
    if client_cert is not None:
        context.load_cert_chain(str(client_cert.with_suffix(".pem")))
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT_S) as raw:
        try:
            tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        except (ssl.SSLError, OSError) as exc:
            return f"refused: {exc}"
        with tls:
            tls.settimeout(PROBE_KEPT_S)
            try:
                data = tls.recv(1)
            except TimeoutError:
                return "kept"
            except (ssl.SSLError, OSError) as exc:
                return f"refused: {exc}"
            return f"refused: closed after {data!r}" if not data else f"spoke {data!r}"


def plaintext_probe(server: Server, as_server: Server) -> bytes:
    """Connect to `server`'s election port in plaintext, introduce ourselves as `as_server`
    (a larger sid, whose connection a plaintext port keeps and answers with its last
    notification) and return what comes back until the server closes (bounded)."""
    received = b""
    with socket.create_connection(("127.0.0.1", server.election_port), timeout=PROBE_TIMEOUT_S) as sock:
        sock.sendall(encode_initial_message(as_server.server_id, f"127.0.0.1:{as_server.election_port}"))
        deadline = time.monotonic() + PLAINTEXT_CLOSE_S
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                break
            except OSError:  # reset
                return received
            if not chunk:
                return received
            received += chunk
            if len(received) >= 4:
                break  # a frame (plaintext) or a record (TLS) started: enough to tell
    return received


def assert_tls_only(server: Server, port: int, certs: Certs, larger: Server) -> None:
    what = f"{server.kind} server {server.server_id} port {port}"
    assert tls_probe(port, certs, certs.good) == "kept", what
    for name, cert in (("no certificate", None), ("another CA", certs.untrusted),
                       ("another host's name", certs.wrong_name)):
        outcome = tls_probe(port, certs, cert)
        assert outcome.startswith("refused"), f"{what}, {name}: {outcome}"
    if port == server.election_port:
        answer = plaintext_probe(server, larger)
        # Nothing, or a TLS alert record (0x15 0x03): never a plaintext frame.
        assert answer == b"" or answer.startswith(b"\x15\x03"), f"{what}: plaintext answered {answer!r}"


def assert_accepts_plaintext(server: Server, larger: Server) -> None:
    """The control for the plaintext probe: a port taking plaintext sends a notification
    frame (a 4-byte length, then the notification) to a larger sid."""
    answer = plaintext_probe(server, larger)
    assert len(answer) >= 4 and not answer.startswith(b"\x15\x03"), (server.kind, answer)


# ---- ensemble helpers -----------------------------------------------------------------------


def mntr_field(server: Server, name: str) -> str | None:
    try:
        reply = four_letter_word(server.client_port, "mntr")
    except OSError:
        return None
    for line in reply.splitlines():
        key, _, value = line.partition("\t")
        if key == name:
            return value.strip()
    return None


def write_and_agree(ens: Ensemble, path: str, count: int) -> None:
    """`count` sequential creates through the running members; then every running member
    holds the same tree under `path` (after sync), with all of them in it."""
    running = [s for s in ens.servers if s.running]
    zk = client(",".join(s.address for s in running))
    try:
        zk.ensure_path(path)
        before = len(zk.get_children(path))
        for index in range(count):
            zk.create(f"{path}/n", f"value {index}".encode(), sequence=True)
    finally:
        zk.stop()
        zk.close()
    tree = walks_agree(Ensemble(ens.kind, running, ens.workdir), path)
    assert len(tree) == 1 + before + count, sorted(tree)
    assert sum(data == f"value {count - 1}".encode() for data, *_ in tree.values()) >= 1


def rewrite_cfg(ens: Ensemble, server: Server, cfg: dict[str, str | None]) -> None:
    server.config_path.write_text(zoo_cfg_text(server, ens.servers, cfg))


def check_rogue_refused(ens: Ensemble, rogue: Server, certs: Certs, good_cfg: dict[str, str | None]) -> str:
    """`rogue` restarts with a certificate of another CA: it never joins while the others take
    writes; with its good certificate again it joins and holds them. Returns the Java members'
    log lines written from its restoration on."""
    return check_refused_then_admitted(
        ens, rogue, lambda: rewrite_cfg(ens, rogue, certs.cfg(certs.untrusted, certs.rogue_trust)),
        lambda: rewrite_cfg(ens, rogue, good_cfg))


def check_refused_then_admitted(ens: Ensemble, rogue: Server, make_rogue: Callable[[], None],
                                restore: Callable[[], None]) -> str:
    """Restart `rogue` after `make_rogue()`: it must never serve nor be counted a synced
    follower while the others take FILL_NODES writes (more than the committed-log window);
    then after `restore()` it syncs and holds them. Returns the Java members' log lines
    written from its restoration on."""
    leader = leader_of(ens)
    assert rogue is not leader
    rogue.stop()
    wait_for(lambda: mntr_field(leader, "zk_synced_followers") == "1", STEP_TIMEOUT_S,
             "the leader to count one synced follower")
    make_rogue()
    rogue.start(wait=False)
    fill(ens, "/refused-fill", FILL_NODES)
    deadline = time.monotonic() + ROGUE_WATCH_S
    while time.monotonic() < deadline:
        assert rogue.running, f"the refused {rogue.kind} member exited"
        assert serving_mode(rogue.client_port) is None, f"the refused {rogue.kind} member serves: {roles(ens)}"
        assert mntr_field(leader, "zk_synced_followers") == "1"
        time.sleep(0.2)
    assert serving_mode(leader.client_port) == "leader"
    rogue.stop()
    restore()
    offsets = {s.server_id: s.log_path.stat().st_size for s in ens.servers}
    rogue.start(timeout_s=START_TIMEOUT_S)
    wait_for(lambda: mntr_field(leader, "zk_synced_followers") == "2", STEP_TIMEOUT_S,
             "the restored member to sync")
    tree = walks_agree(ens, "/refused-fill")
    assert len(tree) == 1 + FILL_NODES
    java = [s for s in ens.servers if s.kind == J]
    return "".join(s.log_path.read_bytes()[offsets[s.server_id]:].decode(errors="replace") for s in java)


def fill(ens: Ensemble, path: str, count: int) -> None:
    """`count` nodes of FILL_NODE_BYTES under `path` through the running members, pipelined:
    more txns than the committed-log window (500), so a member that missed them gets a SNAP."""
    zk = client(",".join(s.address for s in ens.servers if s.running and serving_mode(s.client_port)))
    try:
        zk.ensure_path(path)
        for start in range(0, count, FILL_BATCH):
            pending = [zk.create_async(f"{path}/{index:05d}", bytes([index % 251]) * FILL_NODE_BYTES)
                       for index in range(start, min(count, start + FILL_BATCH))]
            for result in pending:
                result.get(timeout=30)
    finally:
        zk.stop()
        zk.close()


def fail_over(ens: Ensemble, path: str) -> Server:
    """kill -9 the leader; the other two elect one of them and take writes; the old leader
    comes back as a follower holding the same tree."""
    old = leader_of(ens)
    old.kill9()
    new = wait_leader(ens)
    assert new is not old
    write_and_agree(ens, path, 5)
    old.start(timeout_s=START_TIMEOUT_S)
    wait_leader(ens)
    write_and_agree(ens, path, 5)
    return new


def larger_than(ens: Ensemble, server: Server) -> Server:
    return ens.servers[-1] if server is not ens.servers[-1] else ens.servers[0]


# ---- tests ----------------------------------------------------------------------------------


@NEEDS_PYZK
def test_pyzk_ensemble_over_tls(certs: Certs, tmp_path: Path) -> None:
    cfg = certs.cfg()
    with start_target(P, 3, cfg, workdir=tmp_path, start_timeout_s=START_TIMEOUT_S) as ens:
        leader = wait_leader(ens)
        write_and_agree(ens, "/tls", 20)
        for server in ens.servers:
            assert_tls_only(server, server.election_port, certs, larger_than(ens, server))
        assert_tls_only(leader, leader.quorum_port, certs, larger_than(ens, leader))
        check_rogue_refused(ens, ens.servers[0] if leader is not ens.servers[0] else ens.servers[1], certs, cfg)
        fail_over(ens, "/tls-failover")
        logs = "".join(s.log_path.read_text(errors="replace") for s in ens.servers)
        assert "Accepted TLS connection from" in logs and "SSL handshake complete with" in logs
        assert "Refused a quorum connection from" in logs  # the rogue's and the probes'


@NEEDS_BOTH
# One tuple per case, not bare kind names: a bare "apache" would put a mixed case in the
# apache column of the matrix (conftest.target_param); a tuple makes it a comparison.
@pytest.mark.parametrize("mix", [([J, P, P], P), ([P, J, J], J)], ids=["pyzk-leads-java", "java-leads-pyzk"])
def test_mixed_ensemble_over_tls(certs: Certs, mix: tuple[list[str], str], tmp_path: Path) -> None:
    kinds, leader_kind = mix
    cfg = certs.cfg()
    ens = start_with_leader(kinds, lambda s: s.kind == leader_kind, f"no {leader_kind} server", tmp_path, cfg)
    with ens:
        leader = leader_of(ens)
        write_and_agree(ens, "/tls", 20)
        for server in ens.servers:
            assert_tls_only(server, server.election_port, certs, larger_than(ens, server))
        assert_tls_only(leader, leader.quorum_port, certs, larger_than(ens, leader))
        # The odd member (server 1) with an untrusted certificate: refused by the other kind.
        sync_log = check_rogue_refused(ens, ens.servers[0], certs, cfg)
        # The restored member caught up 600 txns over TLS: as a Java learner (a SNAP from pyzk)
        # or from a Java leader (its log names the learner it synchronizes).
        assert "Getting a snapshot from leader" in sync_log or "Synchronizing with Learner sid: 1 " in sync_log
        new_leader = fail_over(ens, "/tls-failover")
        assert new_leader.kind == kinds[1]  # the other member of the leader's kind took over...
        assert ens.servers[0].kind != new_leader.kind  # ...and leads the other kind


@NEEDS_BOTH
def test_port_unification_rolls_tls_into_a_live_mixed_ensemble(certs: Certs, tmp_path: Path) -> None:
    """Apache's documented upgrade: portUnification everywhere, then sslQuorum one member at a
    time, then portUnification off one member at a time; the ensemble serves throughout."""
    plain = certs.cfg(sslQuorum="false", portUnification="true")
    unified_tls = certs.cfg(portUnification="true")
    tls_only = certs.cfg()
    with start_mixed([P, J, P], plain, workdir=tmp_path, start_timeout_s=START_TIMEOUT_S) as ens:
        wait_leader(ens)
        write_and_agree(ens, "/roll", 5)
        for server in ens.servers[:2]:  # both kinds take plaintext and TLS
            assert_accepts_plaintext(server, ens.servers[2])
            assert tls_probe(server.election_port, certs, certs.good) == "kept"
        steps: list[tuple[str, dict[str, str | None]]] = [("sslQuorum", unified_tls), ("TLS only", tls_only)]
        for label, cfg in steps:
            for server in ens.servers:
                server.stop()
                rewrite_cfg(ens, server, cfg)
                server.start(timeout_s=START_TIMEOUT_S)
                wait_leader(ens)
                write_and_agree(ens, f"/roll-{label.replace(' ', '-')}-{server.server_id}", 3)
        for server in ens.servers:
            assert_tls_only(server, server.election_port, certs, larger_than(ens, server))


@NEEDS_PYZK
@pytest.mark.parametrize(("extra", "reason"), [
    ({"ssl.quorum.keyStore.location": "/nonexistent/member.p12"}, "/nonexistent/member.p12"),
    ({"ssl.quorum.keyStore.password": "wrong"}, "ssl.quorum.keyStore.location"),
    ({"sslQuorumReloadCertFiles": "true"}, "sslQuorumReloadCertFiles"),
    ({"ssl.quorum.crl": "true"}, "certificate revocation checks"),
], ids=["missing-key-store", "wrong-password", "reload-cert-files", "crl"])
def test_quorum_tls_settings_pyzk_cannot_honour_stop_start_up(
        certs: Certs, extra: dict[str, str | None], reason: str, tmp_path: Path) -> None:
    with pytest.raises(TargetStartError) as caught:
        start_target(P, 3, certs.cfg(**extra), workdir=tmp_path, start_timeout_s=20.0).stop()
    assert reason in str(caught.value)



# ---- a capture of the quorum link -------------------------------------------------------------

RELAY_BYTES_MAX = 16 * 1024 * 1024
MARKER = b"PLAINTEXT-MARKER-0f9e3c1a"


class RecordingRelay:
    """A TCP relay on a free loopback port to `target_port` that records what passes each way
    (bounded; daemon threads; closed by `close`)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream = bytearray()  # follower -> leader
        self.downstream = bytearray()  # leader -> follower
        self.sockets: list[socket.socket] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=PROBE_TIMEOUT_S)
            except OSError:
                return
            server.settimeout(None)
            self.connections += 1
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, self.upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.downstream), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, record: bytearray) -> None:
        try:
            while chunk := source.recv(65536):
                if len(record) < RELAY_BYTES_MAX:
                    record += chunk
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            sock.close()


def tls_records_only(stream: bytes) -> bool:
    """Whether `stream` is a sequence of whole TLS records (the last may be cut short)."""
    position, records = 0, 0
    while position + 5 <= len(stream):
        if not looks_like_tls(stream[position:position + 5]):
            return False
        position += 5 + int.from_bytes(stream[position + 3:position + 5], "big")
        records += 1
    return records > 0


def capture_replication(ens: Ensemble, follower: Server, cfg: dict[str, str | None]) -> RecordingRelay:
    """Restart `follower` dialing the leader through a relay, write MARKER through the leader
    and read it back through `follower`; returns the relay with what it recorded."""
    leader = leader_of(ens)
    assert follower is not leader
    relay = RecordingRelay(leader.quorum_port)
    follower.stop()
    text = zoo_cfg_text(follower, ens.servers, cfg)
    real = f"server.{leader.server_id}=127.0.0.1:{leader.quorum_port}:{leader.election_port}"
    assert real in text
    follower.config_path.write_text(
        text.replace(real, f"server.{leader.server_id}=127.0.0.1:{relay.port}:{leader.election_port}"))
    follower.start(timeout_s=START_TIMEOUT_S)
    wait_for(lambda: mntr_field(leader, "zk_synced_followers") == "2", STEP_TIMEOUT_S, "the relayed follower")
    assert relay.connections >= 1
    zk = client(leader.address)
    try:
        zk.create("/captured", MARKER * 4)
    finally:
        zk.stop()
        zk.close()
    zk = client(follower.address)
    try:
        zk.sync("/captured")
        assert zk.get("/captured")[0] == MARKER * 4
    finally:
        zk.stop()
        zk.close()
    return relay


@NEEDS_PYZK
@pytest.mark.parametrize("case", [(P, True), (J, True), (P, False)],
                         ids=["pyzk-follower-tls", "java-follower-tls", "pyzk-follower-plaintext-control"])
def test_capture_of_the_quorum_link(certs: Certs, case: tuple[str, bool], tmp_path: Path) -> None:
    follower_kind, tls = case  # a tuple: see test_mixed_ensemble_over_tls
    if follower_kind == J and J not in KINDS:
        pytest.skip("needs apache in PYZK_TARGETS")
    cfg = certs.cfg() if tls else dict(CFG)
    ens = start_with_leader([follower_kind, P, P], lambda s: s.server_id == 3, "server 3", tmp_path, cfg)
    with ens:
        relay = capture_replication(ens, ens.servers[0], cfg)
        try:
            upstream, downstream = bytes(relay.upstream), bytes(relay.downstream)
        finally:
            relay.close()
        assert upstream and downstream
        if tls:
            assert tls_records_only(upstream) and tls_records_only(downstream)
            assert upstream[:1] == b"\x16" and downstream[:1] == b"\x16"  # handshakes first
            assert MARKER not in upstream + downstream
        else:
            assert not tls_records_only(downstream)
            assert MARKER in downstream  # the PROPOSAL carried it in the clear

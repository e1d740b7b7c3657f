"""Regenerate the golden frames in this folder from Apache ZooKeeper 3.8 and from kazoo.

Usage (from the repository root, with the Debian packages `zookeeper` and `zookeeper-bin`
installed and `java` on PATH):

    python tests/unit/jute/golden/capture.py            # server captures + kazoo frames
    python tests/unit/jute/golden/capture.py --kazoo    # kazoo frames only (no server)

What it does:
  - starts one standalone Apache ZooKeeper on 127.0.0.1 on a free port, with a fresh
    temporary dataDir, and stops it (by its PID) when done;
  - talks to it with a raw socket client built here from `struct` alone (never from jute, so
    a codec bug cannot shape its own golden bytes), and stores every server frame it wants
    exactly as received, length prefix included, as zk_<name>.bin;
  - after stopping the server, stores the txn log's FileHeader + first record
    (zk_txnlog_first_record.bin) and the whole fresh snapshot (zk_snapshot_0.bin);
  - runs the Apache ZooKeeper Java client (JavaClientDriver.java, via the java source
    launcher) through a recording proxy that cuts its connection twice, and stores request
    frames the Java client wrote (its ConnectRequests, setWatches, setWatches2, addWatch, and a
    create whose ACL id holds U+1F600 in Java's CESU-8) as java_<name>.bin;
  - stores request frames built by kazoo's own serializers and framing
    (kazoo.protocol.serialization + ConnectionHandler._submit) as kazoo_<name>.bin.

The server's log goes to <dataDir>/server.out; the dataDir is removed on success and kept on
failure. Session ids, passwords and times differ from run to run, while xids and zxids follow
from the fixed request sequence; tests/unit/jute/test_golden.py checks only what a run does
not change, plus byte-identical re-encoding.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent
ZOOKEEPER_CLASSPATH = ":".join(
    [
        "/etc/zookeeper/conf",
        "/usr/share/java/zookeeper.jar",
        "/usr/share/java/zookeeper-jute.jar",
        "/usr/share/java/slf4j-api.jar",
        "/usr/share/java/slf4j-simple.jar",
    ]
)
JAVA_CLIENT_CLASSPATH = ":".join(
    [
        "/usr/share/java/zookeeper.jar",
        "/usr/share/java/zookeeper-jute.jar",
        "/usr/share/java/slf4j-api.jar",
        "/usr/share/java/slf4j-nop.jar",
    ]
)
JAVA_CLIENT_SECONDS_MAX = 120.0
PROXY_CONNECTIONS_MAX = 16
SERVER_START_SECONDS_MAX = 60.0
SOCKET_TIMEOUT_SECONDS = 10.0
SESSION_TIMEOUT_MS = 30000

# opcodes and flags, written out here so this script stays independent of jute/codes.py
OP_CREATE, OP_DELETE, OP_EXISTS, OP_GET_DATA, OP_SET_DATA = 1, 2, 3, 4, 5
OP_GET_ACL, OP_GET_CHILDREN, OP_PING, OP_GET_CHILDREN2, OP_CHECK = 6, 8, 11, 12, 13
OP_MULTI, OP_CREATE2, OP_CREATE_CONTAINER, OP_MULTI_READ = 14, 15, 19, 22
OP_SET_WATCHES, OP_ADD_WATCH, OP_WHO_AM_I, OP_SET_WATCHES2, OP_CLOSE_SESSION = 101, 106, 107, 105, -11
PERMS_ALL, PERMS_READ = 31, 1
CREATE_FLAGS_CONTAINER = 4
ADD_WATCH_MODE_PERSISTENT_RECURSIVE = 1


def _int(value: int) -> bytes:
    return struct.pack(">i", value)


def _long(value: int) -> bytes:
    return struct.pack(">q", value)


def _bool(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def _buffer(value: bytes | None) -> bytes:
    return _int(-1) if value is None else _int(len(value)) + value


def _text(value: str) -> bytes:
    return _buffer(value.encode("utf-8"))


def _acl(perms: int, scheme: str, ident: str) -> bytes:
    return _int(perms) + _text(scheme) + _text(ident)


def _acl_vector(acls: list[bytes]) -> bytes:
    return _int(len(acls)) + b"".join(acls)


OPEN_ACL = [_acl(PERMS_ALL, "world", "anyone")]


def _create_body(path: str, data: bytes, acls: list[bytes], flags: int) -> bytes:
    return _text(path) + _buffer(data) + _acl_vector(acls) + _int(flags)


def _multi_header(op: int, done: bool, err: int) -> bytes:
    return _int(op) + _bool(done) + _int(err)


def _multi_body(ops: list[tuple[int, bytes]]) -> bytes:
    return b"".join(_multi_header(op, False, -1) + body for op, body in ops) + _multi_header(-1, True, -1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RawConnection:
    """One client connection; reads whole frames (length prefix kept)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_SECONDS)
        self.xid = 0

    def send_frame(self, body: bytes) -> None:
        self.sock.sendall(_int(len(body)) + body)

    def _read_exactly(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("server closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_frame(self) -> bytes:
        head = self._read_exactly(4)
        (length,) = struct.unpack(">i", head)
        return head + self._read_exactly(length)

    def connect(self, read_only_byte: bool) -> bytes:
        body = _int(0) + _long(0) + _int(SESSION_TIMEOUT_MS) + _long(0) + _buffer(bytes(16))
        if read_only_byte:
            body += _bool(False)
        self.send_frame(body)
        return self.read_frame()

    def request(self, op: int, body: bytes, xid: int | None = None) -> None:
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_frame(_int(xid) + _int(op) + body)

    def call(self, op: int, body: bytes) -> bytes:
        self.request(op, body)
        return self.read_frame()

    def close(self) -> None:
        self.sock.close()


def _write(name: str, frame: bytes) -> None:
    (GOLDEN_DIR / f"{name}.bin").write_bytes(frame)
    print(f"  {name}.bin  {len(frame)} bytes")


def _start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    cfg = data_dir / "zoo.cfg"
    cfg.write_text(
        "tickTime=2000\n"
        f"dataDir={data_dir}\n"
        f"clientPort={port}\n"
        "clientPortAddress=127.0.0.1\n"
        "admin.enableServer=false\n"
        "4lw.commands.whitelist=srvr\n"
    )
    server = subprocess.Popen(
        ["java", "-cp", ZOOKEEPER_CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)],
        stdout=(data_dir / "server.out").open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + SERVER_START_SECONDS_MAX
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                # srvr, unlike ruok, answers "Mode: ..." only once the server takes sessions
                sock.sendall(b"srvr")
                if b"Mode:" in sock.recv(4096):
                    return server
        except OSError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.2)
    server.kill()
    server.wait(timeout=10)
    raise RuntimeError(f"ZooKeeper did not start; see {data_dir / 'server.out'}")


def _stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=15)


def _capture_conversation(port: int) -> None:
    old = RawConnection(port)
    _write("zk_connect_response_old_client", old.connect(read_only_byte=False))
    old.close()

    conn = RawConnection(port)
    _write("zk_connect_response", conn.connect(read_only_byte=True))
    # exists /a with a watch: NONODE header only, and arms the NodeCreated notification
    _write("zk_exists_nonode_reply", conn.call(OP_EXISTS, _text("/a") + _bool(True)))
    conn.request(OP_CREATE, _create_body("/a", b"hello", OPEN_ACL, 0))
    _write("zk_notification_node_created", conn.read_frame())
    _write("zk_create_reply", conn.read_frame())
    _write("zk_create_nodeexists_reply", conn.call(OP_CREATE, _create_body("/a", b"x", OPEN_ACL, 0)))
    acls = [_acl(PERMS_READ, "world", "anyone"), _acl(PERMS_ALL, "ip", "127.0.0.1")]
    _write("zk_create2_reply", conn.call(OP_CREATE2, _create_body("/a/c", b"", acls, 0)))
    _write("zk_get_data_reply", conn.call(OP_GET_DATA, _text("/a") + _bool(False)))
    _write("zk_exists_reply", conn.call(OP_EXISTS, _text("/a") + _bool(False)))
    conn.call(OP_CREATE, _create_body("/a/b", b"\x00\xff", OPEN_ACL, 0))
    _write("zk_get_children2_reply", conn.call(OP_GET_CHILDREN2, _text("/a") + _bool(False)))
    _write("zk_get_acl_reply", conn.call(OP_GET_ACL, _text("/a/c")))
    multi_ok = _multi_body(
        [
            (OP_CREATE, _create_body("/m1", b"1", OPEN_ACL, 0)),
            (OP_CREATE2, _create_body("/m2", b"2", OPEN_ACL, 0)),
            (OP_CREATE_CONTAINER, _create_body("/m3", b"3", OPEN_ACL, CREATE_FLAGS_CONTAINER)),
            (OP_SET_DATA, _text("/a") + _buffer(b"world") + _int(-1)),
            (OP_CHECK, _text("/a") + _int(1)),
            (OP_DELETE, _text("/m1") + _int(-1)),
        ]
    )
    _write("zk_multi_reply", conn.call(OP_MULTI, multi_ok))
    multi_failed = _multi_body(
        [
            (OP_CREATE, _create_body("/b", b"", OPEN_ACL, 0)),
            (OP_SET_DATA, _text("/nope") + _buffer(b"") + _int(-1)),
            (OP_DELETE, _text("/a") + _int(-1)),
        ]
    )
    _write("zk_multi_failed_reply", conn.call(OP_MULTI, multi_failed))
    multi_read = _multi_body(
        [
            (OP_GET_DATA, _text("/a") + _bool(False)),
            (OP_GET_CHILDREN, _text("/a") + _bool(False)),
            (OP_GET_DATA, _text("/nope") + _bool(False)),
        ]
    )
    _write("zk_multi_read_reply", conn.call(OP_MULTI_READ, multi_read))
    _write("zk_who_am_i_reply", conn.call(OP_WHO_AM_I, b""))
    _write(
        "zk_add_watch_reply", conn.call(OP_ADD_WATCH, _text("/a") + _int(ADD_WATCH_MODE_PERSISTENT_RECURSIVE))
    )
    conn.request(OP_SET_DATA, _text("/a/b") + _buffer(b"v2") + _int(-1))
    _write("zk_notification_node_data_changed", conn.read_frame())
    _write("zk_set_data_reply", conn.read_frame())
    conn.request(OP_PING, b"", xid=-2)
    _write("zk_ping_reply", conn.read_frame())
    # setWatches with an ordinary xid, as the 3.8 Java client sends it; relativeZxid 9 is the
    # last zxid so far, so nothing fires and the reply comes alone
    no_paths = _int(0)
    set_watches = _long(9) + _int(1) + _text("/a") + no_paths + no_paths
    _write("zk_set_watches_reply", conn.call(OP_SET_WATCHES, set_watches))
    _write("zk_close_session_reply", conn.call(OP_CLOSE_SESSION, b""))
    conn.close()


class RecordingProxy:
    """Forwards 127.0.0.1 connections to the server and records what each client sent."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sent_by_client: list[bytearray] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        for _ in range(PROXY_CONNECTIONS_MAX):
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(
                ("127.0.0.1", self.upstream_port), timeout=SOCKET_TIMEOUT_SECONDS
            )
            upstream.settimeout(None)
            recorded = bytearray()
            with self._lock:
                self.sent_by_client.append(recorded)
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, recorded), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, recorded: bytearray | None) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                if recorded is not None:
                    recorded += data
                sink.sendall(data)
            except OSError:
                break
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Drop every open connection, as a network failure would."""
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def _split_frames(stream: bytes) -> list[bytes]:
    frames, pos = [], 0
    while pos + 4 <= len(stream):
        (length,) = struct.unpack_from(">i", stream, pos)
        frames.append(stream[pos : pos + 4 + length])
        pos += 4 + length
    return frames


def _request_kind(frame: bytes) -> tuple[int, int]:
    return struct.unpack_from(">ii", frame, 4) if len(frame) >= 12 else (0, 0)


def _capture_java_client(port: int) -> None:
    proxy = RecordingProxy(port)
    driver = GOLDEN_DIR / "JavaClientDriver.java"
    client = subprocess.Popen(
        ["java", "-cp", JAVA_CLIENT_CLASSPATH, str(driver), f"127.0.0.1:{proxy.port}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None and client.stdout is not None
    try:
        # the driver bounds each of its waits, and exits (closing stdout) if one runs out
        for line in client.stdout:
            print(f"  java client: {line.strip()}")
            if line.startswith("CUT"):
                proxy.cut()
                client.stdin.write("\n")
                client.stdin.flush()
            elif line.startswith("DONE"):
                break
        if client.wait(timeout=JAVA_CLIENT_SECONDS_MAX) != 0:
            raise RuntimeError("the Java client driver failed")
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=15)
        proxy.close()

    first, after_cut1, after_cut2 = (_split_frames(bytes(sent)) for sent in proxy.sent_by_client[:3])
    _write("java_connect_request", first[0])
    _write("java_connect_request_resume", after_cut1[0])
    (cesu_create,) = [f for f in first if _request_kind(f)[1] == OP_CREATE and b"/j/cesu" in f]
    _write("java_create_cesu8_acl_id", cesu_create)
    # matched by type alone: the 3.8 client's NIO socket overwrites the -8 xid with a fresh one
    (set_watches,) = [f for f in after_cut1 if _request_kind(f)[1] == OP_SET_WATCHES]
    _write("java_set_watches", set_watches)
    (add_watch,) = [f for f in after_cut1 if _request_kind(f)[1] == OP_ADD_WATCH]
    _write("java_add_watch", add_watch)
    (set_watches2,) = [f for f in after_cut2 if _request_kind(f)[1] == OP_SET_WATCHES2]
    _write("java_set_watches2", set_watches2)


def _capture_files(data_dir: Path) -> None:
    version_dir = data_dir / "version-2"
    log = (version_dir / "log.1").read_bytes()
    header_bytes = 16
    (entry_length,) = struct.unpack_from(">i", log, header_bytes + 8)
    record_end = header_bytes + 8 + 4 + entry_length + 1
    _write("zk_txnlog_first_record", log[:record_end])
    _write("zk_snapshot_0", (version_dir / "snapshot.0").read_bytes())


def capture_server() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="pyzk-golden-"))
    port = _free_port()
    server = _start_server(data_dir, port)
    print(f"Apache ZooKeeper pid {server.pid} on 127.0.0.1:{port}, dataDir {data_dir}")
    try:
        _capture_conversation(port)
        _capture_java_client(port)
    finally:
        _stop_server(server)
    _capture_files(data_dir)
    shutil.rmtree(data_dir)


class _FrameRecorder:
    """Stands in for kazoo's ConnectionHandler so its own _submit frames the request."""

    def __init__(self) -> None:
        import logging

        self.logger = logging.getLogger("capture")
        self.frames: list[bytes] = []

    def _write(self, msg: bytes, timeout: float) -> None:
        self.frames.append(bytes(msg))


def capture_kazoo() -> None:
    from kazoo.protocol import serialization as ks
    from kazoo.protocol.connection import ConnectionHandler
    from kazoo.security import ACL, Id

    open_acl = [ACL(PERMS_ALL, Id("world", "anyone"))]
    requests = {
        "connect": (ks.Connect(0, 0x1234, 10000, 0, bytes(16), False), None),
        "connect_read_only": (ks.Connect(0, 0, 10000, 0x0100000000001234, bytes(range(16)), True), None),
        "create": (ks.Create("/a", b"hello", open_acl, 0), 3),
        "create_ephemeral_sequential_null_data": (ks.Create("/a/s-", None, open_acl, 3), 4),
        "create2": (ks.Create2("/x", b"", [ACL(PERMS_READ, Id("digest", "u:h+v="))], 0), 5),
        "delete": (ks.Delete("/a", -1), 6),
        "exists_watch": (ks.Exists("/a", True), 7),
        "get_data": (ks.GetData("/a", False), 8),
        "set_data": (ks.SetData("/a", b"\x00\x01", 4), 9),
        "get_acl": (ks.GetACL("/a"), 10),
        "set_acl": (ks.SetACL("/a", open_acl, -1), 11),
        "get_children_watch": (ks.GetChildren("/", True), 12),
        "get_children2": (ks.GetChildren2("/a", False), 13),
        "sync": (ks.Sync("/a"), 14),
        "check_version": (ks.CheckVersion("/a", 2), 15),
        "transaction": (
            ks.Transaction(
                [
                    ks.Create("/t", b"t", open_acl, 0),
                    ks.SetData("/t", b"u", -1),
                    ks.CheckVersion("/t", 1),
                    ks.Delete("/t", -1),
                ]
            ),
            16,
        ),
        "reconfig_nulls": (ks.Reconfig(None, None, "server.1=127.0.0.1:2888:3888;2181", -1), 17),
        "auth": (ks.Auth(0, "digest", "user:pw"), -4),
        "sasl": (ks.SASL(b"\x01\x02"), 18),
        "ping": (ks.PingInstance, -2),
        "close": (ks.CloseInstance, 19),
    }
    for name, (request, xid) in requests.items():
        recorder = _FrameRecorder()
        ConnectionHandler._submit(recorder, request, 1.0, xid)  # type: ignore[arg-type]
        (frame,) = recorder.frames
        _write(f"kazoo_{name}", frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kazoo", action="store_true", help="only regenerate the kazoo frames")
    args = parser.parse_args()
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    if not args.kazoo:
        capture_server()
    capture_kazoo()


if __name__ == "__main__":
    main()

"""Random and mutated frames never hurt anyone else: a second, healthy client keeps being served.

Each case opens a fresh connection, performs a valid handshake, then sends one hostile frame
(random bytes, or a valid request with bytes flipped, truncated or extended). Whatever the
server does with that connection (error reply or close), a separate healthy session must
still get correct answers, and the server must still accept new sessions. Seeded: a failure
prints the seed and the frame.
"""

from __future__ import annotations

import os
import random
import socket

from tests.compat import rawclient as rc
from tests.compat.targets import Ensemble

SEED = int(os.environ.get("PYZK_FUZZ_SEED", "20261122"))
CASES = int(os.environ.get("PYZK_FUZZ_CASES", "100"))
OP_CREATE, OP_EXISTS, OP_GET_DATA, OP_SET_DATA, OP_MULTI = 1, 3, 4, 5, 14

VALID_BODIES = [
    rc.int32(1) + rc.int32(OP_CREATE) + rc.create_request("/fuzz-a", b"x"),
    rc.int32(2) + rc.int32(OP_GET_DATA) + rc.path_watch_request("/fuzz-a", True),
    rc.int32(3) + rc.int32(OP_EXISTS) + rc.path_watch_request("/fuzz-b", False),
    rc.int32(4) + rc.int32(OP_SET_DATA) + rc.ustring("/fuzz-a") + rc.buffer(b"y") + rc.int32(-1),
    rc.int32(5) + rc.int32(OP_MULTI) + rc.multi_request([(OP_CREATE, rc.create_request("/fuzz-m"))]),
]


def _hostile_frame(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
    body = bytearray(rng.choice(VALID_BODIES))
    if kind == 1:
        for _ in range(rng.randrange(1, 4)):
            body[rng.randrange(len(body))] = rng.randrange(256)
    elif kind == 2:
        del body[rng.randrange(8, len(body)):]
    else:
        body += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    return bytes(body)


class Healthy:
    def __init__(self, hosts: str) -> None:
        self.client = rc.RawClient.to(hosts)
        self.client.handshake()
        self.xid = 0

    def round_trip(self) -> int:
        self.xid += 1
        self.client.send_request(self.xid, OP_EXISTS, rc.path_watch_request("/", False))
        for _ in range(50):
            reply = self.client.recv_reply(5.0)
            if reply.xid == self.xid:
                return reply.err
        raise AssertionError("no reply to the healthy client")


def test_hostile_frames_leave_other_sessions_served(target: Ensemble) -> None:
    rng = random.Random(SEED)
    healthy = Healthy(target.hosts)
    for case in range(CASES):
        frame = _hostile_frame(rng)
        attacker = rc.RawClient.to(target.hosts, timeout_s=2.0)
        try:
            attacker.handshake()
            attacker.send_frame(frame)
            try:
                attacker.recv_raw(0.1)  # whatever comes back (an error reply, or a close)
            except (TimeoutError, OSError):
                pass
        finally:
            attacker.close()
        err = healthy.round_trip()
        assert err == 0, f"seed {SEED} case {case}: healthy client got err {err} after frame {frame.hex()}"
    # The server still accepts new sessions.
    assert Healthy(target.hosts).round_trip() == 0


def test_garbage_before_handshake_closes_only_that_connection(target: Ensemble) -> None:
    healthy = Healthy(target.hosts)
    rng = random.Random(SEED + 1)
    host, port = target.hosts.split(",")[0].rsplit(":", 1)
    for _ in range(20):
        with socket.create_connection((host, int(port)), timeout=2.0) as sock:
            sock.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 48))))
            sock.settimeout(0.1)
            try:
                sock.recv(4096)
            except (TimeoutError, OSError):
                pass
        assert healthy.round_trip() == 0

"""Four-letter words: pyzk against Apache ZooKeeper 3.8 with the same zoo.cfg and the same history.

Rule 1: both targets run one scenario (a session with a persistent node, an ephemeral node and
        data and child watches), then every word is sent on its own connection, in the same
        order; the outputs are compared line by line with only the naturally differing values
        masked (numbers, hex ids, addresses, dates, build strings, the environment's values).
Rule 2: mntr is compared by key: every key pyzk prints exists in Apache's output, in
        Apache's relative order, with the same value kind (integer, decimal or text).
Rule 3: the comparison needs both kinds; with PYZK_TARGETS naming one kind it is skipped.
"""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.compat.conftest import server_kinds_from_env, target_kinds_from_env
from tests.compat.rawclient import RawClient, connect_request, parse_connect_response
from tests.compat.targets import (
    LOOPBACK,
    TARGET_KINDS,
    Ensemble,
    four_letter_word,
    start_target,
)

WORDS = ("conf", "cons", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok",
         "srvr", "stat", "wchc", "wchp", "wchs", "crst", "srst", "stmk")
# Values that differ between two correct servers; kept: keys, labels, layout.
_MASKS = (
    (re.compile(r"^(Zookeeper version: |zk_version\t|zookeeper\.version=).*$", re.MULTILINE), r"\1<version>"),
    (re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d [A-Z]+ \d{4}"), "<date>"),
    (re.compile(r"/127\.0\.0\.1:\d+"), "/<addr>"),
    (re.compile(r"0x[0-9a-f]+"), "0x<hex>"),
    (re.compile(r"/[^\s=]*(data|server)\S*"), "<path>"),
    (re.compile(r"(?<![\w<])-?\d+(\.\d+)?(?![\w>])"), "<n>"),
)


def mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


def scenario(ensemble: Ensemble) -> KazooClient:
    client = KazooClient(hosts=ensemble.hosts, timeout=10)
    client.start(timeout=15)
    client.create("/a", b"x")
    client.create("/e", b"", ephemeral=True)
    client.get("/a", watch=lambda event: None)
    client.exists("/nope", watch=lambda event: None)
    client.get_children("/", watch=lambda event: None)
    return client


def collect(kind: str, workdir: Path, extra_cfg: dict[str, str | None]) -> dict[str, str]:
    ensemble = start_target(kind, extra_cfg=extra_cfg, workdir=workdir)
    try:
        client = scenario(ensemble)
        try:
            port = ensemble.servers[0].client_port
            out = {word: four_letter_word(port, word) for word in WORDS}
            with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
                sock.sendall(b"stmk" + struct.pack(">q", 0x1FF))
                out["stmk+mask"] = sock.recv(100).decode()
            return out
        finally:
            client.stop()
            client.close()
    finally:
        ensemble.stop()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, str]]]:
    if not set(TARGET_KINDS) <= set(target_kinds_from_env()):
        pytest.skip("the four-letter-word comparison needs both targets")
    yield {kind: collect(kind, tmp_path_factory.mktemp(f"4lw-{kind}"), {}) for kind in TARGET_KINDS}


@pytest.mark.parametrize("word", [w for w in WORDS if w not in ("mntr", "cons", "stat", "envi")] + ["stmk+mask"])
def test_word_matches_apache(outputs: dict[str, dict[str, str]], word: str) -> None:
    apache = outputs["apache"][word]
    if word == "dump":
        # The connection expiry sets after this heading are NIO-only (the Netty factory
        # prints the heading alone, as pyzk does).
        apache = apache[:apache.index("Connections dump:\n") + len("Connections dump:\n")]
        # Apache's ExpiryQueue keeps a bucket after its last session moved on; pyzk drops it.
        apache = re.sub(r"^0 expire at .*\n", "", apache, flags=re.MULTILINE)
    assert mask(outputs["pyzk"][word]) == mask(apache)


@pytest.mark.parametrize("word", ["cons", "stat"])
def test_connection_lists_match_apache(outputs: dict[str, dict[str, str]], word: str) -> None:
    # Connection order is the server's own; the lines themselves must agree.
    apache, pyzk = (mask(outputs[k][word]).split("\n") for k in ("apache", "pyzk"))
    assert [line for line in pyzk if not line.startswith(" /")] == [
        line for line in apache if not line.startswith(" /")]
    assert sorted(line for line in pyzk if line.startswith(" /")) == sorted(
        line for line in apache if line.startswith(" /"))


def test_envi_keys_match_apache(outputs: dict[str, dict[str, str]]) -> None:
    def keys(text: str) -> list[str]:
        return [line.split("=")[0] for line in text.splitlines()]

    assert keys(outputs["pyzk"]["envi"]) == keys(outputs["apache"]["envi"])


def _mntr(text: str) -> list[tuple[str, str]]:
    pairs = [tuple(line.split("\t")) for line in text.splitlines()]
    assert all(len(pair) == 2 for pair in pairs)
    return [(key, value) for key, value in pairs]  # type: ignore[misc]


def value_kind(value: str) -> str:
    """mntr compares value kinds, not values: integer, decimal (Java's double, maybe with an
    exponent) or text."""
    if re.fullmatch(r"-?\d+", value):
        return "int"
    if re.fullmatch(r"-?\d+\.\d+(E-?\d+)?", value):
        return "decimal"
    return "text"


def test_mntr_keys_order_and_kinds_match_apache(outputs: dict[str, dict[str, str]]) -> None:
    apache = _mntr(outputs["apache"]["mntr"])
    pyzk = _mntr(outputs["pyzk"]["mntr"])
    apache_keys = [k for k, _ in apache]
    pyzk_keys = [k for k, _ in pyzk]
    assert set(pyzk_keys) <= set(apache_keys), set(pyzk_keys) - set(apache_keys)
    assert pyzk_keys == [k for k in apache_keys if k in set(pyzk_keys)]
    apache_kinds = {k: value_kind(v) for k, v in apache}
    assert {k: value_kind(v) for k, v in pyzk} == {k: apache_kinds[k] for k in pyzk_keys}
    # The first-generation keys monitoring tools rely on (PROTOCOL.md 7.3), standalone.
    for key in ("zk_version", "zk_avg_latency", "zk_max_latency", "zk_min_latency",
                "zk_packets_received", "zk_packets_sent", "zk_num_alive_connections",
                "zk_outstanding_requests", "zk_server_state", "zk_znode_count", "zk_watch_count",
                "zk_ephemerals_count", "zk_approximate_data_size",
                "zk_open_file_descriptor_count", "zk_max_file_descriptor_count"):
        assert key in pyzk_keys
    same_values = ("zk_server_state", "zk_znode_count", "zk_watch_count", "zk_ephemerals_count",
                   "zk_approximate_data_size", "zk_global_sessions", "zk_outstanding_requests")
    assert {k: v for k, v in pyzk if k in same_values} == {k: v for k, v in apache if k in same_values}


def test_whitelist_refusal_matches_apache(tmp_path: Path) -> None:
    kinds = server_kinds_from_env()
    replies = {}
    for kind in kinds:
        ensemble = start_target(kind, extra_cfg={"4lw.commands.whitelist": "ruok, conf"},
                                workdir=tmp_path / kind)
        try:
            port = ensemble.servers[0].client_port
            replies[kind] = {w: four_letter_word(port, w) for w in ("stat", "mntr", "ruok", "srvr", "isro")}
        finally:
            ensemble.stop()
    for kind in kinds:
        got = replies[kind]
        assert got["stat"] == "stat is not executed because it is not in the whitelist.\n", kind
        assert got["mntr"] == "mntr is not executed because it is not in the whitelist.\n", kind
        assert got["isro"] == "isro is not executed because it is not in the whitelist.\n", kind
        assert got["ruok"] == "imok", kind
        assert "Mode: standalone" in got["srvr"], kind  # srvr is always allowed


def test_four_letter_word_after_handshake_is_a_frame_length(tmp_path: Path) -> None:
    # After the ConnectRequest, "ruok" is read as a 1.9 GB frame length: the server closes
    # the connection instead of answering.
    for kind in server_kinds_from_env():
        ensemble = start_target(kind, extra_cfg={}, workdir=tmp_path / kind)
        try:
            client = RawClient.to(ensemble.hosts)
            client.send_frame(connect_request())
            frame = client.recv_frame()
            assert frame is not None and parse_connect_response(frame).session_id != 0, kind
            client.send_raw(b"ruok")
            assert client.wait_closed(10.0), kind
            assert four_letter_word(ensemble.servers[0].client_port, "ruok") == "imok", kind
        finally:
            ensemble.stop()

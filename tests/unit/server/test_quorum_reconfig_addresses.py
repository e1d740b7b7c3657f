"""The driver's side of a reconfig: addresses of servers outside the config, and of new members."""

from __future__ import annotations

from pyzk.config import parse_server
from pyzk.quorum.reconfig import parse_config_text
from pyzk.server.quorum_driver import _election_address
from pyzk.server.quorum_main import servers_with


def test_a_newcomers_election_address_comes_from_its_initial_message() -> None:
    assert _election_address(("127.0.0.1:3888",)) == ("127.0.0.1", 3888)
    assert _election_address(("[::1]:3888", "10.0.0.1:3888")) == ("::1", 3888)
    assert _election_address(("no-port",)) is None
    assert _election_address(()) is None


def test_an_activated_config_adds_and_updates_addresses_and_keeps_the_others() -> None:
    old = {sid: parse_server(sid, f"127.0.0.1:{2000 + sid}:{3000 + sid}", False, "zoo.cfg", sid, f"server.{sid}")
           for sid in (1, 2, 3)}
    verifier = parse_config_text("server.1=127.0.0.1:2001:3001:participant;127.0.0.1:2181\n"
                                 "server.2=127.0.0.1:2102:3102:participant\n"
                                 "server.4=127.0.0.1:2004:3004:observer;127.0.0.1:2184\nversion=100000003")
    servers = servers_with(old, verifier)
    assert sorted(servers) == [1, 2, 3, 4]
    assert (servers[2].quorum_port, servers[2].election_port) == (2102, 3102)
    assert servers[3] is old[3] and servers[4].role == "observer"

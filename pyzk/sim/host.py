"""What a simulated member and the client network use of their world (World, world.py).

A Protocol, so that clients.py and members.py name the world's surface without importing
world.py, which builds them: the simulator's modules form no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol


class WorldHost(Protocol):
    seed: int
    options: Any  # WorldOptions
    now_ms: int
    sids: Sequence[int]
    incarnation: dict[int, int]
    peers: dict[int, Any]  # sid -> Peer
    members: dict[int, Any]  # sid -> SimMember
    clients_net: Any  # ClientNet
    client_checker: Any  # ClientChecker
    workload_enabled: bool
    open_acl: Any

    def trace(self, line: str) -> None: ...
    def call_at(self, at_ms: int, fn: Callable[..., Any], *args: Any) -> None: ...
    def peer_now(self, sid: int) -> int: ...
    def members_config(self, sid: int) -> Any: ...
    def send_server_packet(self, sid: int, to: int, packet: Any) -> bool: ...
    def _drain(self, sid: int) -> None: ...

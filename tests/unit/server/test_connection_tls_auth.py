"""A TLS client the x509 check refuses (pyzk/server/tls.py authenticate_tls_client) is closed
and counted in auth_failed_count (NettyServerCnxnFactory's CertificateVerifier)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pyzk.config import parse_config
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.server import connection as connection_module
from pyzk.server.connection import ClientConnection
from pyzk.server.fourletter import monitor_values
from pyzk.tree.datatree import DataTree


class TlsTransport:
    def __init__(self) -> None:
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "ssl_object": object()}.get(name, default)

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closing = True


@pytest.mark.parametrize("accepted", [True, False])
def test_a_refused_certificate_closes_and_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 accepted: bool) -> None:
    config = parse_config(f"tickTime=2000\ndataDir={tmp_path}\nclientPort=2181\n")
    server = ZooKeeperServer(config, DataTree(), now_ms=lambda: 1000, wall_ms=lambda: 5)
    monkeypatch.setattr(connection_module, "authenticate_tls_client", lambda *args: accepted)

    async def connect() -> TlsTransport:
        transport = TlsTransport()
        ClientConnection(server, {}).connection_made(transport)
        return transport

    transport = asyncio.run(connect())
    assert transport.closing is not accepted
    assert dict(monitor_values(server))["auth_failed_count"] == (0 if accepted else 1)
    server.stats.reset()  # srst keeps it, as Apache's ServerStats.reset does
    assert server.stats.auth_failed_count == (0 if accepted else 1)

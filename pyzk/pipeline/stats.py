"""ServerStats: the counters behind srvr/stat/mntr (ServerStats.java).

`metrics` is the process's ServerMetrics (pyzk/metrics.py): the shell that builds a server
gives it the one that outlives roles. srst resets it too when `resets_metrics` (the default
metrics provider: ServerStats.reset calls ServerMetrics.resetAll, which the Prometheus provider
does not support)."""

from __future__ import annotations

from pyzk.metrics import ServerMetrics


class ServerStats:
    def __init__(self, *, resets_metrics: bool = True) -> None:
        self.metrics = ServerMetrics()
        self.resets_metrics = resets_metrics
        self.packets_received = 0
        self.packets_sent = 0
        self.outstanding = 0
        self.latency_min_ms: int | None = None
        self.latency_max_ms = 0
        self.latency_total_ms = 0
        self.latency_count = 0
        # Clients refused for their TLS certificate (NettyServerCnxnFactory's check after the
        # handshake; a failed handshake itself never reaches pyzk's connection, asyncio drops
        # it). srst keeps it, as ServerStats.reset does (only JMX resets it).
        self.auth_failed_count = 0

    def record_latency(self, latency_ms: int) -> None:
        self.latency_total_ms += latency_ms
        self.latency_count += 1
        if latency_ms > self.latency_max_ms:
            self.latency_max_ms = latency_ms
        if self.latency_min_ms is None or latency_ms < self.latency_min_ms:
            self.latency_min_ms = latency_ms

    @property
    def latency_avg_ms(self) -> float:
        return self.latency_total_ms / self.latency_count if self.latency_count else 0.0

    def reset(self) -> None:
        self.packets_received = 0
        self.packets_sent = 0
        self.latency_min_ms = None
        self.latency_max_ms = 0
        self.latency_total_ms = 0
        self.latency_count = 0
        if self.resets_metrics:
            self.metrics.reset()

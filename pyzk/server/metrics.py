"""Prometheus metrics, when metricsProvider.className is Apache's PrometheusMetricsProvider.

Rule 1: metric names are Apache ZooKeeper's (the mntr key without `zk_`), exposed as gauges,
        as ZooKeeperServer registers them; values are read at scrape time from counters the
        server already keeps, so the request path does no extra work.
Rule 2: prometheus-client (the `metrics` extra) is imported only when the provider is
        configured; the exposition format is its own, never hand-written.
Rule 3: /metrics is served on the event loop (admin.serve_http), so a scrape reads server
        state from the thread that changes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pyzk.config import METRICS_PROVIDER_PROMETHEUS
from pyzk.server.admin import HttpReply, serve_http
from pyzk.server.fourletter import monitor_values

if TYPE_CHECKING:
    from pyzk.pipeline.zkserver import ZooKeeperServer

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
scrape_timeout_s = 30.0

# mntr keys that are text, or structural zeros of a standalone server rather than gauges
# Apache registers; the rest of monitor_values are ZooKeeperServer's gauges.
_NOT_GAUGES = frozenset({
    "version", "server_state", "proposal_count", "throttled_ops", "looking_count",
    "connection_drop_count", "learner_proposal_received_count", "digest_mismatches_count",
    "ensemble_auth_success", "learner_commit_received_count", "ensemble_auth_fail", "diff_count",
    "quit_leading_due_to_disloyal_voter", "snap_count", "commit_count", "ensemble_auth_skip",
    "tls_handshake_exceeded",
})


def gauge_values(server: ZooKeeperServer) -> list[tuple[str, float]]:
    return [(name, float(value)) for name, value in monitor_values(server)
            if name not in _NOT_GAUGES and isinstance(value, (int, float))]


class ServerCollector:
    """A prometheus_client collector over one ZooKeeperServer."""

    def __init__(self, server: ZooKeeperServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        for name, value in gauge_values(self.server):
            yield GaugeMetricFamily(name, name, value=value)


def metrics_registry(server: ZooKeeperServer, export_process_info: bool) -> Any:
    """A registry with the server's gauges; process_* metrics stand in for Apache's JVM ones."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(server))
    if export_process_info:
        ProcessCollector(registry=registry)
    return registry


def metrics_handler(registry: Any) -> Any:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    def handle(path: str, query: dict[str, str]) -> HttpReply:
        if path != METRICS_PATH:
            return HttpReply(404, b"Not Found\n")
        return HttpReply(200, generate_latest(registry), {"Content-Type": CONTENT_TYPE_LATEST})

    return handle


async def start_metrics_server(server: ZooKeeperServer) -> asyncio.Server | None:
    """Serve /metrics on metricsProvider.httpHost:httpPort when Prometheus is configured.

    Like Apache ("Cannot boot MetricsProvider"), a missing library or a busy port stops
    start-up; None when another provider is configured."""
    config = server.config
    if config.metrics_provider_class != METRICS_PROVIDER_PROMETHEUS:
        return None
    try:
        registry = metrics_registry(
            server, config.metrics_provider_config.get("exportJvmInfo", "true") != "false")
    except ImportError as exc:
        raise OSError(f"Cannot boot MetricsProvider {config.metrics_provider_class}: "
                      f"prometheus-client is not installed (pip install 'pyzk-server[metrics]'): "
                      f"{exc}") from exc
    try:
        listener = await serve_http(config.metrics_http_host, config.metrics_http_port,
                                    metrics_handler(registry), scrape_timeout_s)
    except OSError as exc:
        raise OSError(exc.errno, f"Cannot boot MetricsProvider: cannot listen on "
                                 f"{config.metrics_http_host}:{config.metrics_http_port}: "
                                 f"{exc.strerror}") from exc
    logger.info("Started /metrics HTTP endpoint at host: %s, port: %d, exportJvmInfo: %s",
                config.metrics_http_host, config.metrics_http_port,
                config.metrics_provider_config.get("exportJvmInfo", "true"))
    return listener

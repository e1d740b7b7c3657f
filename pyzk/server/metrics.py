"""Prometheus metrics, when metricsProvider.className is Apache's PrometheusMetricsProvider.

Rule 1: metric names and TYPEs are Apache ZooKeeper's (the mntr key without `zk_`):
        ZooKeeperServer's registerGauge names are gauges, ServerMetrics' getCounter names are
        counters, its BASIC summaries (pyzk/metrics.py) are summaries with quantile 0.5 and
        _count/_sum; values are read at scrape time from what the server already keeps, so
        the request path does no extra work.
Rule 2: the server's families are written as Apache's simpleclient 0.9 writes them (text
        format 0.0.4: `name{quantile="0.5",} value`, Java's double text, a counter's sample
        under its bare name, which prometheus_client cannot write: it always adds `_total`);
        the process_* families (stand-ins for the JVM's) come from prometheus-client (the
        `metrics` extra), imported only when the provider is configured.
Rule 3: /metrics is served on the event loop (admin.serve_http), so a scrape reads server
        state from the thread that changes it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pyzk.config import METRICS_PROVIDER_PROMETHEUS
from pyzk.metrics import SUMMARY_NAMES
from pyzk.server.admin import HttpReply, serve_http
from pyzk.server.fourletter import COUNTER_KEYS, monitor_values

if TYPE_CHECKING:
    from pyzk.pipeline.zkserver import ZooKeeperServer

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
scrape_timeout_s = 30.0

# Apache's simpleclient servlet answers with text format 0.0.4 (TextFormat.CONTENT_TYPE_004).
CONTENT_TYPE_004 = "text/plain; version=0.0.4; charset=utf-8"
_TEXT_KEYS = frozenset({"version", "server_state", "peer_state"})
_SUMMARY_KEYS = frozenset(f"{part}_{name}" for name in SUMMARY_NAMES for part in ("avg", "min", "max", "cnt", "sum"))


def gauge_values(server: ZooKeeperServer) -> list[tuple[str, float]]:
    return [(name, float(value)) for name, value in monitor_values(server)
            if name not in _TEXT_KEYS and name not in COUNTER_KEYS and name not in _SUMMARY_KEYS
            and isinstance(value, (int, float))]


def counter_values(server: ZooKeeperServer) -> list[tuple[str, float]]:
    """The counters mntr reports for this role (as mntr: what pyzk does not count is absent)."""
    return [(name, float(value)) for name, value in monitor_values(server) if name in COUNTER_KEYS]


def java_double(value: float) -> str:
    """Collector.doubleToGoString: Java's Double.toString, with +Inf/-Inf/NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "." in text else text + ".0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    power = len(text) + int(exponent) - 1
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{power}"


def _family(name: str, kind: str, samples: list[tuple[str, str, float]]) -> str:
    lines = [f"# HELP {name} {name}", f"# TYPE {name} {kind}"]
    lines += [f"{sample}{labels} {java_double(value)}" for sample, labels, value in samples]
    return "\n".join(lines) + "\n"


def exposition(server: ZooKeeperServer) -> str:
    """The server's families in Apache's PrometheusMetricsProvider text (Rule 2)."""
    out = [_family(name, "gauge", [(name, "", value)]) for name, value in gauge_values(server)]
    out += [_family(name, "counter", [(name, "", value)]) for name, value in counter_values(server)]
    for name, summary in server.stats.metrics.summaries.items():
        out.append(_family(name, "summary", [(name, '{quantile="0.5",}', summary.median()),
                                             (f"{name}_count", "", float(summary.count)),
                                             (f"{name}_sum", "", float(summary.total))]))
    return "".join(out)


def metrics_registry(export_process_info: bool) -> Any:
    """prometheus-client's registry for the process_* families (None when not exported)."""
    if not export_process_info:
        return None
    from prometheus_client import CollectorRegistry, ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    return registry


def scrape(server: ZooKeeperServer, registry: Any) -> bytes:
    body = exposition(server).encode()
    if registry is not None:
        from prometheus_client import generate_latest

        body += generate_latest(registry)
    return body


def metrics_handler(server: ZooKeeperServer, registry: Any) -> Any:
    def handle(path: str, query: dict[str, str]) -> HttpReply:
        if path != METRICS_PATH:
            return HttpReply(404, b"Not Found\n")
        return HttpReply(200, scrape(server, registry), {"Content-Type": CONTENT_TYPE_004})

    return handle


async def start_metrics_server(server: ZooKeeperServer) -> asyncio.Server | None:
    """Serve /metrics on metricsProvider.httpHost:httpPort when Prometheus is configured.

    Like Apache ("Cannot boot MetricsProvider"), a missing library or a busy port stops
    start-up; None when another provider is configured."""
    config = server.config
    if config.metrics_provider_class != METRICS_PROVIDER_PROMETHEUS:
        return None
    try:
        import prometheus_client  # noqa: F401  (the provider needs the extra, as Apache its jars)

        registry = metrics_registry(config.metrics_provider_config.get("exportJvmInfo", "true") != "false")
    except ImportError as exc:
        raise OSError(f"Cannot boot MetricsProvider {config.metrics_provider_class}: "
                      f"prometheus-client is not installed (pip install 'pyzk-server[metrics]'): "
                      f"{exc}") from exc
    try:
        listener = await serve_http(config.metrics_http_host, config.metrics_http_port,
                                    metrics_handler(server, registry), scrape_timeout_s)
    except OSError as exc:
        raise OSError(exc.errno, f"Cannot boot MetricsProvider: cannot listen on "
                                 f"{config.metrics_http_host}:{config.metrics_http_port}: "
                                 f"{exc.strerror}") from exc
    logger.info("Started /metrics HTTP endpoint at host: %s, port: %d, exportJvmInfo: %s",
                config.metrics_http_host, config.metrics_http_port,
                config.metrics_provider_config.get("exportJvmInfo", "true"))
    return listener

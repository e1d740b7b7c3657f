"""Run a standalone pyzk server for a ServerConfig until SIGTERM/SIGINT.

Start-up order (ZooKeeperServerMain): restore the database from dataDir/dataLogDir, open a
new txn log file, start the commit stage, then listen on the client port. Shutdown closes
the listener, lets the commit stage finish its batch, and closes the log.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time

from pyzk.config import ServerConfig
from pyzk.pipeline.containers import container_candidates
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.server.admin import start_admin_server
from pyzk.server.commit import StandaloneCommit
from pyzk.server.connection import ClientConnection
from pyzk.server.database import Database, StorageError, open_database
from pyzk.server.metrics import start_metrics_server
from pyzk.server.sasl_config import sasl_mechanism_factory
from pyzk.server.startup import report_datadir_error, run_reporting_startup_errors
from pyzk.server.tls import server_ssl_context
from pyzk.storage.errors import DatadirError
from pyzk.storage.files import check_data_dirs
from pyzk.version import FULL_VERSION

logger = logging.getLogger(__name__)


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


def _wall_ms() -> int:
    return int(time.time() * 1000)


def run(config: ServerConfig) -> int:
    """Serve until a termination signal; returns the process exit code."""
    try:  # FileTxnSnapLog's checks come first in both modes (exit code 3)
        check_data_dirs(config.data_log_dir, config.data_dir, autocreate=config.datadir_autocreate)
    except DatadirError as exc:
        return report_datadir_error(exc)
    if not config.standalone:
        from pyzk.server.quorum_main import run_ensemble

        return run_ensemble(config)
    return run_reporting_startup_errors(_serve(config))


async def _serve(config: ServerConfig) -> int:
    loop = asyncio.get_running_loop()
    logger.info("Server environment:zookeeper.version=%s", FULL_VERSION)

    # The restored tree lives as long as the process (standalone never swaps it, unlike a
    # learner's SNAP): freeze it out of the cyclic GC's reach before collections resume.
    # Otherwise the first collections after start-up walk every node (~0.6 s with 1 M
    # znodes) while the first clients wait, and every later full collection walks them again.
    # Nodes are still freed by reference counting when deleted.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        db: Database = open_database(config)
        gc.freeze()
    finally:
        if gc_was_enabled:
            gc.enable()
    server = ZooKeeperServer(config, db.tree, now_ms=_monotonic_ms, wall_ms=_wall_ms,
                             sasl_factory=sasl_mechanism_factory(config))
    server.stats.metrics = db.metrics
    commit = StandaloneCommit(db, db.encode_entry, server.apply_committed, loop)
    commit.on_batch_committed = lambda count: db.after_commit(count, server.tree)
    server.commit = commit

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    commit.on_fatal = stop.set

    # ZooKeeperServerMain's order: metrics provider, AdminServer, then the client port.
    ops_listeners = [s for s in (await start_metrics_server(server), await start_admin_server(server)) if s]
    per_ip: dict[str, int] = {}
    backlog = config.client_port_listen_backlog if config.client_port_listen_backlog > 0 else 100
    listeners = []
    if config.client_port:
        listeners.append(await loop.create_server(
            lambda: ClientConnection(server, per_ip),
            host=config.client_port_address or None, port=config.client_port,
            reuse_address=True, reuse_port=config.client_port_reuse_port or None, backlog=backlog,
        ))
        logger.info("binding to port %s:%s", config.client_port_address, config.client_port)
    if config.secure_client_port:
        context = server_ssl_context(config.ssl)
        listeners.append(await loop.create_server(
            lambda: ClientConnection(server, per_ip),
            host=config.secure_client_port_address or None, port=config.secure_client_port,
            reuse_address=True, backlog=backlog, ssl=context,
        ))
        logger.info("binding to secure port %s:%s", config.secure_client_port_address, config.secure_client_port)
    tick = asyncio.create_task(_tick(server, config.tick_time_ms / 1000.0))
    sweeper = asyncio.create_task(_sweep_containers(server, config))
    purger = asyncio.create_task(_autopurge(db, config)) if config.autopurge_purge_interval_hours > 0 else None
    db.start_deferred_snapshot()
    await stop.wait()
    logger.info("shutting down")
    tick.cancel()
    sweeper.cancel()
    if purger is not None:
        purger.cancel()
    for listener in listeners:
        listener.close()
    for ops_listener in ops_listeners:
        ops_listener.close()
    for conn in list(server.all_connections):
        conn.close()
    await asyncio.sleep(0)
    for _ in range(100):  # bounded: let the current batch reach disk
        if not commit.queued and not getattr(commit, "_running", False):
            break
        await asyncio.sleep(0.01)
    commit.close()
    try:
        db.close()
    except StorageError as exc:
        logger.error("Closing the txn log failed: %s", exc)
        return 1
    return 1 if commit.failed is not None else 0


async def _tick(server: ZooKeeperServer, tick_s: float) -> None:
    """Session expiry: every tick, expire the sessions whose bucket deadline passed."""
    while True:
        await asyncio.sleep(tick_s / 2)
        try:
            server.expire_sessions()
        except Exception:
            logger.exception("session expiry failed")


async def _autopurge(db: Database, config: ServerConfig) -> None:
    """DatadirCleanupManager: purge old snapshots and logs at start-up, then every
    purgeInterval hours (its timer's first delay is 0)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            await loop.run_in_executor(None, db.purge)
        except Exception:
            logger.exception("autopurge failed")
        await asyncio.sleep(config.autopurge_purge_interval_hours * 3600)


async def _sweep_containers(server: ZooKeeperServer, config: ServerConfig) -> None:
    """ContainerManager: every checkIntervalMs, delete empty containers and expired TTL nodes,
    at most maxPerMinute per minute."""
    interval_s = max(config.container_check_interval_ms, 1) / 1000.0
    gap_s = 60.0 / max(config.container_max_per_minute, 1)
    never_used_ms = int(config.system_properties.get("znode.container.maxNeverUsedIntervalMs", "0") or 0)
    while True:
        await asyncio.sleep(interval_s)
        try:
            for path in container_candidates(server.tree, _wall_ms(), never_used_ms):
                logger.info("Attempting to delete candidate container: %s", path)
                server.submit_delete_container(path)
                await asyncio.sleep(gap_s)
        except Exception:
            logger.exception("container sweep failed")

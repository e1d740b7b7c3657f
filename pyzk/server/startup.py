"""Running a server coroutine the way both modes start: a refusal to start is one log line.

Shared by the standalone server (server/main.py) and an ensemble member (server/quorum_main.py).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import ssl
import sys
from collections.abc import Coroutine
from typing import Any

from pyzk.server.tls import TlsConfigError
from pyzk.storage.errors import DatadirError, StorageError

logger = logging.getLogger("pyzk.server.main")


# ExitCode: UNEXPECTED_ERROR for any other refusal, UNABLE_TO_ACCESS_DATADIR for a dataDir
# or dataLogDir that cannot be used (ZooKeeperServerMain and QuorumPeerMain exit 3 for it).
EXIT_UNEXPECTED_ERROR = 1
EXIT_UNABLE_TO_ACCESS_DATADIR = 3
DATADIR_MESSAGE = "Unable to access datadir, exiting abnormally"

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
# Above asyncio's 256 KiB socket reads (each recv allocates that much, then shrinks it): those
# stay on the heap; log files and snapshots, megabytes each, do not.
MMAP_THRESHOLD_BYTES = 1024 * 1024


def keep_large_buffers_out_of_the_heap() -> bool:
    """Fix glibc's mmap threshold. glibc raises it (up to 32 MiB) whenever a large buffer is
    freed, so the next ones (a log file or snapshot read at start-up, a SNAP) come from the heap
    and stay in the process's RSS after they are freed: ~16 MB after replaying 100,000 txns.
    With a fixed threshold they are mmap'd and returned when freed. Elsewhere: nothing."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return False
    return bool(mallopt and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def report_datadir_error(exc: DatadirError) -> int:
    """As ZooKeeperServerMain.main: an error log line, the message on stderr, exit code 3."""
    logger.error("%s: %s", DATADIR_MESSAGE, exc)
    print(DATADIR_MESSAGE, file=sys.stderr)
    return EXIT_UNABLE_TO_ACCESS_DATADIR


def run_reporting_startup_errors(serve: Coroutine[Any, Any, int]) -> int:
    """asyncio.run(serve); a refusal to start is one log line and exit code 1 (3 for a
    dataDir it cannot use), no traceback."""
    keep_large_buffers_out_of_the_heap()
    try:
        return asyncio.run(serve)
    except DatadirError as exc:
        return report_datadir_error(exc)
    except StorageError as exc:
        logger.error("Unable to load database: %s", exc)
        return EXIT_UNEXPECTED_ERROR
    except (OSError, TlsConfigError, ssl.SSLError) as exc:
        logger.error("Unable to start: %s", exc)
        return EXIT_UNEXPECTED_ERROR

"""Running a server coroutine the way both modes start: a refusal to start is one log line.

Shared by the standalone server (server/main.py) and an ensemble member (server/quorum_main.py).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Coroutine
from typing import Any

from pyzk.server.tls import TlsConfigError
from pyzk.storage.errors import StorageError

logger = logging.getLogger("pyzk.server.main")


def run_reporting_startup_errors(serve: Coroutine[Any, Any, int]) -> int:
    """asyncio.run(serve); a refusal to start is one log line and exit code 1, no traceback."""
    try:
        return asyncio.run(serve)
    except StorageError as exc:
        logger.error("Unable to load database: %s", exc)
        return 1
    except (OSError, TlsConfigError, ssl.SSLError) as exc:
        logger.error("Unable to start: %s", exc)
        return 1

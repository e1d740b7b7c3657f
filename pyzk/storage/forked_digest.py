"""Sum a snapshot's node digests in a forked child while the parent builds the tree.

Loading a snapshot is single-threaded Python, and about a third of it is the tree digest (a
CRC32 per node, DigestCalculator). The digest depends only on the snapshot's bytes, so a child
process can sum it on the other core from the same bytes (shared copy-on-write) while the
parent builds the nodes.

Rule: this only ever saves time. The child reads, writes the 8-byte sum to a pipe and leaves
with os._exit; no fork, a child that fails, or a short read all give None, and the caller then
sums the digest itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from pyzk.storage.snapshot_format import node_digest_sum

_SUM_BYTES = 8


def fork_digest_sum(data: bytes, pos: int) -> Callable[[], int | None]:
    """Start summing the node digests at data[pos:] in a child; returns the wait for the sum."""
    if not hasattr(os, "fork"):
        return lambda: None
    try:
        read_fd, write_fd = os.pipe()
    except OSError:
        return lambda: None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return lambda: None
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(read_fd)
            os.write(write_fd, node_digest_sum(data, pos).to_bytes(_SUM_BYTES, "big"))
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)

    def wait() -> int | None:
        received = b""
        try:
            while len(received) < _SUM_BYTES:
                chunk = os.read(read_fd, _SUM_BYTES - len(received))
                if not chunk:
                    break
                received += chunk
        finally:
            os.close(read_fd)
            os.waitpid(pid, 0)
        return int.from_bytes(received, "big") if len(received) == _SUM_BYTES else None

    return wait

"""The one exception that carries a ZooKeeper error code (KeeperException's role).

Raised by the tree, prep and the read handlers alike; whoever answers the client turns `err`
into the reply header's error code. `path` names the node concerned, when there is one.
"""

from __future__ import annotations

from jute.codes import Err


class KeeperError(Exception):
    def __init__(self, err: int, path: str | None = None) -> None:
        super().__init__(err, path)
        self.err = err
        self.path = path

    def __str__(self) -> str:
        try:
            name = Err(self.err).name
        except ValueError:
            name = str(self.err)
        return f"{name} {self.path}" if self.path else name

"""Who broke the rules: a peer (drop that link) or we did (stop: never serve wrong data)."""

from __future__ import annotations


class PeerProtocolError(Exception):
    """A peer sent something the protocol does not allow here; drop that peer's connection."""


class InvariantViolation(AssertionError):
    """Our own bug: a Zab or election invariant does not hold."""

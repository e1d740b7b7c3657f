"""Ensemble core, pure (no I/O, clock or randomness): zxid, verifier, messages, election, zab,
database, effects, peer. `peer.Peer` is the one entry point a driver needs."""

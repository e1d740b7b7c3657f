"""Deterministic simulation of a pyzk ensemble: one seed, one history (see world.py)."""

"""The benchmark workloads: what each connection sends, and what each reply must look like.

Rule: every request carries its expected reply (err code, exact frame length, multi result
types, whether a watch notification must precede it), so the engine verifies every reply
and a server that answers quickly but wrongly fails the run instead of winning it.
Requests are encoded before the run starts wherever the bytes do not depend on a counter.
"""

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench import wire

ROOT = "/bench"
KEYS_PARENT = f"{ROOT}/keys"
KEY_COUNT = 1000
DATA_BYTES = 100
DATA = b"d" * DATA_BYTES
MIXED_GET_FRACTION = 0.9
_MIXED_SEQUENCE_LENGTH = 4096

PARENTS = (ROOT, KEYS_PARENT, f"{ROOT}/cd", f"{ROOT}/eph", f"{ROOT}/multi", f"{ROOT}/watch")


@dataclass(frozen=True, slots=True)
class Request:
    op_type: int
    record: bytes
    reply_length: int  # exact frame length (without its 4-byte prefix) of the expected reply
    reply_err: int = wire.ERR_OK
    multi_result_types: tuple[int, ...] = ()  # for multi: the op type of each result
    multi_body_lengths: tuple[int, ...] = ()
    fires_watch: bool = False  # a NodeDataChanged notification must arrive before the reply
    counts_as_op: bool = True  # its latency and count go into the results


Unit = tuple[Request, ...]  # requests issued together, so a stopped run leaves no half-done pair
UnitStream = Iterator[Unit]


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    # builds the unit stream of one connection from (connection tag, seed)
    units: Callable[[str, int], UnitStream]
    # requests one connection runs before the measured run (tolerating NODEEXISTS)
    connection_setup: Callable[[str], list[Request]] = lambda tag: []
    needs_keys: bool = False
    # each unit opens a new session, runs, and closes it (the connect counts in the latency)
    session_per_unit: bool = False


def key_path(index: int) -> str:
    return f"{KEYS_PARENT}/k{index:04d}"


def _create(path: str, data: bytes = b"", flags: int = wire.FLAGS_PERSISTENT) -> Request:
    return Request(wire.OP_CREATE, wire.create(path, data, flags), wire.create_reply_length(path))


def setup_requests(needs_keys: bool) -> list[Request]:
    """Parents of every workload, and the 1,000 100-byte keys when the workload reads them."""
    requests = [_create(path) for path in PARENTS]
    if needs_keys:
        requests += [_create(key_path(i), DATA) for i in range(KEY_COUNT)]
    return requests


def _get(path: str) -> Request:
    return Request(
        wire.OP_GET_DATA, wire.get_data(path), wire.get_data_reply_length(DATA_BYTES)
    )


def _set(path: str, fires_watch: bool = False) -> Request:
    return Request(
        wire.OP_SET_DATA,
        wire.set_data(path, DATA),
        wire.stat_reply_length(),
        fires_watch=fires_watch,
    )


def _random_key_units(make: Callable[[str], Request], seed: int) -> UnitStream:
    rng = random.Random(seed)
    units = [(make(key_path(rng.randrange(KEY_COUNT))),) for _ in range(_MIXED_SEQUENCE_LENGTH)]
    return itertools.cycle(units)


def _get_units(tag: str, seed: int) -> UnitStream:
    return _random_key_units(_get, seed)


def _set_units(tag: str, seed: int) -> UnitStream:
    return _random_key_units(_set, seed)


def _mixed_units(tag: str, seed: int) -> UnitStream:
    rng = random.Random(seed)
    units = []
    for _ in range(_MIXED_SEQUENCE_LENGTH):
        path = key_path(rng.randrange(KEY_COUNT))
        units.append((_get(path) if rng.random() < MIXED_GET_FRACTION else _set(path),))
    return itertools.cycle(units)


def _create_delete_units(tag: str, seed: int) -> UnitStream:
    for n in itertools.count():
        path = f"{ROOT}/cd/{tag}-{n}"
        delete = Request(
            wire.OP_DELETE, wire.delete(path), wire.header_only_reply_length()
        )
        yield (_create(path, DATA), delete)


def _watch_path(tag: str) -> str:
    return f"{ROOT}/watch/{tag}"


def _watch_setup(tag: str) -> list[Request]:
    return [_create(_watch_path(tag), DATA)]


def _exists_watch_units(tag: str, seed: int) -> UnitStream:
    path = _watch_path(tag)
    exists = Request(wire.OP_EXISTS, wire.exists(path, watch=True), wire.stat_reply_length())
    return itertools.repeat((exists, _set(path, fires_watch=True)))


def _ephemeral_units(tag: str, seed: int) -> UnitStream:
    close = Request(wire.OP_CLOSE_SESSION, b"", wire.header_only_reply_length())
    for n in itertools.count():
        path = f"{ROOT}/eph/{tag}-{n}"
        create = Request(
            wire.OP_CREATE,
            wire.create(path, DATA, wire.FLAGS_EPHEMERAL),
            wire.create_reply_length(path),
            counts_as_op=False,
        )
        yield (create, close)


def _multi_units(tag: str, seed: int) -> UnitStream:
    """multi [create p, setData p, check p version 1, setData p, delete p]: one txn, 5 ops."""
    result_types = (wire.OP_CREATE, wire.OP_SET_DATA, wire.OP_CHECK, wire.OP_SET_DATA, wire.OP_DELETE)
    for n in itertools.count():
        path = f"{ROOT}/multi/{tag}-{n}"
        ops = [
            (wire.OP_CREATE, wire.create(path, DATA)),
            (wire.OP_SET_DATA, wire.set_data(path, DATA)),
            (wire.OP_CHECK, wire.check_version(path, 1)),
            (wire.OP_SET_DATA, wire.set_data(path, DATA)),
            (wire.OP_DELETE, wire.delete(path)),
        ]
        body_lengths = (4 + len(path.encode()), wire.STAT_SIZE, 0, wire.STAT_SIZE, 0)
        reply_length = (
            wire.REPLY_HEADER_SIZE
            + wire.MULTI_HEADER_SIZE * (len(ops) + 1)
            + sum(body_lengths)
        )
        yield (
            Request(
                wire.OP_MULTI,
                wire.multi(ops),
                reply_length,
                multi_result_types=result_types,
                multi_body_lengths=body_lengths,
            ),
        )


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("get", "getData of a random key (1,000 keys of 100 bytes)", _get_units, needs_keys=True),
        Workload("set", "setData of 100 bytes on a random key (1,000 keys)", _set_units, needs_keys=True),
        Workload(
            "create_delete",
            "create a 100-byte znode, then delete it; each request is one op",
            _create_delete_units,
        ),
        Workload(
            "mixed",
            "90 % getData / 10 % setData on random keys",
            _mixed_units,
            needs_keys=True,
        ),
        Workload(
            "exists_watch",
            "exists with watch, then the setData that fires it; the notification is checked; "
            "each request is one op",
            _exists_watch_units,
            connection_setup=_watch_setup,
        ),
        Workload(
            "ephemeral_session",
            "new session, create an ephemeral znode, closeSession; one op = one whole session",
            _ephemeral_units,
            session_per_unit=True,
        ),
        Workload(
            "multi5",
            "multi of 5 ops (create, setData, check, setData, delete); one op = one multi",
            _multi_units,
        ),
    )
}

"""bench/wire.py against kazoo's serializer (a third encoder, independent of pyzk and of the
bench) and against the byte layouts of PROTOCOL.md; and the workloads' expected replies."""

from __future__ import annotations

import itertools
import struct

from kazoo.protocol import serialization as kz
from kazoo.security import OPEN_ACL_UNSAFE

from bench import wire, workloads


def test_connect_request_is_the_49_byte_modern_frame() -> None:
    frame = wire.connect_request(30000)
    assert len(frame) == 49 and frame[:4] == struct.pack(">i", 45)
    expected = kz.Connect(0, 0, 30000, 0, b"\x00" * 16, False).serialize()
    assert frame[4:] == bytes(expected)


def test_records_match_kazoo_serializer() -> None:
    path, data = "/bench/keys/k0001", b"d" * 100
    assert wire.get_data(path) == bytes(kz.GetData(path, None).serialize())
    assert wire.exists(path, watch=True) == bytes(kz.Exists(path, True).serialize())
    assert wire.set_data(path, data) == bytes(kz.SetData(path, data, -1).serialize())
    assert wire.delete(path) == bytes(kz.Delete(path, -1).serialize())
    assert wire.check_version(path, 1) == bytes(kz.CheckVersion(path, 1).serialize())
    for flags in (wire.FLAGS_PERSISTENT, wire.FLAGS_EPHEMERAL):
        ours = wire.create(path, data, flags)
        assert ours == bytes(kz.Create(path, data, OPEN_ACL_UNSAFE, flags).serialize())


def test_multi_matches_kazoo_transaction() -> None:
    path = "/m"
    ops = [kz.Create(path, b"x", OPEN_ACL_UNSAFE, 0), kz.CheckVersion(path, 0), kz.Delete(path, -1)]
    ours = wire.multi(
        [(wire.OP_CREATE, wire.create(path, b"x")), (wire.OP_CHECK, wire.check_version(path, 0)),
         (wire.OP_DELETE, wire.delete(path))]
    )
    assert ours == bytes(kz.Transaction(ops).serialize())


def test_request_frame_prefix() -> None:
    frame = wire.request_frame(7, wire.OP_GET_DATA, b"abc")
    assert frame == struct.pack(">iii", 11, 7, 4) + b"abc"


def _multi_reply(results: list[tuple[int, int, bytes]]) -> bytes:
    body = wire.REPLY_HEADER.pack(5, 9, 0)
    for op_type, err, payload in results:
        body += wire.MULTI_HEADER.pack(op_type, False, err) + payload
    return body + wire.MULTI_HEADER.pack(-1, True, -1)


def test_multi_results_of_a_successful_multi() -> None:
    reply = _multi_reply([(1, 0, wire.ustring("/m")), (5, 0, bytes(68)), (2, 0, b"")])
    assert wire.multi_results(reply, [6, 68, 0]) == [(1, 0), (5, 0), (2, 0)]


def test_multi_results_of_a_failed_multi_use_error_bodies() -> None:
    err_body = struct.pack(">i", 0), struct.pack(">i", -101), struct.pack(">i", -2)
    reply = _multi_reply([(-1, 0, err_body[0]), (-1, -101, err_body[1]), (-1, -2, err_body[2])])
    assert wire.multi_results(reply, [6, 68, 0]) == [(-1, 0), (-1, -101), (-1, -2)]


def test_reply_lengths() -> None:
    assert wire.get_data_reply_length(100) == 16 + 4 + 100 + 68
    assert wire.stat_reply_length() == 84
    assert wire.create_reply_length("/a") == 16 + 4 + 2


def test_multi5_expected_reply_length_adds_up() -> None:
    (request,) = next(workloads.WORKLOADS["multi5"].units("t", 1))
    path_length = len("/bench/multi/t-0")
    assert request.reply_length == 16 + 6 * 9 + (4 + path_length) + 68 + 68
    assert request.multi_result_types == (1, 5, 13, 5, 2)


def test_create_delete_units_use_unique_paths() -> None:
    units = list(itertools.islice(workloads.WORKLOADS["create_delete"].units("t", 1), 50))
    paths = {unit[0].record for unit in units}
    assert len(paths) == 50 and all(len(unit) == 2 for unit in units)


def test_mixed_is_ninety_percent_get() -> None:
    units = list(itertools.islice(workloads.WORKLOADS["mixed"].units("t", 3), 4096))
    gets = sum(unit[0].op_type == wire.OP_GET_DATA for unit in units)
    assert 0.87 < gets / len(units) < 0.93


def test_exists_watch_unit_expects_the_notification_before_the_set_reply() -> None:
    exists, set_data = next(workloads.WORKLOADS["exists_watch"].units("t", 1))
    assert exists.op_type == wire.OP_EXISTS and not exists.fires_watch
    assert set_data.op_type == wire.OP_SET_DATA and set_data.fires_watch

"""Raw-protocol edge cases, each observed on Apache ZooKeeper 3.8.0 and asserted per target.

Rule: every bad connection is followed by a check that a second, healthy connection to the
same server still works (`assert_server_healthy`), because one client's garbage must never
hurt another client.
"""

from __future__ import annotations

import struct

import pytest

from tests.compat.rawclient import (
    OP_AUTH,
    OP_CLOSE_SESSION,
    OP_CREATE,
    OP_DELETE,
    OP_EXISTS,
    OP_GET_CHILDREN,
    OP_GET_DATA,
    OP_MULTI,
    OP_PING,
    OP_SET_DATA,
    OP_SET_WATCHES,
    OP_WHO_AM_I,
    PASSWORD_BYTES,
    XID_AUTH,
    XID_NOTIFICATION,
    XID_PING,
    XID_SET_WATCHES,
    RawClient,
    auth_packet,
    buffer,
    connect_request,
    create_request,
    int32,
    multi_request,
    parse_multi_results,
    parse_watcher_event,
    path_watch_request,
    read_ustring,
    set_watches_request,
    ustring,
)
from tests.compat.targets import serving_mode

pytestmark = pytest.mark.compat

ERR_OK = 0
ERR_RUNTIMEINCONSISTENCY = -2
ERR_MARSHALLINGERROR = -5
ERR_UNIMPLEMENTED = -6
ERR_NONODE = -101
ERR_AUTHFAILED = -115

OP_SYNC = 9

EVENT_NODE_CREATED = 1
EVENT_NODE_DELETED = 2
EVENT_NODE_DATA_CHANGED = 3
EVENT_NODE_CHILDREN_CHANGED = 4
STATE_SYNC_CONNECTED = 3

JUTE_MAXBUFFER = 0xFFFFF
CLOSE_WAIT_S = 3.0
# Apache keeps a connection open after a bad record; this is how long we watch it stay open.
STAYS_OPEN_S = 1.0


def connect(target) -> RawClient:
    client = RawClient.to(target.hosts)
    client.handshake()
    return client


def assert_server_healthy(target) -> None:
    """A fresh session can still connect, and a write plus a read work."""
    with connect(target) as client:
        client.send_request(1, OP_EXISTS, path_watch_request("/"))
        reply = client.recv_reply()
        assert (reply.xid, reply.err) == (1, ERR_OK)
        client.send_request(XID_PING, OP_PING)
        assert client.recv_reply().xid == XID_PING


def leader_kind(target) -> str | None:
    """The kind of the server that leads the ensemble (None standalone)."""
    modes = [(serving_mode(server.client_port), server.kind) for server in target.servers]
    return next((kind for mode, kind in modes if mode == "leader"), None)


def unique_path(request: pytest.FixtureRequest) -> str:
    return "/raw_" + request.node.name.replace("[", "_").replace("]", "")


@pytest.fixture
def base_path(target, request) -> str:
    """A fresh, empty persistent znode for this test."""
    path = unique_path(request)
    with connect(target) as client:
        client.send_request(1, OP_CREATE, create_request(path))
        reply = client.recv_reply()
        assert reply.err == ERR_OK, f"could not create {path}: {reply.err}"
    return path


def test_connect_with_read_only_byte_gets_37_byte_response(target) -> None:
    with RawClient.to(target.hosts) as client:
        response = client.handshake(read_only=False)
    assert response.body_length == 37
    assert response.protocol_version == 0
    assert response.timeout_ms == 30000
    assert response.session_id != 0
    assert len(response.password) == PASSWORD_BYTES
    assert response.read_only is False
    assert_server_healthy(target)


def test_connect_without_read_only_byte_gets_36_byte_response(target) -> None:
    with RawClient.to(target.hosts) as client:
        response = client.handshake(read_only=None)
        assert response.body_length == 36
        assert response.read_only is None
        assert len(response.password) == PASSWORD_BYTES
        # The old-client session is fully usable.
        client.send_request(1, OP_EXISTS, path_watch_request("/"))
        assert client.recv_reply().err == ERR_OK
    assert_server_healthy(target)


@pytest.mark.parametrize(
    ("requested_ms", "negotiated_ms"),
    [(1000, 4000), (4000, 4000), (10000, 10000), (1_000_000, 40000)],
)
def test_session_timeout_is_clamped_to_2_and_20_ticks(target, requested_ms, negotiated_ms) -> None:
    # Targets run with tickTime=2000: min 2 ticks = 4000 ms, max 20 ticks = 40000 ms.
    with RawClient.to(target.hosts) as client:
        assert client.handshake(timeout_ms=requested_ms).timeout_ms == negotiated_ms


def test_unknown_opcode_gets_unimplemented_then_close(target) -> None:
    with connect(target) as client:
        client.send_request(1, 999)
        reply = client.recv_reply()
        assert (reply.xid, reply.zxid, reply.err, reply.body) == (1, -1, ERR_UNIMPLEMENTED, b"")
        assert client.wait_closed(CLOSE_WAIT_S)
    assert_server_healthy(target)


@pytest.mark.parametrize("length", [JUTE_MAXBUFFER + 1, 0x7FFFFFFF, -5])
def test_frame_length_out_of_bounds_closes_without_reply(target, length) -> None:
    with connect(target) as client:
        client.send_raw(int32(length) + bytes(100))
        assert client.wait_closed(CLOSE_WAIT_S)
    assert_server_healthy(target)


def test_truncated_create_record_gets_marshalling_error_and_stays_open(target) -> None:
    with connect(target) as client:
        client.send_request(1, OP_PING)
        before = client.recv_reply().zxid
        # path length 1000 but only 4 path bytes in the frame
        client.send_request(2, OP_CREATE, int32(1000) + b"/abc")
        reply = client.recv_reply()
        assert (reply.xid, reply.err, reply.body) == (2, ERR_MARSHALLINGERROR, b"")
        # Apache runs the failed write through the pipeline: it consumes a zxid.
        assert reply.zxid == before + 1
        assert not client.wait_closed(STAYS_OPEN_S)
        client.send_request(3, OP_EXISTS, path_watch_request("/"))
        reply = client.recv_reply()
        assert (reply.xid, reply.err) == (3, ERR_OK)
    assert_server_healthy(target)


def test_truncated_read_record_gets_marshalling_error_without_zxid(target) -> None:
    with connect(target) as client:
        client.send_request(1, OP_PING)
        before = client.recv_reply().zxid
        client.send_request(2, OP_GET_DATA, b"")
        reply = client.recv_reply()
        assert (reply.xid, reply.zxid, reply.err, reply.body) == (
            2,
            before,
            ERR_MARSHALLINGERROR,
            b"",
        )
        client.send_request(3, OP_EXISTS, path_watch_request("/"))
        reply = client.recv_reply()
        assert (reply.xid, reply.err) == (3, ERR_OK)
    assert_server_healthy(target)


def test_reconnect_with_wrong_password_gets_timeout_zero_then_close(target, base_path) -> None:
    owner = RawClient.to(target.hosts)
    with owner:
        established = owner.handshake()
        owner.send_request(1, OP_CREATE, create_request(base_path + "/eph", b"", flags=1))
        assert owner.recv_reply().err == ERR_OK
        with RawClient.to(target.hosts) as intruder:
            response = intruder.handshake(
                session_id=established.session_id, password=b"x" * PASSWORD_BYTES
            )
            assert response.body_length == 37
            assert (response.timeout_ms, response.session_id) == (0, 0)
            assert response.password == bytes(PASSWORD_BYTES)
            assert response.read_only is False
            assert intruder.wait_closed(CLOSE_WAIT_S)
        # Observed on Apache 3.8.0: the session's current connection is closed before the
        # password is checked, so even a failed attempt disconnects the owner...
        assert owner.wait_closed(CLOSE_WAIT_S)
    # ...but the session itself survives and can be resumed with the right password.
    with RawClient.to(target.hosts) as resumed:
        response = resumed.handshake(
            session_id=established.session_id, password=established.password
        )
        assert response.session_id == established.session_id
        resumed.send_request(1, OP_EXISTS, path_watch_request(base_path + "/eph"))
        assert resumed.recv_reply().err == ERR_OK
    assert_server_healthy(target)


def test_reconnect_to_unknown_session_gets_timeout_zero_then_close(target) -> None:
    with RawClient.to(target.hosts) as client:
        response = client.handshake(session_id=0x7E57_0000_0000_0001, password=b"x" * 16)
        assert (response.timeout_ms, response.session_id, response.body_length) == (0, 0, 37)
        assert client.wait_closed(CLOSE_WAIT_S)
    assert_server_healthy(target)


def test_reconnect_with_right_password_moves_session_and_closes_old_connection(target) -> None:
    first = RawClient.to(target.hosts)
    with first:
        established = first.handshake()
        with RawClient.to(target.hosts) as second:
            resumed = second.handshake(
                session_id=established.session_id, password=established.password
            )
            assert resumed.session_id == established.session_id
            assert resumed.password == established.password
            assert resumed.timeout_ms == established.timeout_ms
            # Apache closes the older connection of a session that moved to a new one.
            assert first.wait_closed(CLOSE_WAIT_S)
            second.send_request(1, OP_EXISTS, path_watch_request("/"))
            assert second.recv_reply().err == ERR_OK
    assert_server_healthy(target)


def test_client_ahead_of_server_is_closed_without_response(target) -> None:
    with RawClient.to(target.hosts) as client:
        client.send_frame(connect_request(last_zxid_seen=1 << 40))
        assert client.wait_closed(CLOSE_WAIT_S)
    assert_server_healthy(target)


def test_ruok_four_letter_word(target) -> None:
    with RawClient.to(target.hosts) as client:
        client.send_raw(b"ruok")
        assert client.recv_raw(CLOSE_WAIT_S) == b"imok"
    assert_server_healthy(target)


def test_ping_reply_has_xid_minus_2_and_no_body(target) -> None:
    with connect(target) as client:
        client.send_request(1, OP_EXISTS, path_watch_request("/"))
        last_zxid = client.recv_reply().zxid
        client.send_request(XID_PING, OP_PING)
        reply = client.recv_reply()
        assert (reply.xid, reply.zxid, reply.err, reply.body) == (XID_PING, last_zxid, 0, b"")


def test_close_session_replies_then_closes(target, base_path) -> None:
    with connect(target) as client:
        client.send_request(1, OP_CREATE, create_request(base_path + "/eph", b"", flags=1))
        assert client.recv_reply().err == ERR_OK
        client.send_request(2, OP_CLOSE_SESSION)
        reply = client.recv_reply()
        assert (reply.xid, reply.err, reply.body) == (2, ERR_OK, b"")
        assert client.wait_closed(CLOSE_WAIT_S)
    with connect(target) as observer:
        observer.send_request(1, OP_EXISTS, path_watch_request(base_path + "/eph"))
        assert observer.recv_reply().err == ERR_NONODE  # the ephemeral went with its session
    assert_server_healthy(target)


def test_set_watches_catch_up_events_come_before_the_reply(target, base_path) -> None:
    node, gone, not_yet = base_path + "/n", base_path + "/gone", base_path + "/notyet"
    with connect(target) as writer, connect(target) as watcher:
        writer.send_request(1, OP_CREATE, create_request(node, b"v0"))
        relative_zxid = writer.recv_reply().zxid
        writer.send_request(2, OP_CREATE, create_request(node + "/kid"))
        writer.send_request(3, OP_SET_DATA, ustring(node) + buffer(b"v1") + int32(-1))
        assert [writer.recv_reply().err for _ in range(2)] == [ERR_OK, ERR_OK]

        watcher.send_request(
            XID_SET_WATCHES,
            OP_SET_WATCHES,
            set_watches_request(relative_zxid, [node, gone], [node, not_yet], [node]),
        )
        events = []
        reply = watcher.recv_reply()
        while reply.xid == XID_NOTIFICATION:
            assert (reply.zxid, reply.err) == (-1, 0)
            events.append(parse_watcher_event(reply.body))
            reply = watcher.recv_reply()
        assert (reply.xid, reply.err, reply.body) == (XID_SET_WATCHES, 0, b"")
        # Apache walks data, then exist, then child watches, in the order given.
        assert events == [
            (EVENT_NODE_DATA_CHANGED, STATE_SYNC_CONNECTED, node),
            (EVENT_NODE_DELETED, STATE_SYNC_CONNECTED, gone),
            (EVENT_NODE_CREATED, STATE_SYNC_CONNECTED, node),
            (EVENT_NODE_CHILDREN_CHANGED, STATE_SYNC_CONNECTED, node),
        ]
        # The exist watch on the missing path was registered: its creation fires it.
        writer.send_request(4, OP_CREATE, create_request(not_yet))
        assert writer.recv_reply().err == ERR_OK
        event = watcher.recv_reply()
        assert event.xid == XID_NOTIFICATION
        assert parse_watcher_event(event.body) == (EVENT_NODE_CREATED, 3, not_yet)
    assert_server_healthy(target)


def test_child_notification_precedes_the_create_reply(target, base_path) -> None:
    with connect(target) as writer, connect(target) as other:
        for client in (writer, other):
            client.send_request(1, OP_GET_CHILDREN, path_watch_request(base_path, True))
            assert client.recv_reply().err == ERR_OK
        writer.send_request(2, OP_CREATE, create_request(base_path + "/k"))
        first, second = writer.recv_reply(), writer.recv_reply()
        assert (first.xid, first.zxid, first.err) == (XID_NOTIFICATION, -1, 0)
        assert parse_watcher_event(first.body) == (EVENT_NODE_CHILDREN_CHANGED, 3, base_path)
        assert (second.xid, second.err) == (2, ERR_OK)
        assert second.body == ustring(base_path + "/k")
        notified = other.recv_reply()
        assert notified.xid == XID_NOTIFICATION
        assert parse_watcher_event(notified.body) == (EVENT_NODE_CHILDREN_CHANGED, 3, base_path)


def test_failed_multi_layout(target, base_path) -> None:
    with connect(target) as client:
        client.send_request(1, OP_PING)
        before = client.recv_reply().zxid
        ops = [
            (OP_CREATE, create_request(base_path + "/m")),
            (OP_SET_DATA, ustring(base_path + "/nope") + buffer(b"x") + int32(-1)),
            (OP_DELETE, ustring(base_path) + int32(-1)),
        ]
        client.send_request(2, OP_MULTI, multi_request(ops))
        reply = client.recv_reply()
        assert (reply.xid, reply.err) == (2, ERR_OK)
        assert reply.zxid == before + 1  # a failed multi still consumes a zxid
        expected = b"".join(
            int32(-1) + b"\x00" + int32(code) + int32(code)
            for code in (ERR_OK, ERR_NONODE, ERR_RUNTIMEINCONSISTENCY)
        )
        assert reply.body == expected + int32(-1) + b"\x01" + int32(-1)
        assert [r[2] for r in parse_multi_results(reply.body)] == [0, -101, -2]
        client.send_request(3, OP_EXISTS, path_watch_request(base_path + "/m"))
        assert client.recv_reply().err == ERR_NONODE  # nothing was applied
    assert_server_healthy(target)


def test_null_data_round_trips_as_null(target, base_path) -> None:
    """create with a -1 data length stores null: getData answers length -1, not 0."""
    with connect(target) as client:
        client.send_request(1, OP_CREATE, create_request(base_path + "/null", None))
        client.send_request(2, OP_CREATE, create_request(base_path + "/empty", b""))
        assert [client.recv_reply().err for _ in range(2)] == [0, 0]
        client.send_request(3, OP_GET_DATA, path_watch_request(base_path + "/null"))
        client.send_request(4, OP_GET_DATA, path_watch_request(base_path + "/empty"))
        null_reply, empty_reply = client.recv_reply(), client.recv_reply()
        assert struct.unpack_from(">i", null_reply.body) == (-1,)
        assert struct.unpack_from(">i", empty_reply.body) == (0,)
        assert len(null_reply.body) == len(empty_reply.body) == 4 + 68


def test_auth_with_unknown_scheme_fails_then_closes(target) -> None:
    with connect(target) as client:
        client.send_request(XID_AUTH, OP_AUTH, auth_packet("bogus", b"foo"))
        reply = client.recv_reply()
        assert (reply.xid, reply.zxid, reply.err, reply.body) == (XID_AUTH, 0, ERR_AUTHFAILED, b"")
        assert client.wait_closed(CLOSE_WAIT_S)
    assert_server_healthy(target)


def test_digest_auth_then_who_am_i(target) -> None:
    with connect(target) as client:
        client.send_request(XID_AUTH, OP_AUTH, auth_packet("digest", b"alice:secret"))
        reply = client.recv_reply()
        assert (reply.xid, reply.zxid, reply.err, reply.body) == (XID_AUTH, 0, ERR_OK, b"")
        client.send_request(1, OP_WHO_AM_I)
        reply = client.recv_reply()
        assert (reply.xid, reply.err) == (1, ERR_OK)
        (count,) = struct.unpack_from(">i", reply.body)
        offset, entries = 4, []
        for _ in range(count):
            scheme, offset = read_ustring(reply.body, offset)
            user, offset = read_ustring(reply.body, offset)
            entries.append((scheme, user))
        assert offset == len(reply.body)
        # Apache keeps auth ids in a hash set: the order is unspecified.
        assert sorted(entries) == [("digest", "alice"), ("ip", "127.0.0.1")]


def test_multi_mixing_reads_and_writes_on_every_member(target, base_path) -> None:
    """A multi with a create and a getData cannot be deserialized (MultiOperationRecord refuses
    mixed kinds): the leader's prep still consumes a zxid for it (an ErrorTxn), and the client
    gets MARSHALLINGERROR, whichever member it is connected to (issue 14: a follower used to
    answer err 0 with an empty result)."""
    for server in target.servers:
        with RawClient("127.0.0.1", server.client_port) as client:
            client.handshake()
            client.send_request(1, OP_SYNC, ustring("/"))  # this member has applied every earlier txn
            before = client.recv_reply().zxid
            ops = [(OP_CREATE, create_request(base_path + f"/mixed{server.server_id}")),
                   (OP_GET_DATA, path_watch_request(base_path))]
            client.send_request(2, OP_MULTI, multi_request(ops))
            reply = client.recv_reply()
            assert (reply.xid, reply.zxid, reply.err, reply.body) == (2, before + 1, ERR_MARSHALLINGERROR, b"")
            client.send_request(3, OP_EXISTS, path_watch_request(base_path + f"/mixed{server.server_id}"))
            assert client.recv_reply().err == ERR_NONODE
    assert_server_healthy(target)


NULL_PATH = int32(-1)
ERR_BADARGUMENTS = -8
ERR_NOWATCHER = -121


@pytest.mark.parametrize(("op", "record", "err"), [
    (OP_GET_DATA, NULL_PATH + b"\x00", ERR_MARSHALLINGERROR),
    (OP_EXISTS, NULL_PATH + b"\x00", ERR_MARSHALLINGERROR),
    (OP_GET_CHILDREN, NULL_PATH + b"\x00", ERR_MARSHALLINGERROR),
    (12, NULL_PATH + b"\x00", ERR_MARSHALLINGERROR),  # getChildren2
    (6, NULL_PATH, ERR_MARSHALLINGERROR),  # getACL
    (104, NULL_PATH, ERR_MARSHALLINGERROR),  # getAllChildrenNumber
    (17, NULL_PATH + int32(1), ERR_MARSHALLINGERROR),  # checkWatches
    (18, NULL_PATH + int32(1), ERR_NOWATCHER),  # removeWatches
    (OP_CREATE, NULL_PATH + buffer(b"") + int32(1) + int32(31) + ustring("world") + ustring("anyone")
     + int32(0), ERR_MARSHALLINGERROR),
    (15, NULL_PATH + buffer(b"") + int32(1) + int32(31) + ustring("world") + ustring("anyone")
     + int32(0), ERR_MARSHALLINGERROR),  # create2
    (OP_DELETE, NULL_PATH + int32(-1), ERR_MARSHALLINGERROR),
    (OP_SET_DATA, NULL_PATH + buffer(b"x") + int32(-1), ERR_BADARGUMENTS),
    (7, NULL_PATH + int32(1) + int32(31) + ustring("world") + ustring("anyone") + int32(-1),
     ERR_BADARGUMENTS),  # setACL
], ids=["getData", "exists", "getChildren", "getChildren2", "getACL", "getAllChildrenNumber",
        "checkWatches", "removeWatches", "create", "create2", "delete", "setData", "setACL"])
def test_null_path_is_answered_like_zookeeper(target, op, record, err) -> None:
    """A null path: ZooKeeper dereferences it (MARSHALLINGERROR from the catch-all) unless a
    path check with its own code comes first; the connection stays open."""
    with connect(target) as client:
        client.send_request(5, op, record)
        reply = client.recv_reply()
        assert (reply.xid, reply.err, reply.body) == (5, err, b"")
        client.send_request(6, OP_EXISTS, path_watch_request("/"))
        assert client.recv_reply().err == ERR_OK
    assert_server_healthy(target)


@pytest.mark.parametrize("op", [OP_MULTI, 22], ids=["multi", "multiRead"])
def test_null_path_in_a_multi_sub_op_is_a_marshalling_error(target, base_path, op) -> None:
    """Any sub-op with a null path fails the whole multi with MARSHALLINGERROR and applies
    nothing. (Apache also sends an empty multi response body after the error header, which
    clients ignore on an error; pyzk sends none.)"""
    if leader_kind(target) == "apache":
        # Seen in CI: a 3-server Apache 3.8.0 ensemble stopped answering after this multi, and
        # every later test of the module timed out against it; so did a mixed one whose Java
        # leader got it from a pyzk follower (a Java follower forwards it to a pyzk leader
        # unharmed). Asserted where no Apache server leads.
        pytest.skip("an Apache 3.8.0 leader stops answering after a multi with a null path")
    if op == OP_MULTI:
        ops = [(OP_CREATE, create_request(base_path + "/n")), (13, NULL_PATH + int32(-1))]
    else:
        ops = [(OP_GET_DATA, NULL_PATH + b"\x00")]
    with connect(target) as client:
        client.send_request(2, op, multi_request(ops))
        reply = client.recv_reply()
        assert (reply.xid, reply.err) == (2, ERR_MARSHALLINGERROR)
        client.send_request(3, OP_EXISTS, path_watch_request(base_path + "/n"))
        assert client.recv_reply().err == ERR_NONODE
    assert_server_healthy(target)


@pytest.mark.parametrize("sub_op", [(7, ustring("/") + int32(1) + int32(31) + ustring("world")
                                     + ustring("anyone") + int32(-1)),
                                    (99, ustring("/"))], ids=["setACL", "unknown"])
def test_multi_with_an_undecodable_sub_op_is_an_error_txn(target, base_path, sub_op) -> None:
    """A multi whose record cannot be read (a setACL or unknown sub-op) consumes a zxid as an
    ErrorTxn: MARSHALLINGERROR, no body, and nothing applied."""
    with connect(target) as client:
        client.send_request(1, 9, ustring("/"))  # sync: the reply carries the last zxid
        before = client.recv_reply().zxid
        ops = [(OP_CREATE, create_request(base_path + "/u")), sub_op]
        client.send_request(2, OP_MULTI, multi_request(ops))
        reply = client.recv_reply()
        assert (reply.xid, reply.zxid, reply.err, reply.body) == (2, before + 1, ERR_MARSHALLINGERROR, b"")
        client.send_request(3, OP_EXISTS, path_watch_request(base_path + "/u"))
        assert client.recv_reply().err == ERR_NONODE
    assert_server_healthy(target)


def test_digest_auth_with_null_buffer_fails_then_closes(target) -> None:
    with connect(target) as client:
        client.send_request(XID_AUTH, OP_AUTH, int32(0) + ustring("digest") + NULL_PATH)
        reply = client.recv_reply()
        assert (reply.xid, reply.zxid, reply.err, reply.body) == (XID_AUTH, 0, ERR_AUTHFAILED, b"")
        assert client.wait_closed(CLOSE_WAIT_S)
    assert_server_healthy(target)


def test_ip_auth_with_null_buffer_succeeds(target) -> None:
    """The ip scheme never reads the auth data: a null buffer is fine."""
    with connect(target) as client:
        client.send_request(XID_AUTH, OP_AUTH, int32(0) + ustring("ip") + NULL_PATH)
        reply = client.recv_reply()
        assert (reply.xid, reply.zxid, reply.err, reply.body) == (XID_AUTH, 0, ERR_OK, b"")
        client.send_request(1, OP_EXISTS, path_watch_request("/"))
        assert client.recv_reply().err == ERR_OK

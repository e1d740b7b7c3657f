"""Session passwords, session ids and the tick-bucket SessionTracker."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyzk.sessions import (
    CONTAINER_EPHEMERAL_OWNER,
    SessionTracker,
    generate_password,
    initial_session_id,
    next_expiry_deadline_ms,
)

# PROTOCOL.md §2.2: checked with a real JVM, the last one against a live 3.8.0 server.
PASSWORD_VECTORS = [
    (0x0100000000001234, "3c18abe05b0e6182741d625d127c15b0"),
    (0x0100012A3B4C0000, "162e1a85eb946a8ee455d11facb21e1b"),
    (0x0000000000000001, "054cc74a37327db215e702e20c73f005"),
    (0x01000022039B0000, "477b0e32c878f556fde8680151cadc9f"),
]


@pytest.mark.parametrize(("session_id", "password_hex"), PASSWORD_VECTORS)
def test_password_vectors(session_id: int, password_hex: str) -> None:
    assert generate_password(session_id).hex() == password_hex


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_password_is_16_bytes_and_sign_independent(session_id: int) -> None:
    password = generate_password(session_id)
    assert len(password) == 16
    assert generate_password(session_id & ((1 << 64) - 1)) == password


def test_initial_session_id_layout() -> None:
    # Verified live (§2.12): standalone gave 0x0100000b68870000, sid 2 0x02000016ee2d0000.
    assert initial_session_id(1, 0x0B6887) == 0x0100000B68870000
    assert initial_session_id(2, 0x16EE2D) == 0x02000016EE2D0000
    # Only the low 40 bits of the clock survive; the server id owns the top byte.
    assert initial_session_id(1, (0xFF << 40) | 0x12345) == 0x0100000123450000


def test_initial_session_id_is_signed_64_bit() -> None:
    assert initial_session_id(255, 1) == 0xFF00000000010000 - (1 << 64)
    assert initial_session_id(128, 0) == CONTAINER_EPHEMERAL_OWNER + 1  # skips Long.MIN_VALUE


def test_next_session_id_counts_up_and_skips_container_owner() -> None:
    tracker = SessionTracker(tick_time_ms=2000, server_id=1, now_ms=0x0B6887)
    assert tracker.next_session_id() == 0x0100000B68870000
    assert tracker.next_session_id() == 0x0100000B68870001
    wrapping = SessionTracker(tick_time_ms=2000, server_id=0x7F, now_ms=(1 << 40) - 1)
    assert wrapping.next_session_id() == 0x7FFFFFFFFFFF0000
    for _ in range(0xFFFF):
        wrapping.next_session_id()
    assert wrapping.next_session_id() == CONTAINER_EPHEMERAL_OWNER + 1


@pytest.mark.parametrize(
    ("now_ms", "timeout_ms", "deadline_ms"),
    [(0, 4000, 6000), (1, 4000, 6000), (1999, 4000, 6000), (2000, 4000, 8000), (100, 0, 2000)],
)
def test_deadline_is_next_tick_strictly_after_now_plus_timeout(
    now_ms: int, timeout_ms: int, deadline_ms: int
) -> None:
    assert next_expiry_deadline_ms(now_ms, timeout_ms, 2000) == deadline_ms


def test_bucket_expiry_arithmetic() -> None:
    tracker = SessionTracker(tick_time_ms=2000, server_id=1, now_ms=0)
    tracker.add_session(0x10, 4000, now_ms=500)  # deadline 6000
    tracker.add_session(0x11, 4000, now_ms=1500)  # same bucket
    tracker.add_session(0x12, 6000, now_ms=500)  # deadline 8000
    assert tracker.buckets() == {6000: [0x10, 0x11], 8000: [0x12]}
    assert tracker.next_expiry_ms() == 6000
    assert tracker.expired(5999) == []
    assert tracker.expired(6000) == [0x10, 0x11]
    assert tracker.is_closing(0x10)
    assert tracker.buckets() == {8000: [0x12]}
    assert tracker.expired(6000) == []  # a bucket is handed out once
    assert tracker.timeout_of(0x10) == 4000  # still tracked until its closeSession applies
    tracker.remove_session(0x10)
    assert tracker.timeout_of(0x10) is None
    assert tracker.expired(100_000) == [0x12]
    assert tracker.next_expiry_ms() is None


def test_touch_moves_session_to_a_later_bucket() -> None:
    tracker = SessionTracker(tick_time_ms=1000, server_id=1, now_ms=0)
    tracker.add_session(7, 3000, now_ms=0)
    assert tracker.buckets() == {4000: [7]}
    assert tracker.touch(7, now_ms=2500)
    assert tracker.buckets() == {6000: [7]}
    assert tracker.expired(4000) == []
    assert tracker.expired(6000) == [7]


def test_touch_fails_for_unknown_and_closing_sessions() -> None:
    tracker = SessionTracker(tick_time_ms=1000, server_id=1, now_ms=0)
    assert not tracker.touch(99, now_ms=0)
    tracker.add_session(5, 2000, now_ms=0)
    tracker.set_closing(5)
    assert not tracker.touch(5, now_ms=500)
    assert tracker.buckets() == {3000: [5]}  # a closing session keeps its deadline
    tracker.remove_session(5)
    assert tracker.buckets() == {}
    tracker.remove_session(5)  # removing twice is harmless
    tracker.set_closing(5)  # as is closing an unknown session


def test_re_adding_a_session_takes_the_new_timeout() -> None:
    tracker = SessionTracker(tick_time_ms=1000, server_id=1, now_ms=0)
    tracker.add_session(1, 2000, now_ms=0)
    tracker.add_session(1, 5000, now_ms=0)
    assert tracker.timeout_of(1) == 5000
    assert tracker.buckets() == {6000: [1]}


def test_iteration_is_sorted_by_session_id() -> None:
    tracker = SessionTracker(tick_time_ms=1000, server_id=1, now_ms=0)
    for session_id, timeout_ms in [(30, 3000), (-5, 4000), (10, 2000)]:
        tracker.add_session(session_id, timeout_ms, now_ms=0)
    assert list(tracker) == [(-5, 4000), (10, 2000), (30, 3000)]
    assert len(tracker) == 3 and 10 in tracker and 11 not in tracker


@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 10_000), st.integers(0, 3)),
        max_size=60,
    )
)
def test_random_traffic_keeps_buckets_consistent(operations: list[tuple[int, int, int]]) -> None:
    """Each live, non-expired session sits in exactly one bucket at its computed deadline,
    and expired() returns exactly the sessions whose deadline has passed."""
    tick = 500
    tracker = SessionTracker(tick_time_ms=tick, server_id=1, now_ms=0)
    now = 0
    deadlines: dict[int, int] = {}
    for session_id, step_ms, action in operations:
        now += step_ms // 10
        if action == 0:
            tracker.add_session(session_id, 1000 + step_ms, now)
            deadlines[session_id] = next_expiry_deadline_ms(now, 1000 + step_ms, tick)
        elif action == 1:
            touched = tracker.touch(session_id, now)
            assert touched == (session_id in deadlines)
            if touched:
                deadlines[session_id] = next_expiry_deadline_ms(
                    now, tracker.timeout_of(session_id) or 0, tick
                )
        elif action == 2:
            tracker.remove_session(session_id)
            deadlines.pop(session_id, None)
        else:
            due = sorted((d, s) for s, d in deadlines.items() if d <= now)
            assert tracker.expired(now) == [s for _, s in due]
            for _, s in due:
                del deadlines[s]
                tracker.remove_session(s)
        flattened = {s: d for d, ids in tracker.buckets().items() for s in ids}
        assert flattened == deadlines
        assert all(d % tick == 0 for d in flattened.values())


def test_tick_time_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SessionTracker(tick_time_ms=0, server_id=1, now_ms=0)

"""Session ids, session passwords and the session tracker (SessionTrackerImpl + ExpiryQueue).

Rule 1: pure. Time comes in as `now_ms` (a monotonic millisecond clock owned by the caller);
nothing here reads a clock or draws a random number.
Rule 2: bit-exact with ZooKeeper where another server can observe it: the password of a
session id (any server of a mixed ensemble must compute the same 16 bytes) and the layout
of a server's session ids.
Rule 3: deterministic. Expiry buckets are kept in a SortedDict keyed by deadline, and every
listing is sorted by session id, so iteration order never depends on hashing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sortedcontainers import SortedDict, SortedSet

_MASK_64 = (1 << 64) - 1
_MASK_48 = (1 << 48) - 1
_JAVA_RANDOM_MULTIPLIER = 0x5DEECE66D
_JAVA_RANDOM_ADDEND = 0xB
_PASSWORD_SEED_SALT = 0xB3415C00  # ZooKeeperServer.superSecret
SESSION_PASSWORD_BYTES = 16

# EphemeralType.CONTAINER_EPHEMERAL_OWNER: never handed out as a session id, since a node
# owned by it would read as a container.
CONTAINER_EPHEMERAL_OWNER = -0x8000000000000000


def _to_signed_64(value: int) -> int:
    value &= _MASK_64
    return value - (1 << 64) if value >= 1 << 63 else value


def generate_password(session_id: int) -> bytes:
    """The session password: java.util.Random(sessionId ^ 0xB3415C00).nextBytes(16)."""
    seed = ((session_id ^ _PASSWORD_SEED_SALT) ^ _JAVA_RANDOM_MULTIPLIER) & _MASK_48
    out = bytearray()
    while len(out) < SESSION_PASSWORD_BYTES:
        seed = (seed * _JAVA_RANDOM_MULTIPLIER + _JAVA_RANDOM_ADDEND) & _MASK_48
        value = seed >> 16  # Random.next(32)
        # nextBytes emits each 32-bit value low byte first.
        out += value.to_bytes(4, "little")
    return bytes(out[:SESSION_PASSWORD_BYTES])


def initial_session_id(server_id: int, now_ms: int) -> int:
    """SessionTrackerImpl.initializeNextSessionId: server id in the top byte, the low 40
    bits of now_ms in the next five bytes, zeros in the low two; a signed 64-bit value."""
    time_bits = ((now_ms << 24) & _MASK_64) >> 8
    session_id = _to_signed_64(time_bits | (server_id << 56))
    if session_id == CONTAINER_EPHEMERAL_OWNER:
        session_id += 1
    return session_id


def next_expiry_deadline_ms(now_ms: int, timeout_ms: int, tick_time_ms: int) -> int:
    """ExpiryQueue.roundToNextInterval(now + timeout): the next multiple of tickTime
    strictly after now + timeout (an exact multiple moves to the following tick)."""
    return ((now_ms + timeout_ms) // tick_time_ms + 1) * tick_time_ms


# checkSession's answers (KeeperException codes: SESSIONEXPIRED -112, SESSIONMOVED -118).
SESSION_OK = 0
SESSION_EXPIRED = -112
SESSION_MOVED = -118


@dataclass(slots=True)
class _Session:
    timeout_ms: int
    deadline_ms: int | None  # None once its bucket has expired (polled) or never queued
    is_closing: bool = False
    # The server whose connection the session is on (its server id; None until the first
    # checked request or revalidation claims it), as SessionTrackerImpl's SessionImpl.owner.
    owner: int | None = None


class SessionTracker:
    """Global sessions of one server: timeouts, tick-bucket expiry and id allocation.

    The caller feeds it the applied createSession/closeSession txns (add_session /
    remove_session), touches sessions on client traffic, and polls expired() at
    next_expiry_ms(); each id expired() returns is marked closing and must be closed with a
    closeSession txn, after which the caller calls remove_session.
    """

    def __init__(self, tick_time_ms: int, server_id: int, now_ms: int) -> None:
        if tick_time_ms <= 0:
            raise ValueError(f"tickTime must be positive, got {tick_time_ms}")
        self.tick_time_ms = tick_time_ms
        self._next_session_id = initial_session_id(server_id, now_ms)
        self._sessions: dict[int, _Session] = {}
        self._buckets: SortedDict = SortedDict()  # deadline_ms -> SortedSet[session_id]

    def next_session_id(self) -> int:
        """Allocate the id for a new session (SessionTrackerImpl.createSession)."""
        session_id = self._next_session_id
        self._next_session_id = _to_signed_64(session_id + 1)
        if self._next_session_id == CONTAINER_EPHEMERAL_OWNER:
            self._next_session_id += 1
        return session_id

    def add_session(self, session_id: int, timeout_ms: int, now_ms: int) -> None:
        """Track a session (applied createSession txn, or a session loaded from disk).

        Re-adding a tracked session takes the new timeout and re-queues it, keeping its
        closing mark, as trackSession + commitSession do."""
        session = self._sessions.get(session_id)
        if session is None:
            session = _Session(timeout_ms=timeout_ms, deadline_ms=None)
            self._sessions[session_id] = session
        else:
            session.timeout_ms = timeout_ms
        self._requeue(session_id, session, now_ms)

    def touch(self, session_id: int, now_ms: int) -> bool:
        """Push the session's deadline out; False when it is unknown or closing."""
        session = self._sessions.get(session_id)
        if session is None or session.is_closing:
            return False
        self._requeue(session_id, session, now_ms)
        return True

    def set_closing(self, session_id: int) -> None:
        """Mark a session closing (closeSession submitted): touches fail from now on."""
        session = self._sessions.get(session_id)
        if session is not None:
            session.is_closing = True

    def is_open(self, session_id: int) -> bool:
        """Tracked and not closing: the session may still write (one lookup, per request)."""
        session = self._sessions.get(session_id)
        return session is not None and not session.is_closing

    def set_owner(self, session_id: int, owner: int) -> bool:
        """The session now lives on server `owner` (createSession, revalidation); False when
        it is unknown or closing (setOwner's SessionExpiredException)."""
        session = self._sessions.get(session_id)
        if session is None or session.is_closing:
            return False
        session.owner = owner
        return True

    def check_session(self, session_id: int, owner: int) -> int:
        """SessionTrackerImpl.checkSession for a write arriving through server `owner`:
        SESSION_EXPIRED when unknown or closing, SESSION_MOVED when another server owns it;
        an unowned session is claimed by `owner`."""
        session = self._sessions.get(session_id)
        if session is None or session.is_closing:
            return SESSION_EXPIRED
        if session.owner is None:
            session.owner = owner
        elif session.owner != owner:
            return SESSION_MOVED
        return SESSION_OK

    def owner_of(self, session_id: int) -> int | None:
        session = self._sessions.get(session_id)
        return None if session is None else session.owner

    def is_closing(self, session_id: int) -> bool:
        session = self._sessions.get(session_id)
        return session is not None and session.is_closing

    def remove_session(self, session_id: int) -> None:
        """Forget a session (its closeSession txn was applied). Unknown ids are ignored."""
        session = self._sessions.pop(session_id, None)
        if session is not None:
            self._unqueue(session_id, session)

    def expired(self, now_ms: int) -> list[int]:
        """Sessions whose bucket deadline is <= now_ms, in deadline then id order.

        They are marked closing and leave the queue (as ExpiryQueue.poll hands out a bucket
        once); the caller submits a closeSession txn for each."""
        result: list[int] = []
        while self._buckets and self._buckets.peekitem(0)[0] <= now_ms:
            _deadline, session_ids = self._buckets.popitem(0)
            for session_id in session_ids:
                session = self._sessions[session_id]
                session.deadline_ms = None
                session.is_closing = True
                result.append(session_id)
        return result

    def next_expiry_ms(self) -> int | None:
        """The earliest bucket deadline: when expired() will next return something."""
        if not self._buckets:
            return None
        deadline: int = self._buckets.peekitem(0)[0]
        return deadline

    def timeout_of(self, session_id: int) -> int | None:
        session = self._sessions.get(session_id)
        return None if session is None else session.timeout_ms

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """(session_id, timeout_ms) in session id order: for snapshots and `dump`."""
        for session_id in sorted(self._sessions):
            yield session_id, self._sessions[session_id].timeout_ms

    def buckets(self) -> dict[int, list[int]]:
        """deadline_ms -> sorted session ids, in deadline order (the `dump` 4lw)."""
        return {deadline: list(ids) for deadline, ids in self._buckets.items()}

    def _requeue(self, session_id: int, session: _Session, now_ms: int) -> None:
        deadline_ms = next_expiry_deadline_ms(now_ms, session.timeout_ms, self.tick_time_ms)
        if deadline_ms == session.deadline_ms:
            return
        self._unqueue(session_id, session)
        bucket = self._buckets.get(deadline_ms)
        if bucket is None:
            bucket = self._buckets[deadline_ms] = SortedSet()
        bucket.add(session_id)
        session.deadline_ms = deadline_ms

    def _unqueue(self, session_id: int, session: _Session) -> None:
        if session.deadline_ms is None:
            return
        bucket = self._buckets[session.deadline_ms]
        bucket.discard(session_id)
        if not bucket:
            del self._buckets[session.deadline_ms]
        session.deadline_ms = None

"""Checkers: pure functions over histories and final trees, returning anomaly descriptions.

Rule 1: no I/O, no clock: a checker sees a list of ``Op`` (tests/jepsen/history.py) and plain
        dicts; the same inputs always give the same list of strings (empty = no anomaly).
Rule 2: an anomaly string starts with its kind: "nonlinearizable", "unknown", "reply-mismatch",
        "lost", "phantom", "duplicate", "duplicate-name", "reply-of-another-request",
        "impossible-failure", "ephemeral-survived", "trees-differ", "read-from-the-future".
Rule 3: "ok" ops happened, "fail" ops did not, "info" ops may have happened at any point after
        their invoke, or never.  An "unknown" (search budget exhausted) is not proof of a bug
        but is reported, never silently passed.

A final tree is ``{path: [data, version, ephemeralOwner]}`` (data decoded as UTF-8).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from tests.jepsen.history import FAIL, INFO, OK, Op

NODE_BUDGET = 10_000_000
MAX_LISTED = 12
BAD_VERSION = "BadVersionError"
NOT_CREATE_ERRORS = ("BadVersionError", "NotEmptyError")

State = Hashable
Step = Callable[[State, Op], tuple[bool, State]]


# ---- linearizability: Wing & Gong search with Lowe's just-in-time linearization ----------------


@dataclass
class LinResult:
    valid: bool | None          # None = unknown (budget exhausted)
    nodes: int
    detail: str = ""


def register_step(state: State, op: Op) -> tuple[bool, State]:
    """A ZooKeeper znode as a register: state (value, version).

    write = setData(version -1); cas = setData(expected version); read = sync + getData.
    An ok write/cas must return the version it created; a BadVersion cas saw another version.
    """
    value, version = state  # type: ignore[misc]
    if op.f == "read":
        return (list(op.result) == [value, version]), state
    if op.f == "write":
        if op.status == OK and op.result != version + 1:
            return False, state
        return True, (op.value, version + 1)
    if op.f == "cas":
        expected, new_value = op.value
        if op.status == FAIL:  # only BadVersion failures reach the model
            return version != expected, state
        if version != expected:
            return False, state
        if op.status == OK and op.result != expected + 1:
            return False, state
        return True, (new_value, version + 1)
    raise ValueError(f"register model has no op {op.f!r}")


def register_doomed(state: State, op: Op) -> bool:
    """True if ``op`` (definite, not linearized yet) can never take effect from ``state`` on:
    versions only grow, so a state past the version the op needs is a dead end."""
    version = state[1]  # type: ignore[index]
    if op.status != OK:
        return False
    if op.f == "read":
        return version > op.result[1]
    if op.f == "write":
        return version > op.result - 1
    if op.f == "cas":
        return version > op.value[0]
    return False


def register_ops(ops: Iterable[Op]) -> list[Op]:
    """The ops that constrain a register: ok ops, BadVersion cas failures, info writes and cas."""
    kept = []
    for o in ops:
        if o.f == "read":
            if o.status == OK:
                kept.append(o)
        elif o.f in ("write", "cas"):
            if o.status in (OK, INFO) or o.status == FAIL and o.f == "cas" and o.error == BAD_VERSION:
                kept.append(o)
        elif o.status == "pending":
            raise ValueError(f"pending op {o.describe()}")
    return kept


UNREAD = "<never read>"


def unread_values(ops: list[Op]) -> list[Op]:
    """Ops with every written value that no ok read returned replaced by UNREAD.

    Sound for the register model: a read matches only the value it returned, so states that
    differ only in never-read values behave the same for every op of the history.
    """
    read = {o.result[0] for o in ops if o.f == "read" and o.status == OK}
    out = []
    for o in ops:
        if o.f == "write" and o.value not in read:
            o = replace(o, value=UNREAD)
        elif o.f == "cas" and o.value[1] not in read:
            o = replace(o, value=[o.value[0], UNREAD])
        out.append(o)
    return out


def register_symmetry(o: Op) -> Hashable | None:
    """Info ops with the same effect and precondition are interchangeable."""
    if o.status != INFO:
        return None
    if o.f == "write" and o.value == UNREAD:
        return ("write",)
    if o.f == "cas" and o.value[1] == UNREAD:
        return ("cas", o.value[0])
    return None


def linearizable(ops: list[Op], init: State, step: Step = register_step,
                 budget: int = NODE_BUDGET,
                 symmetry: Callable[[Op], Hashable | None] | None = None,
                 doomed: Callable[[State, Op], bool] | None = None,
                 originals: list[Op] | None = None) -> LinResult:
    """WGL search over ``ops`` (ok/fail are definite; info ops may also never take effect).

    Entries (calls at invoke time, returns at completion; info ops have no return) form a doubly
    linked list.  The search linearizes a call whose model step succeeds and whose
    (linearized set, state) pair is new, restarting from the head; reaching a return whose call
    is not linearized yet means backtracking.  Done when every definite op is linearized.

    ``symmetry`` names classes of interchangeable info ops (same precondition, same effect);
    within a class ops are only linearized in invoke order (an exchange argument keeps this
    complete), which turns 2^k subsets of k pending info ops into k + 1 prefixes.
    ``doomed(state, op)`` (sound pruning) says a pending definite op can never follow ``state``;
    a new state that dooms an op called before the first pending return is not entered.
    ``originals`` (same positions as ``ops``) are what the failure detail describes.
    """
    shown = originals if originals is not None else ops
    n = len(ops)
    definite = [o.status != INFO for o in ops]
    klass: list[Hashable | None] = [
        symmetry(o) if symmetry is not None and not definite[p] else None
        for p, o in enumerate(ops)]
    class_order: dict[Hashable, list[int]] = defaultdict(list)
    for pos in sorted(range(n), key=lambda p: (ops[p].invoke_t, p)):
        if klass[pos] is not None:
            class_order[klass[pos]].append(pos)
    classes = list(class_order)
    class_done = [0] * len(classes)
    # Ops of a symmetry class stay out of the list: the head of each class is tried first at
    # every node, if it was invoked before the first pending return.
    raw: list[tuple[float, int, int]] = []  # (time, 0 = call / 1 = return, op position)
    for pos, o in enumerate(ops):
        if klass[pos] is not None:
            continue
        raw.append((o.invoke_t, 0, pos))
        if definite[pos]:
            assert o.complete_t is not None
            raw.append((o.complete_t, 1, pos))
    raw.sort()  # on equal times calls come first: they count as concurrent
    size = len(raw) + 2
    head, tail = 0, size - 1
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    is_call = [False] * size
    op_of = [-1] * size
    when = [float("inf")] * size
    match = [0] * size  # call entry -> its return entry (0: none)
    call_entry = [0] * n
    for k, (t, kind, pos) in enumerate(raw, start=1):
        op_of[k] = pos
        when[k] = t
        if kind == 0:
            is_call[k] = True
            call_entry[pos] = k
        else:
            match[call_entry[pos]] = k

    def unlink(e: int) -> None:
        nxt[prv[e]] = nxt[e]
        prv[nxt[e]] = prv[e]

    def relink(e: int) -> None:
        nxt[prv[e]] = e
        prv[nxt[e]] = e

    def first_return_time() -> float:
        e = nxt[head]
        while e != tail and is_call[e]:
            e = nxt[e]
        return when[e]

    doomed_by: dict[int, int] = {}  # op position -> an op its effect would leave no place for

    def hopeless(pos: int, new_state: State) -> bool:
        if doomed is None:
            return False
        e = nxt[head]
        while e != tail:
            if definite[op_of[e]] and doomed(new_state, ops[op_of[e]]):
                doomed_by[pos] = op_of[e]
                return True
            if not is_call[e]:
                return False
            e = nxt[e]
        return False

    state = init
    linearized = 0
    remaining = sum(definite)
    # stack frames: (class index or -1, list entry or -1, state before)
    stack: list[tuple[int, int, State]] = []
    cache: set[tuple[int, State]] = set()
    nodes = 0
    deepest = -1
    deepest_detail = ""
    ci = 0          # next class to try at this node; len(classes) = go on with the list
    e = nxt[head]   # next list entry to try once the classes are done
    while remaining > 0:
        nodes += 1
        if nodes > budget:
            return LinResult(None, nodes, f"search budget of {budget} nodes exhausted "
                                          f"({deepest} of {n} ops linearized at the deepest "
                                          f"point)")
        if ci < len(classes):
            done = class_done[ci]
            order = class_order[classes[ci]]
            if done < len(order) and ops[order[done]].invoke_t <= first_return_time():
                pos = order[done]
                ok, new_state = step(state, ops[pos])
                if ok and not hopeless(pos, new_state):
                    new_lin = linearized | (1 << pos)
                    if (new_lin, new_state) not in cache:
                        cache.add((new_lin, new_state))
                        stack.append((ci, -1, state))
                        state, linearized = new_state, new_lin
                        class_done[ci] += 1
                        ci, e = 0, nxt[head]
                        continue
            ci += 1
            continue
        if e != tail and is_call[e]:
            pos = op_of[e]
            ok, new_state = step(state, ops[pos])
            if ok:
                unlink(e)  # (hopeless must not see the op itself)
                if match[e]:
                    unlink(match[e])
                if hopeless(pos, new_state):
                    ok = False
                if match[e]:
                    relink(match[e])
                relink(e)
            if ok:
                new_lin = linearized | (1 << pos)
                if (new_lin, new_state) not in cache:
                    cache.add((new_lin, new_state))
                    stack.append((-1, e, state))
                    state, linearized = new_state, new_lin
                    if definite[pos]:
                        remaining -= 1
                    unlink(e)
                    if match[e]:
                        unlink(match[e])
                    ci, e = 0, nxt[head]
                    continue
            e = nxt[e]
            continue
        # A return entry whose call could not be linearized before it: backtrack.
        if len(stack) > deepest and e != tail:
            deepest = len(stack)
            pending = []
            f = nxt[head]
            while f != e and len(pending) < 4:
                if definite[op_of[f]] and op_of[f] != op_of[e]:
                    pending.append(shown[op_of[f]].describe())
                f = nxt[f]
            blocked = op_of[e]
            after = (f" and still leave a place for {shown[doomed_by[blocked]].describe()}"
                     if blocked in doomed_by else "")
            deepest_detail = (f"after {deepest} linearized ops the state is {state!r} and "
                              f"{shown[blocked].describe()} cannot take effect before it returns"
                              f"{after}"
                              + (f" (concurrent with: {'; '.join(pending)})" if pending else ""))
        if not stack:
            return LinResult(False, nodes, deepest_detail)
        popped_class, popped_entry, state = stack.pop()
        if popped_class >= 0:
            class_done[popped_class] -= 1
            pos = class_order[classes[popped_class]][class_done[popped_class]]
            linearized &= ~(1 << pos)
            ci, e = popped_class + 1, nxt[head]
            continue
        pos = op_of[popped_entry]
        linearized &= ~(1 << pos)
        if definite[pos]:
            remaining += 1
        if match[popped_entry]:
            relink(match[popped_entry])
        relink(popped_entry)
        ci, e = len(classes), nxt[popped_entry]
    return LinResult(True, nodes)


def check_registers(ops: list[Op], init_value: str, budget: int = NODE_BUDGET) -> list[str]:
    """Per key: direct reply checks, then linearizability of (value, version) from (init, 0)."""
    anomalies: list[str] = []
    by_key: dict[str, list[Op]] = defaultdict(list)
    for o in ops:
        if o.f in ("read", "write", "cas"):
            by_key[o.key or ""].append(o)
    for key in sorted(by_key):
        key_ops = by_key[key]
        versions: dict[int, Op] = {}
        for o in key_ops:
            if o.status != OK or o.f not in ("write", "cas"):
                continue
            if o.f == "cas" and o.result != o.value[0] + 1:
                anomalies.append(
                    f"reply-mismatch: {key}: setData with expected version {o.value[0]} replied "
                    f"ok, version {o.result} (must be {o.value[0] + 1}): {o.describe()}")
            other = versions.get(o.result)
            if other is not None:
                anomalies.append(
                    f"duplicate-version: {key}: two acknowledged writes created version "
                    f"{o.result}: {other.describe()} and {o.describe()}")
            else:
                versions[o.result] = o
        kept = register_ops(key_ops)
        for o in key_ops:
            if o.status == FAIL and (o.error == "NodeExistsError"
                                     or (o.f == "write" and o.error == BAD_VERSION)):
                anomalies.append(f"reply-of-another-request: {key}: setData cannot fail with "
                                 f"{o.error} here: {o.describe()}")
        result = linearizable(unread_values(kept), (init_value, 0), register_step, budget,
                              register_symmetry, register_doomed, originals=kept)
        if result.valid is False:
            anomalies.append(f"nonlinearizable: {key}: {result.detail}")
        elif result.valid is None:
            anomalies.append(f"unknown: {key}: {result.detail}")
    return anomalies


# ---- creates ---------------------------------------------------------------------------------


def _listed(items: list[str], what: str) -> list[str]:
    """At most MAX_LISTED anomalies of each kind, then one line counting the rest of that kind."""
    shown: list[str] = []
    per_kind: dict[str, int] = defaultdict(int)
    for item in items:
        kind = item.split(":", 1)[0]
        per_kind[kind] += 1
        if per_kind[kind] <= MAX_LISTED:
            shown.append(item)
    for kind, count in per_kind.items():
        if count > MAX_LISTED:
            shown.append(f"{kind}: ... and {count - MAX_LISTED} more ({what})")
    return shown


def check_unique_creates(ops: list[Op], tree: dict[str, list[Any]], parent: str) -> list[str]:
    """Creates of unique paths (data = a unique token) against the final children of parent."""
    anomalies: list[str] = []
    creates = {o.key: o for o in ops if o.f == "create"}
    for path, o in sorted(creates.items()):
        node = tree.get(path)
        if o.status == OK and o.result != path:
            anomalies.append(f"reply-of-another-request: create of {path} answered with "
                             f"{o.result!r}: {o.describe()}")
        if o.status == FAIL and o.error in NOT_CREATE_ERRORS:
            anomalies.append(f"reply-of-another-request: a create cannot fail with {o.error} "
                             f"(another request's reply): {o.describe()}")
        if o.status == OK:
            if node is None:
                anomalies.append(f"lost: acknowledged create is missing from the final tree: "
                                 f"{o.describe()}")
            elif node[0] != o.value:
                anomalies.append(f"reply-of-another-request: {path} holds {node[0]!r}, not the "
                                 f"data of its acknowledged create {o.describe()}")
        elif o.status == FAIL:
            if node is not None:
                anomalies.append(f"phantom: {path} exists although its create failed: "
                                 f"{o.describe()}")
            if o.error == "NodeExistsError":
                anomalies.append(f"impossible-failure: create of a never used path failed with "
                                 f"NodeExists: {o.describe()}")
    prefix = parent.rstrip("/") + "/"
    for path in sorted(tree):
        if path.startswith(prefix) and path not in creates:
            anomalies.append(f"phantom: {path} ({tree[path][0]!r}) exists but no create of it "
                             f"was invoked")
    return _listed(anomalies, "creates")


def check_sequential_creates(ops: list[Op], tree: dict[str, list[Any]], parent: str) -> list[str]:
    """Sequential creates under parent, each with unique data; ok replies carry the path."""
    anomalies: list[str] = []
    prefix = parent.rstrip("/") + "/"
    seq = [o for o in ops if o.f == "seq-create"]
    by_data = {o.value: o for o in seq}
    nodes_by_data: dict[str, list[str]] = defaultdict(list)
    for path in sorted(tree):
        if path.startswith(prefix):
            nodes_by_data[tree[path][0]].append(path)
    for data, paths in sorted(nodes_by_data.items()):
        o = by_data.get(data)
        if len(paths) > 1:
            anomalies.append(f"duplicate: data {data!r} is in {len(paths)} sequential nodes "
                             f"{paths} (one create applied more than once)")
        if o is None:
            anomalies.append(f"phantom: {paths[0]} holds {data!r}, which no create was invoked "
                             f"with")
        elif o.status == FAIL:
            anomalies.append(f"phantom: {paths[0]} holds the data of a failed create: "
                             f"{o.describe()}")
    replied: dict[str, Op] = {}
    for o in seq:
        if o.status == FAIL and o.error in NOT_CREATE_ERRORS + ("NodeExistsError",):
            anomalies.append(f"reply-of-another-request: a sequential create cannot fail with "
                             f"{o.error} (another request's reply): {o.describe()}")
        if o.status != OK:
            continue
        path = o.result
        if not isinstance(path, str) or not path.startswith(o.key or ""):
            anomalies.append(f"reply-of-another-request: sequential create under {o.key} "
                             f"answered with {path!r}: {o.describe()}")
        first = replied.get(path)
        if first is not None:
            anomalies.append(f"duplicate-name: two acknowledged creates got the same name "
                             f"{path}: {first.describe()} and {o.describe()}")
        else:
            replied[path] = o
        node = tree.get(path)
        actual = nodes_by_data.get(o.value, [])
        if node is not None and node[0] != o.value:
            owner = by_data.get(node[0])
            whose = f" (the data of {owner.describe()})" if owner is not None else ""
            where = f"; its own data is at {actual}" if actual else ""
            anomalies.append(f"reply-of-another-request: {o.describe()} returned {path}, which "
                             f"holds {node[0]!r}{whose}{where}")
        elif node is None and actual:
            anomalies.append(f"reply-of-another-request: {o.describe()} returned {path}, which "
                             f"does not exist; its data is at {actual}")
        if not actual:
            anomalies.append(f"lost: acknowledged sequential create is missing from the final "
                             f"tree: {o.describe()}")
    return _listed(anomalies, "sequential creates")


# ---- session order --------------------------------------------------------------------------------


def check_session_order(ops: list[Op]) -> list[str]:
    """Per-session FIFO: a read never returns what a write its own client invoked after it
    wrote. A client's ops (process = worker * 1000 + generation: one worker, one client) are
    sent in invocation order, and ZooKeeper serves one session's requests in order, so a read
    invoked before a write is processed before it, whatever the batch they share (the
    register check treats them as concurrent and cannot see this)."""
    anomalies: list[str] = []
    writer_of: dict[tuple[str | None, str], Op] = {}
    for o in ops:
        if o.f in ("write", "cas") and o.status != FAIL:
            value = o.value if o.f == "write" else o.value[1]
            writer_of[(o.key, value)] = o
    for o in ops:
        if o.f != "read" or o.status != OK or not o.result:
            continue
        w = writer_of.get((o.key, o.result[0]))
        if w is not None and w.process // 1000 == o.process // 1000 and w.index > o.index:
            anomalies.append(f"read-from-the-future: {o.describe()} returned the value of "
                             f"{w.describe()}, which its client invoked after it")
    return _listed(anomalies, "session order")


# ---- ephemerals --------------------------------------------------------------------------------


def check_ephemerals(ops: list[Op], member_trees: dict[int, dict[str, list[Any]] | None],
                     parent: str, when: str = "") -> list[str]:
    """Every session of the ephemeral workload has ended: none of its nodes may exist anywhere."""
    anomalies: list[str] = []
    prefix = parent.rstrip("/") + "/"
    created = {o.key: o for o in ops if o.f == "eph-create"}
    for member, tree in sorted(member_trees.items()):
        if tree is None:
            continue
        for path in sorted(tree):
            if not path.startswith(prefix):
                continue
            o = created.get(path)
            owner = tree[path][2] if len(tree[path]) > 2 else None
            owner_text = f" (ephemeralOwner {owner:#x})" if isinstance(owner, int) else ""
            anomalies.append(
                f"ephemeral-survived{when}: {path} on member {member}{owner_text} outlived its "
                f"ended session; created by {o.describe() if o else 'no invoked create'}")
    return _listed(anomalies, "ephemerals")


# ---- final trees ---------------------------------------------------------------------------------


def check_trees_identical(member_trees: dict[int, dict[str, list[Any]] | None]) -> list[str]:
    """The test subtree read from every member: same paths, same data, same versions."""
    anomalies: list[str] = []
    readable = {m: t for m, t in member_trees.items() if t is not None}
    for member in sorted(set(member_trees) - set(readable)):
        anomalies.append(f"trees-differ: member {member}'s tree could not be read")
    if len(readable) < 2:
        return anomalies
    members = sorted(readable)
    base_member = members[0]
    base = readable[base_member]
    for member in members[1:]:
        other = readable[member]
        diffs = []
        for path in sorted(set(base) | set(other)):
            a, b = base.get(path), other.get(path)
            if a is None or b is None or a[:2] != b[:2]:
                diffs.append(f"{path}: {a[:2] if a else 'absent'} vs {b[:2] if b else 'absent'}")
        if diffs:
            shown = "; ".join(diffs[:5]) + (f"; ... {len(diffs) - 5} more" if len(diffs) > 5 else "")
            anomalies.append(f"trees-differ: members {base_member} and {member} differ at "
                             f"{len(diffs)} paths: {shown}")
    return anomalies

"""The operations of a differential scenario, as plain data that renders as readable steps.

Rule: a step names everything symbolically (a session slot, a path relative to the example's
prefix, an ACL by name), so the same step means the same thing on both servers and the
shortest failing sequence reads like a zkCli transcript. Executing a step is executor.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

# Relative to the example's base node (inside a fresh sandbox); "" is the base itself, "@last" the
# path the most recent successful create returned (so sequential nodes get operated on).
# Shallow paths are repeated so that parents exist often enough for deeper creates to succeed.
RELATIVE_PATHS = ("a", "b", "a", "b", "a/a", "a/b", "b/a", "a/a/a", "@last", "")
LAST_CREATED = "@last"
# Every example starts from this tree under the base node (open persistent nodes, empty data),
# so that deletes, setData and watches hit existing nodes from the first step on.
INITIAL_NODES = ("a", "b", "a/a")

CreateMode = Literal[
    "persistent",
    "ephemeral",
    "persistent_sequential",
    "ephemeral_sequential",
    "container",
    "ttl",
    "persistent_sequential_ttl",
]
CREATE_MODES: tuple[CreateMode, ...] = (
    "persistent",
    "ephemeral",
    "persistent_sequential",
    "ephemeral_sequential",
    "container",
    "ttl",
    "persistent_sequential_ttl",
)
TTL_MODES: tuple[CreateMode, ...] = ("ttl", "persistent_sequential_ttl")
# Sub-ops of multi carry only the modes the plain create opcode can express.
MULTI_CREATE_MODES: tuple[CreateMode, ...] = CREATE_MODES[:4]

# Named ACL lists; executor.py turns each name into kazoo ACL records.
AclName = Literal[
    "open",
    "read_only",
    "creator_all",
    "alice_all",
    "alice_all_world_read",
    "world_create_read",
    "ip_loopback",
    "ip_elsewhere",
    "world_bad_id",
    "empty",
]
ACL_NAMES: tuple[AclName, ...] = (
    "open",
    "read_only",
    "creator_all",
    "alice_all",
    "alice_all_world_read",
    "world_create_read",
    "ip_loopback",
    "ip_elsewhere",
    "world_bad_id",
    "empty",
)

# digest credentials a session may add; "alice:wrong" authenticates as a different digest id.
CREDENTIALS = ("alice:pw", "bob:pw", "alice:wrong")

# WatcherType values for checkWatches/removeWatches: Children, Data, Any.
WatcherTypeName = Literal["children", "data", "any"]
WATCHER_TYPES: dict[WatcherTypeName, int] = {"children": 1, "data": 2, "any": 3}

# kazoo refuses None data client-side, so null data is not generated.
DATA_VALUES: tuple[bytes, ...] = (b"x", b"", b"hello")
VERSIONS = (-1, 0, 1, 2, -1)


def _show(value: object) -> str:
    return repr(value)


@dataclass(frozen=True)
class Step:
    """One client operation on one session slot."""

    session: int

    def render(self) -> str:
        """`s1 create path='a' mode=ephemeral ...`: the op name then its non-default fields."""
        name = type(self).__name__
        op = name[0].lower() + name[1:]
        args = " ".join(
            f"{field.name}={_show(getattr(self, field.name))}"
            for field in fields(self)
            if field.name != "session" and getattr(self, field.name) != field.default
        )
        return f"s{self.session} {op} {args}".rstrip()


@dataclass(frozen=True)
class Create(Step):
    path: str
    data: bytes
    mode: CreateMode
    acl: AclName
    with_stat: bool  # create2 (opcode 15) instead of create (1); container/TTL always return it
    ttl_ms: int = 0


@dataclass(frozen=True)
class Delete(Step):
    path: str
    version: int


@dataclass(frozen=True)
class SetData(Step):
    path: str
    data: bytes
    version: int


@dataclass(frozen=True)
class GetData(Step):
    path: str
    watch: bool


@dataclass(frozen=True)
class Exists(Step):
    path: str
    watch: bool


@dataclass(frozen=True)
class GetChildren(Step):
    path: str
    watch: bool
    with_stat: bool  # getChildren2 (opcode 12)


@dataclass(frozen=True)
class GetAcl(Step):
    path: str


@dataclass(frozen=True)
class SetAcl(Step):
    path: str
    acl: AclName
    version: int


@dataclass(frozen=True)
class AddAuth(Step):
    credential: str


@dataclass(frozen=True)
class Sync(Step):
    path: str


@dataclass(frozen=True)
class AddWatch(Step):
    path: str
    recursive: bool


@dataclass(frozen=True)
class CheckWatches(Step):
    path: str
    watcher_type: WatcherTypeName


@dataclass(frozen=True)
class RemoveWatches(Step):
    path: str
    watcher_type: WatcherTypeName


@dataclass(frozen=True)
class GetAllChildrenNumber(Step):
    path: str


@dataclass(frozen=True)
class GetEphemerals(Step):
    path: str


@dataclass(frozen=True)
class WhoAmI(Step):
    pass


@dataclass(frozen=True)
class RestartSession(Step):
    """Close the slot's session (its ephemerals vanish) and open a fresh one in its place."""


@dataclass(frozen=True)
class MultiCreate:
    path: str
    data: bytes
    mode: CreateMode
    acl: AclName


@dataclass(frozen=True)
class MultiDelete:
    path: str
    version: int


@dataclass(frozen=True)
class MultiSetData:
    path: str
    data: bytes
    version: int


@dataclass(frozen=True)
class MultiCheck:
    path: str
    version: int


MultiOp = MultiCreate | MultiDelete | MultiSetData | MultiCheck


@dataclass(frozen=True)
class Multi(Step):
    ops: tuple[MultiOp, ...]

    def render(self) -> str:
        parts = "; ".join(
            type(op).__name__[len("Multi") :].lower()
            + " "
            + " ".join(f"{field.name}={_show(getattr(op, field.name))}" for field in fields(op))
            for op in self.ops
        )
        return f"s{self.session} multi [{parts}]"


@dataclass(frozen=True)
class Scenario:
    """What one hypothesis example runs: a session count and the steps over those slots."""

    session_count: int
    steps: tuple[Step, ...]

    def render(self, marked_step: int | None = None) -> str:
        lines = [f"sessions: {self.session_count}"]
        for index, step in enumerate(self.steps):
            marker = "  <-- first difference" if index == marked_step else ""
            lines.append(f"{index + 1:3d}. {step.render()}{marker}")
        return "\n".join(lines)

"""The differential test's pure parts: normalization, comparison, rendering, request bytes."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from kazoo.protocol.states import ZnodeStat
from kazoo.security import make_acl

from tests.compat.differential import model, requests
from tests.compat.differential.compare import (
    field_differences,
    first_difference,
    report,
)
from tests.compat.differential.executor import RawTrace, StepRecord
from tests.compat.differential.normalize import normalize
from tests.compat.differential.strategies import scenarios

SANDBOX = "/t0123456789ab"
WINDOW_MS = (1_700_000_000_000, 1_700_000_060_000)
INSIDE_MS = WINDOW_MS[0] + 1_000


def stat(czxid: int, mzxid: int, pzxid: int, owner: int = 0, mtime: int = INSIDE_MS) -> ZnodeStat:
    return ZnodeStat(czxid, mzxid, INSIDE_MS, mtime, 0, 0, 0, owner, 1, 0, pzxid)


def trace(session_ids: list[int], records: list[StepRecord]) -> RawTrace:
    return RawTrace(
        sandbox=SANDBOX,
        session_ids=session_ids,
        setup=StepRecord(("ok", [SANDBOX, SANDBOX + "/n"]), {}),
        records=records,
        teardown=StepRecord(("ok", True), {}),
        final_tree=[],
        window_ms=WINDOW_MS,
    )


def test_zxids_become_ranks_and_keep_their_relations() -> None:
    # Two servers whose zxids differ by an offset but agree in order must normalize equal.
    left = trace([0x100], [StepRecord(("ok", [b"x", stat(0x10, 0x12, 0x10)]), {})])
    right = trace([0x200], [StepRecord(("ok", [b"x", stat(0x90, 0x95, 0x90)]), {})])
    assert first_difference(normalize(left), normalize(right)) is None
    shown = normalize(left)["steps"][0]["outcome"][1][1]
    assert (shown["czxid"], shown["mzxid"], shown["pzxid"]) == ("z1", "z2", "z1")


def test_a_broken_zxid_relation_is_reported_by_field() -> None:
    left = trace([1], [StepRecord(("ok", stat(5, 7, 5)), {})])
    right = trace([1], [StepRecord(("ok", stat(5, 7, 7)), {})])
    difference = first_difference(normalize(left), normalize(right))
    assert difference is not None
    assert difference.part == "step 1"
    assert difference.fields == ("outcome[1].pzxid: 'z1' != 'z2'",)


def test_ephemeral_owner_maps_to_session_ordinal() -> None:
    left = trace([0xA, 0xB], [StepRecord(("ok", stat(1, 1, 1, owner=0xB)), {})])
    right = trace([0xC, 0xD], [StepRecord(("ok", stat(1, 1, 1, owner=0xD)), {})])
    assert first_difference(normalize(left), normalize(right)) is None
    wrong = trace([0xC, 0xD], [StepRecord(("ok", stat(1, 1, 1, owner=0xC)), {})])
    difference = first_difference(normalize(left), normalize(wrong))
    assert difference is not None
    assert difference.fields == ("outcome[1].ephemeralOwner: 'session#1' != 'session#0'",)


def test_a_time_outside_the_run_window_is_a_difference() -> None:
    good = trace([1], [StepRecord(("ok", stat(1, 1, 1)), {})])
    bogus = trace([1], [StepRecord(("ok", stat(1, 1, 1, mtime=0)), {})])
    difference = first_difference(normalize(good), normalize(bogus))
    assert difference is not None
    assert difference.fields == ("outcome[1].mtime: 'in-window' != 0",)


def test_events_compare_per_session_with_sandbox_stripped() -> None:
    event = (4, 3, SANDBOX + "/n/a")
    left = trace([1, 2], [StepRecord(("ok", True), {1: [event]})])
    right = trace([3, 4], [StepRecord(("ok", True), {0: [event]})])
    shown = normalize(left)["steps"][0]["events"]
    assert shown == {"session#1": [{"type": "NodeChildrenChanged", "state": 3, "path": "~/n/a"}]}
    difference = first_difference(normalize(left), normalize(right))
    assert difference is not None
    assert difference.fields[0].startswith("events.session#1: [{'type': 'NodeChildrenChanged'")
    assert difference.fields[1].startswith("events.session#0: '<missing>' != [")


def test_error_class_and_acl_fields_are_compared() -> None:
    readable = make_acl("digest", "alice:x", read=True)
    writable = make_acl("digest", "alice:x", read=True, write=True)
    same_acl = StepRecord(("ok", [[readable], stat(1, 1, 1)]), {})
    left = trace([1], [same_acl, StepRecord(("error", "NoNodeError"), {})])
    right = trace([1], [same_acl, StepRecord(("error", "NoAuthError"), {})])
    difference = first_difference(normalize(left), normalize(right))
    assert difference is not None
    assert difference.step_index == 1
    assert difference.fields == ("outcome[1]: 'NoNodeError' != 'NoAuthError'",)
    other_acl = trace([1], [StepRecord(("ok", [[writable], stat(1, 1, 1)]), {})])
    difference = first_difference(normalize(left), normalize(other_acl))
    assert difference is not None
    assert difference.fields == ("outcome[1][0][0].perms: 1 != 3",)


def test_a_missing_step_is_a_difference() -> None:
    left = trace([1], [StepRecord(("ok", True), {})])
    right = trace([1], [])
    difference = first_difference(normalize(left), normalize(right))
    assert difference is not None and difference.part == "step 1"


def test_field_differences_names_nested_locations() -> None:
    assert field_differences({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]}) == ["a[1].b: 2 != 3"]
    assert field_differences({"a": 1}, {"a": 1, "c": 2}) == ["c: '<missing>' != 2"]
    assert field_differences([1, 2], [1]) == ["(value): [1, 2] != [1]"]


def test_report_renders_steps_and_marks_the_first_difference() -> None:
    scenario = model.Scenario(
        session_count=2,
        steps=(
            model.Create(0, "a", b"x", "ephemeral", "open", with_stat=False),
            model.Multi(1, (model.MultiCheck("a", 0), model.MultiDelete("a", -1))),
        ),
    )
    left = trace([1, 2], [StepRecord(("ok", "~/n/a"), {}), StepRecord(("ok", True), {})])
    right = trace([1, 2], [StepRecord(("ok", "~/n/a"), {}), StepRecord(("error", "X"), {})])
    difference = first_difference(normalize(left), normalize(right))
    assert difference is not None
    text = report(scenario, ("apache#1", "pyzk#2"), difference)
    assert "  1. s0 create path='a' data=b'x' mode='ephemeral' acl='open' with_stat=False\n" in text
    assert (
        "  2. s1 multi [check path='a' version=0; delete path='a' version=-1]  <-- first difference"
    ) in text
    assert "apache#1 and pyzk#2 differ at step 2" in text


def test_request_records_serialize_as_jute() -> None:
    assert requests.AddWatch("/a", 1).serialize() == struct.pack("!i", 2) + b"/a" + struct.pack(
        "!i", 1
    )
    assert requests.RemoveWatches("/a", 3).type == 18
    assert (
        requests.create_ttl("/a", b"", [], 5, 60_000)
        .serialize()
        .endswith(struct.pack("!iq", 5, 60_000))
    )
    who = struct.pack("!i", 1) + struct.pack("!i", 2) + b"ip" + struct.pack("!i", 1) + b"h"
    assert requests.WhoAmI.deserialize(who, 0) == [("ip", "h")]
    assert requests.WhoAmI()  # kazoo ignores replies to falsy request objects


@settings(max_examples=50, deadline=None)
@given(scenario=scenarios(10))
def test_generated_scenarios_use_only_their_sessions_and_render(scenario: model.Scenario) -> None:
    assert 2 <= scenario.session_count <= 3
    assert 1 <= len(scenario.steps) <= 19
    for step in scenario.steps:
        assert 0 <= step.session < scenario.session_count
        if isinstance(step, model.Create) and step.mode not in model.TTL_MODES:
            assert step.ttl_ms == 0
    assert scenario.render().count("\n") == len(scenario.steps)

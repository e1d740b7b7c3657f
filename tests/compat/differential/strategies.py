"""Hypothesis strategies that generate differential scenarios.

Rule: the alphabet is small on purpose (a few paths, versions -1..2, a few data values), so
collisions and NONODE / NODEEXISTS / NOTEMPTY / BADVERSION happen often; writes are weighted
above reads so the tree actually grows. Every choice shrinks toward the simplest form.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from tests.compat.differential import model

paths = st.sampled_from(model.RELATIVE_PATHS)
data_values = st.sampled_from(model.DATA_VALUES)
versions = st.sampled_from(model.VERSIONS)
acl_names = st.sampled_from(model.ACL_NAMES)
create_modes = st.sampled_from(model.CREATE_MODES)
watcher_types = st.sampled_from(tuple(model.WATCHER_TYPES))
# Zero and negative TTLs are refused (BADARGUMENTS) when TTL nodes are enabled at all.
ttls_ms = st.sampled_from((60_000, 0, -1))

multi_ops = st.one_of(
    st.builds(
        model.MultiCreate,
        path=paths,
        data=data_values,
        mode=st.sampled_from(model.MULTI_CREATE_MODES),
        acl=st.sampled_from(("open", "read_only", "empty")),
    ),
    st.builds(model.MultiDelete, path=paths, version=versions),
    st.builds(model.MultiSetData, path=paths, data=data_values, version=versions),
    st.builds(model.MultiCheck, path=paths, version=versions),
)


def _drop_unused_ttl(create: model.Create) -> model.Create:
    return create if create.mode in model.TTL_MODES else replace(create, ttl_ms=0)


def _create(session: st.SearchStrategy[int]) -> st.SearchStrategy[model.Step]:
    plain_acls = st.sampled_from(("open", "open", "read_only", "world_create_read"))
    return st.one_of(
        # Most creates are open persistent/ephemeral/sequential nodes; the rest vary everything.
        st.builds(
            model.Create,
            session=session,
            path=paths,
            data=data_values,
            mode=st.sampled_from(model.MULTI_CREATE_MODES),
            acl=plain_acls,
            with_stat=st.booleans(),
        ),
        st.builds(
            model.Create,
            session=session,
            path=paths,
            data=data_values,
            mode=create_modes,
            acl=acl_names,
            with_stat=st.booleans(),
            ttl_ms=ttls_ms,
        ).map(_drop_unused_ttl),
    )


def steps_for(session_count: int) -> st.SearchStrategy[model.Step]:
    """Any one step over sessions 0..session_count-1, writes weighted above reads."""
    session = st.integers(0, session_count - 1)
    weighted: list[tuple[st.SearchStrategy[model.Step], int]] = [
        (_create(session), 6),
        (st.builds(model.Delete, session=session, path=paths, version=versions), 3),
        (
            st.builds(
                model.SetData, session=session, path=paths, data=data_values, version=versions
            ),
            3,
        ),
        (st.builds(model.GetData, session=session, path=paths, watch=st.booleans()), 2),
        (st.builds(model.Exists, session=session, path=paths, watch=st.booleans()), 2),
        (
            st.builds(
                model.GetChildren,
                session=session,
                path=paths,
                watch=st.booleans(),
                with_stat=st.booleans(),
            ),
            2,
        ),
        (
            st.builds(
                model.Multi,
                session=session,
                ops=st.lists(multi_ops, min_size=1, max_size=4).map(tuple),
            ),
            2,
        ),
        (st.builds(model.GetAcl, session=session, path=paths), 1),
        (st.builds(model.SetAcl, session=session, path=paths, acl=acl_names, version=versions), 1),
        (
            st.builds(
                model.AddAuth, session=session, credential=st.sampled_from(model.CREDENTIALS)
            ),
            1,
        ),
        (st.builds(model.AddWatch, session=session, path=paths, recursive=st.booleans()), 1),
        (
            st.builds(model.CheckWatches, session=session, path=paths, watcher_type=watcher_types),
            1,
        ),
        (
            st.builds(model.RemoveWatches, session=session, path=paths, watcher_type=watcher_types),
            1,
        ),
        (st.builds(model.RestartSession, session=session), 1),
        (st.builds(model.Sync, session=session, path=paths), 1),
        (st.builds(model.GetAllChildrenNumber, session=session, path=paths), 1),
        (st.builds(model.GetEphemerals, session=session, path=paths), 1),
        (st.builds(model.WhoAmI, session=session), 1),
    ]
    # sampled_from keeps repeated entries (one_of may not), so the weights hold; it shrinks
    # toward the first entry, a create.
    expanded = [strategy for strategy, weight in weighted for _ in range(weight)]
    return st.sampled_from(expanded).flatmap(lambda strategy: strategy)


@st.composite
def scenarios(draw: st.DrawFn, steps_mean: int) -> model.Scenario:
    """2-3 sessions and 1..2*steps_mean-1 steps (mean about steps_mean; shrinks toward 1)."""
    session_count = draw(st.integers(2, 3))
    length = draw(st.integers(1, max(1, 2 * steps_mean - 1)))
    steps = draw(st.lists(steps_for(session_count), min_size=length, max_size=length))
    return model.Scenario(session_count=session_count, steps=tuple(steps))

"""Time travel and incremental reads as hsfs writes them (``query.as_of(wallclock_time, exclude_until)``,
``fg.as_of``, ``fg.read_changes(start_wallclock_time, end_wallclock_time)``, ``fg.read(wallclock_time=)``), on
every offline implementation, at the commit boundaries: a time exactly at a commit, a millisecond before it,
before the first commit, an exclusion window holding a delete."""

from __future__ import annotations

import datetime as dt

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.offline import IMPLEMENTATIONS, open_table
from featurestore.query import Query, QueryError

MS = dt.timedelta(milliseconds=1)
SCHEMA = "cc_num string, limit_eur int, ts timestamp"
TRANS = "tid int, cc_num string, amount double, ts timestamp"


def at(hour: int) -> dt.datetime:
    return dt.datetime(2024, 3, 1) + dt.timedelta(hours=hour)


def state(df, value: str = "limit_eur") -> dict:
    return {r["cc_num"]: r[value] for r in df.collect()}


@pytest.fixture(params=sorted(IMPLEMENTATIONS), ids=lambda i: "/".join(i), scope="module")
def timeline(request, spark, tmp_path_factory):
    """Four commits of 'cards': insert c1, c2; upsert c1, add c3; delete c2; upsert c3. Between the first two
    commits of 'cards', a commit of 'trans'. Returns the store, the groups and the commits with their times."""
    table_format, engine = request.param
    base = tmp_path_factory.mktemp("time_travel")
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(base / "wh")}), spark=spark)
    cards = fs.create_feature_group("cards", primary_key=["cc_num"], event_time="ts",
                                    time_travel_format=table_format, engine=engine)
    trans = fs.create_feature_group("trans", primary_key=["tid"], event_time="ts",
                                    time_travel_format=table_format, engine=engine)
    frame = spark.createDataFrame
    c1 = cards.insert(frame([("c1", 10, at(0)), ("c2", 20, at(0))], SCHEMA)).commit_id
    t1 = trans.insert(frame([(1, "c1", 5.0, at(2)), (2, "c2", 6.0, at(2)), (3, "c3", 7.0, at(2))], TRANS)).commit_id
    c2 = cards.insert(frame([("c1", 11, at(1)), ("c3", 30, at(1))], SCHEMA)).commit_id
    c3 = cards.delete_records(frame([("c2",)], "cc_num string")).commit_id
    c4 = cards.insert(frame([("c3", 31, at(3))], SCHEMA)).commit_id
    times = {c.commit_id: c.committed_at for c in open_table(fs, cards.record).commits()}
    trans_time = open_table(fs, trans.record).commits()[0].committed_at
    return fs, cards, trans, [c1, c2, c3, c4], [times[c] for c in (c1, c2, c3, c4)], (t1, trans_time)


def test_as_of_a_time_at_and_between_commits(timeline):
    _, cards, _, commits, times, _ = timeline
    after = [{"c1": 10, "c2": 20}, {"c1": 11, "c2": 20, "c3": 30}, {"c1": 11, "c3": 30}, {"c1": 11, "c3": 31}]
    for n, (commit, when) in enumerate(zip(commits, times, strict=True)):
        # a time exactly at a commit includes it; a commit id is the same as its time
        assert state(cards.as_of(when).read()) == after[n], n
        assert state(cards.select_all().as_of(commit).read()) == after[n], n
        assert state(cards.read(wallclock_time=when)) == after[n], n
        # a millisecond before a commit is the state before it
        if n:
            assert state(cards.as_of(when - MS).read()) == after[n - 1], n
    # times as text (UTC), as hsfs users write them
    text = times[1].isoformat(sep=" ", timespec="milliseconds")
    assert state(cards.as_of(text).read()) == after[1]
    assert state(cards.as_of(None).read()) == after[3]  # None: the latest


def test_before_the_first_commit_is_an_error_naming_it(timeline, spark):
    fs, cards, _, commits, times, _ = timeline
    early = times[0] - MS
    with pytest.raises(QueryError, match=rf"feature group 'cards' v1 has no data as of wallclock_time .*: its first "
                                         rf"commit is {commits[0]} at "):
        cards.as_of(early)
    with pytest.raises(QueryError, match=rf"has no data as of as_of .*its first commit is {commits[0]}"):
        cards.read(wallclock_time=early)
    with pytest.raises(QueryError, match="has no data as of wallclock_time"):
        cards.read_changes(early - dt.timedelta(hours=1), early)
    # a feature group never written has no data at any time, but an incremental read of it is empty
    empty = fs.create_feature_group("never_written", primary_key=["cc_num"], event_time="ts",
                                    time_travel_format=cards.time_travel_format, engine=cards.engine,
                                    features=spark.createDataFrame([], SCHEMA).schema)
    with pytest.raises(QueryError, match="'never_written' v1 has no data as of as_of .*: it has no commit yet"):
        empty.read(wallclock_time=times[3])
    assert empty.as_of(None, exclude_until=times[0]).read().count() == 0


def test_exclude_until_reads_only_the_later_commits(timeline):
    _, cards, _, commits, times, _ = timeline
    # the changes of exactly one commit: up to its time, excluding everything up to the one before
    assert state(cards.as_of(times[1], exclude_until=times[0]).read()) == {"c1": 11, "c3": 30}
    assert state(cards.as_of(times[1], exclude_until=times[1] - MS).read()) == {"c1": 11, "c3": 30}
    # a window holding the delete: the deleted key is not there, rows are as they are at the end
    assert state(cards.as_of(times[3], exclude_until=times[0]).read()) == {"c1": 11, "c3": 31}
    assert state(cards.as_of(times[2], exclude_until=times[1]).read()) == {}  # the delete writes no rows
    # no wallclock_time: up to the latest commit
    assert state(cards.as_of(None, exclude_until=times[1]).read()) == {"c3": 31}
    # exclude_until before the first commit excludes nothing
    assert state(cards.as_of(times[1], exclude_until=times[0] - dt.timedelta(days=1)).read()) == {
        "c1": 11, "c2": 20, "c3": 30}
    # equal bounds: nothing changed in an empty window
    assert cards.as_of(times[1], exclude_until=times[1]).read().count() == 0
    with pytest.raises(QueryError, match=rf"exclude_until .* \(commit {commits[2]}\) is after wallclock_time .* "
                                         rf"\(commit {commits[0]}\)"):
        cards.as_of(times[0], exclude_until=times[2])
    # commit ids work as the bounds too, and the incremental query survives to_dict / from_dict
    query = cards.select(["cc_num", "limit_eur"]).as_of(commits[3], exclude_until=commits[1])
    assert state(query.read()) == {"c3": 31}
    assert state(Query.from_dict(query.context, query.to_dict()).read()) == {"c3": 31}
    assert f"commits after {commits[1]} up to {commits[3]}" in query.to_string()


def test_read_changes_with_hsfs_names_and_the_older_keywords(timeline):
    _, cards, _, commits, times, _ = timeline
    assert state(cards.read_changes(times[0], times[1])) == {"c1": 11, "c3": 30}
    assert state(cards.read_changes(start_wallclock_time=times[0], end_wallclock_time=times[3])) == {
        "c1": 11, "c3": 31}
    assert state(cards.read_changes(start_commit=commits[0], end_commit=commits[1])) == {"c1": 11, "c3": 30}
    assert state(cards.read_changes(commits[2])) == {"c3": 31}  # no end: up to the latest
    # a start before the first commit: every change up to the end
    assert state(cards.read_changes(times[0] - dt.timedelta(hours=1), times[0])) == {"c1": 10, "c2": 20}
    with pytest.raises(Exception, match="pass start_wallclock_time or start_commit, not both"):
        cards.read_changes(times[0], start_commit=commits[0])
    with pytest.raises(Exception, match="read_changes needs start_wallclock_time"):
        cards.read_changes()
    meta = cards.read_changes(times[2], include_meta=True)
    assert open_table(timeline[0], cards.record).commit_column in meta.columns


def test_as_of_applies_to_every_joined_feature_group(timeline):
    _, cards, trans, commits, times, (_, trans_time) = timeline
    query = trans.select(["tid", "cc_num", "amount"]).join(cards.select(["limit_eur"]), on=["cc_num"])
    # now: each transaction (at hour 2) takes the card row of the newest event time <= hour 2; c2 is deleted,
    # c3's row of hour 3 is newer than the transaction
    now = {(r["tid"], r["limit_eur"]) for r in query.read().collect()}
    assert now == {(1, 11), (2, None), (3, None)}
    # as of the transactions' commit: cards as of then (only its first commit: c1 10, c2 20)
    then = {(r["tid"], r["limit_eur"]) for r in query.as_of(trans_time).read().collect()}
    assert times[0] < trans_time < times[1]
    assert then == {(1, 10), (2, 20), (3, None)}
    # as_of on the sub-query before the join applies to that feature group only
    mixed = trans.select(["tid", "cc_num"]).join(cards.select(["limit_eur"]).as_of(times[1]), on=["cc_num"])
    assert {(r["tid"], r["limit_eur"]) for r in mixed.read().collect()} == {(1, 11), (2, 20), (3, 30)}
    # before the first commit of a joined feature group: the error names that one
    reverse = cards.select(["cc_num", "limit_eur"]).join(trans.select(["amount"]), on=["cc_num"])
    with pytest.raises(QueryError, match="'trans' v1 has no data as of wallclock_time"):
        reverse.as_of(trans_time - MS)
    if cards.time_travel_format == "DELTA":
        with pytest.raises(QueryError, match="a version number is one Delta table's: pass a time"):
            query.as_of(1)

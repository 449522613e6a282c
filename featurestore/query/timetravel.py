"""Time travel and incremental reads as hsfs states them: ``as_of(wallclock_time, exclude_until)``.

A read as of ``wallclock_time`` (a commit id or a time, UTC) sees the newest commit at or before it: a
time exactly at a commit includes that commit. ``exclude_until`` leaves out the commits at or before it,
which makes the read incremental: the rows written by the commits in (exclude_until, wallclock_time], as
they are at wallclock_time (a row deleted by then is not there).

A ``wallclock_time`` before the first commit is an error naming the first commit (hsfs: no data for that
commit date), on every table format alike; an ``exclude_until`` before the first commit excludes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from featurestore import offline
from featurestore.query.errors import QueryError

if TYPE_CHECKING:
    from featurestore.model.protocols import StoreContext
    from featurestore.model.records import FeatureGroupRecord

#: an exclusive start before every commit (both table formats then read from their first commit)
BEFORE_FIRST = "00000000000000000"


def read_commit(ctx: StoreContext, record: FeatureGroupRecord, value: Any, what: str = "wallclock_time") -> str:
    """The commit a read as of ``value`` sees; a :class:`QueryError` naming the first commit when ``value``
    is before it (or the table has none)."""
    table = offline.open_table(ctx, record)
    commit = table.commit_at_or_before(value)
    if commit is not None:
        return commit
    commits = table.commits()
    if commits:
        first = commits[0]
        when = first.committed_at.isoformat(sep=" ", timespec="milliseconds")
        known = f"its first commit is {first.commit_id} at {when} UTC"
    else:
        known = "it has no commit yet"
    raise QueryError(f"feature group {record.label} has no data as of {what} {_shown(value)}: {known}")


def start_commit(ctx: StoreContext, record: FeatureGroupRecord, value: Any) -> str:
    """The exclusive start of an incremental read from ``exclude_until``: the newest commit at or before it,
    or :data:`BEFORE_FIRST` when it is before every commit."""
    commit = offline.open_table(ctx, record).commit_at_or_before(value)
    return commit if commit is not None else BEFORE_FIRST


def resolve(ctx: StoreContext, record: FeatureGroupRecord, wallclock_time: Any,
            exclude_until: Any) -> tuple[str | None, str | None]:
    """``(as_of, after)``: the commit to read as of (None: the latest) and the exclusive start of an
    incremental read (None: not incremental). An ``exclude_until`` later than ``wallclock_time`` is an error."""
    if record.kind != "cached":
        raise QueryError(f"external feature group '{record.name}' has no commit history; as_of is not supported")
    end = read_commit(ctx, record, wallclock_time) if wallclock_time is not None else None
    start = start_commit(ctx, record, exclude_until) if exclude_until is not None else None
    if start is not None and start != BEFORE_FIRST and end is not None and start > end:
        raise QueryError(f"feature group {record.label}: exclude_until {_shown(exclude_until)} (commit {start}) is "
                         f"after wallclock_time {_shown(wallclock_time)} (commit {end}); exclude_until must be the "
                         "earlier of the two")
    return end, start


def table_specific(value: Any) -> bool:
    """Whether ``value`` is a version number (an int or short digits), which names a commit of one table only
    (a Delta version) rather than a moment every table can be read at."""
    if isinstance(value, bool) or isinstance(value, dt.datetime):
        return False
    if isinstance(value, int):
        return True
    text = str(value).strip()
    return bool(re.fullmatch(r"\d+", text)) and len(text) not in (14, 17)


def _shown(value: Any) -> str:
    return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else repr(value)

"""Queries over feature groups: select, filter, join and per-feature-group commit-time travel.

A :class:`Query` is an immutable description; ``read()`` turns it into a Spark DataFrame and
``to_string()`` into Spark SQL. Filters apply to the rows of the query's own feature group,
before any join; joins are nested (``a.join(b.join(c))`` joins ``b`` with ``c`` first).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from featurestore.model.records import FeatureGroupRecord
from featurestore.query import pit, timetravel
from featurestore.query.errors import QueryError, q
from featurestore.query.filters import Condition
from featurestore.sources import read_feature_group

if TYPE_CHECKING:
    from featurestore.model.protocols import StoreContext

JOIN_TYPES = ("inner", "left", "right", "outer")
JOIN_TYPE_ALIASES = {"full": "outer", "full_outer": "outer", "left_outer": "left", "right_outer": "right"}


@dataclass(frozen=True)
class Join:
    """One join of a query with another query."""

    query: Query
    left_on: tuple[str, ...]
    right_on: tuple[str, ...]
    join_type: str = "inner"
    prefix: str | None = None
    point_in_time: bool = False  # True: each left row takes the newest right row at or before its event time


@dataclass(frozen=True)
class Part:
    """The share of one feature group in a (flattened) query: what a point-in-time join needs."""

    feature_group: FeatureGroupRecord
    features: tuple[tuple[str, str], ...]  # (column of the feature group, output name)
    filters: tuple[str, ...]
    as_of: str | None
    exclude_until: str | None = None  # incremental: only the commits after this one (up to as_of)


class Query:
    """Features selected from one feature group, optionally joined with other queries.

    Built by ``fg.select_all()``, ``fg.select([...])``, ``fg.filter(...)``: it holds the feature store's
    context and the feature group's record, and reads through the offline interface.
    """

    def __init__(self, ctx: StoreContext, fg: FeatureGroupRecord, features: list[str] | tuple[str, ...],
                 filters: tuple[str, ...] = (), as_of: str | None = None, joins: tuple[Join, ...] = (),
                 exclude_until: str | None = None) -> None:
        names = [f.name for f in fg.features]
        if not names:
            raise QueryError(f"feature group '{fg.name}' v{fg.version} has no features yet (insert data first)")
        unknown = [f for f in features if f not in names]
        if unknown:
            raise QueryError(f"feature group '{fg.name}' v{fg.version} has no feature(s) "
                             f"{', '.join(map(repr, unknown))} (features: {', '.join(names)})")
        dupes = sorted({f for f in features if list(features).count(f) > 1})
        if dupes:
            raise QueryError(f"feature(s) {', '.join(map(repr, dupes))} selected twice from '{fg.name}'")
        self._ctx = ctx
        self._fg = fg
        self._features = tuple(features)
        self._filters = tuple(filters)
        self._as_of = as_of
        self._exclude_until = exclude_until
        self._joins = tuple(joins)

    # -- description -------------------------------------------------------------------------
    @property
    def feature_group(self) -> FeatureGroupRecord:
        """The record of the feature group this query starts from."""
        return self._fg

    @property
    def context(self) -> StoreContext:
        """The feature store this query reads from."""
        return self._ctx

    @property
    def features(self) -> list[str]:
        """Output column names, in order (joined features with their prefix)."""
        return [name for name, _ in self._outputs()]

    @property
    def joins(self) -> list[Join]:
        """The joins of this query (not of the joined queries)."""
        return list(self._joins)

    def __repr__(self) -> str:
        return f"Query({self._fg.name!r} v{self._fg.version}, features={self.features})"

    def _outputs(self) -> list[tuple[str, str]]:
        """(output name, origin) of every output column; origin = 'fg_name.column'."""
        out = [(f, f"{self._fg.name}.{f}") for f in self._features]
        for j in self._joins:
            out += _right_outputs(out, j)
        return out

    def parts(self) -> list[Part]:
        """The feature groups of the query with their output features, depth first."""
        parts = [Part(self._fg, tuple((f, f) for f in self._features), self._filters, self._as_of,
                      self._exclude_until)]
        for j in self._joins:
            merged = {name for name, _ in _merged_keys([n for n, _ in self._outputs_before(j)], j)}
            for p in j.query.parts():
                feats = tuple((src, (j.prefix or "") + out) for src, out in p.features
                              if j.prefix or out not in merged)
                parts.append(replace(p, features=feats))
        return parts

    def _outputs_before(self, join: Join) -> list[tuple[str, str]]:
        out = [(f, f"{self._fg.name}.{f}") for f in self._features]
        for j in self._joins:
            if j is join:
                return out
            out += _right_outputs(out, j)
        return out

    # -- building ----------------------------------------------------------------------------
    def _copy(self, **changes: Any) -> Query:
        fields = {"ctx": self._ctx, "fg": self._fg, "features": self._features, "filters": self._filters,
                  "as_of": self._as_of, "joins": self._joins, "exclude_until": self._exclude_until}
        fields.update(changes)
        return Query(**fields)

    def filter(self, condition: Condition | Column | str) -> Query:
        """Keep the rows of this query's feature group matching ``condition``: a condition built from
        features (``fg.amount > 100``, ``(fg.a > 1) & (fg.b == "x")``, ``fg.c.isin([...])``,
        ``fg.d.like("x%")``), a Spark Column or SQL text.

        The condition may use any column of the feature group, selected or not; it applies before joins.
        Conditions are stored as the SQL Spark resolves them to.
        """
        if isinstance(condition, Condition):
            others = sorted(condition.feature_groups - {self._fg.table_name})
            if others:
                raise QueryError(f"filter on the query of '{self._fg.name}' v{self._fg.version} uses features of "
                                 f"{', '.join(others)}: filter that feature group's own query before the join")
            condition = condition.column
        elif not isinstance(condition, Column | str):
            raise QueryError(f"filter needs a condition (fg.amount > 100), a Spark Column or SQL text, got "
                             f"{type(condition).__name__}")
        frame = read_feature_group(self._ctx, self._fg, self._as_of, self._exclude_until)
        try:
            plan = frame.where(F.expr(condition) if isinstance(condition, str) else condition)
            sql = plan._jdf.queryExecution().analyzed().condition().sql()
        except Exception as exc:  # AnalysisException, ParseException: name the feature group
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise QueryError(f"filter {condition!r} on feature group '{self._fg.name}' v{self._fg.version} is "
                             f"invalid: {first}") from None
        return self._copy(filters=self._filters + (sql,))

    def as_of(self, wallclock_time: str | int | dt.datetime | None = None,
              exclude_until: str | int | dt.datetime | None = None) -> Query:
        """Time travel (hsfs's signature): read as of ``wallclock_time`` (a time, UTC, or a commit id; None = the
        latest), and with ``exclude_until`` only what the commits after it wrote (an incremental read of
        (exclude_until, wallclock_time]; see :mod:`featurestore.query.timetravel`).

        As in hsfs it applies to every feature group of the query, joined ones included, each resolving the
        time to its own newest commit at or before it; to read joined feature groups at different times,
        ``as_of`` each sub-query before the join. A ``wallclock_time`` before a feature group's first commit is
        an error naming that commit.
        """
        if self._joins and (timetravel.table_specific(wallclock_time) or timetravel.table_specific(exclude_until)) \
                and any(p.feature_group.table_format == "DELTA" for p in self.parts()):
            raise QueryError(f"as_of({wallclock_time!r}, exclude_until={exclude_until!r}) on a query with joins "
                             "applies to every feature group, but a version number is one Delta table's: pass a "
                             "time, or as_of each sub-query before the join")
        return self._timed(wallclock_time, exclude_until, joined=False)

    def _timed(self, wallclock_time: Any, exclude_until: Any, joined: bool) -> Query:
        if wallclock_time is None and exclude_until is None:
            end, start = None, None
        elif joined and self._fg.kind != "cached":
            end, start = None, None  # a joined external feature group has no history: read as it is
        else:
            end, start = timetravel.resolve(self._ctx, self._fg, wallclock_time, exclude_until)
        joins = tuple(replace(j, query=j.query._timed(wallclock_time, exclude_until, joined=True))
                      for j in self._joins)
        return self._copy(as_of=end, exclude_until=start, joins=joins)

    def join(self, sub_query: Query, on: list[str] | str | None = None, left_on: list[str] | str | None = None,
             right_on: list[str] | str | None = None, join_type: str = "left", prefix: str | None = None,
             point_in_time: bool | None = None) -> Query:
        """Join with ``sub_query`` (hsfs's signature, plus ``point_in_time``).

        ``on=None`` (and no ``left_on``/``right_on``) joins on the primary-key columns the two feature
        groups share. Output name collisions need a ``prefix`` for ``sub_query``.

        ``point_in_time``: None (the default) joins point-in-time when both feature groups have an event
        time: every row of this query once, with the ``sub_query`` row of the same key whose event time is
        the newest at or before the row's (nulls where there is none; ``join_type="inner"`` drops such rows
        instead). ``False`` is the plain equi-join (every pair of rows with equal keys; ``join_type`` any of
        inner, left, right, outer); ``True`` insists on a point-in-time join (an error if a side has no
        event time).
        """
        other = sub_query
        if not isinstance(other, Query):
            raise QueryError(f"join needs a Query (e.g. fg.select_all()), got {type(other).__name__}")
        if isinstance(join_type, str):
            join_type = JOIN_TYPE_ALIASES.get(join_type.lower(), join_type.lower())
        if join_type not in JOIN_TYPES:
            raise QueryError(f"unknown join_type {join_type!r}; use one of {', '.join(JOIN_TYPES)}")
        if point_in_time not in (None, True, False):
            raise QueryError(f"point_in_time must be None, True or False, got {point_in_time!r}")
        as_list = (lambda v: [v] if isinstance(v, str) else list(v or []))  # noqa: E731
        on_l, left_l, right_l = as_list(on), as_list(left_on), as_list(right_on)
        right_fg = other.feature_group
        if on_l and (left_l or right_l):
            raise QueryError("join: pass either on or left_on/right_on, not both")
        if bool(left_l) != bool(right_l) or len(left_l) != len(right_l):
            raise QueryError(f"join: left_on {left_l} and right_on {right_l} must have the same number of columns")
        if not on_l and not left_l:
            on_l = [c for c in self._fg.primary_key if c in right_fg.primary_key]
            if point_in_time is not False and self._fg.event_time and right_fg.event_time:
                # a point-in-time join matches on the entity key: the event times are compared, not equated
                on_l = [c for c in on_l if c not in (self._fg.event_time, right_fg.event_time)]
            if not on_l:
                raise QueryError(f"feature groups '{self._fg.name}' (primary key {self._fg.primary_key}) and "
                                 f"'{right_fg.name}' (primary key {right_fg.primary_key}) share no primary-key "
                                 "column: pass on= or left_on=/right_on=")
        if on_l:
            left_l = right_l = on_l
        for fg, cols, side in ((self._fg, left_l, "left"), (right_fg, right_l, "right")):
            names = [f.name for f in fg.features]
            missing = [c for c in cols if c not in names]
            if missing:
                raise QueryError(f"join key(s) {', '.join(map(repr, missing))} ({side}) are not columns of feature "
                                 f"group '{fg.name}' v{fg.version}")
        if prefix is not None and not prefix:
            raise QueryError("prefix must be a non-empty string or None")
        pit_join = self._pit_choice(other, point_in_time, join_type)
        new = Join(other, tuple(left_l), tuple(right_l), join_type, prefix, pit_join)
        current = self._outputs()
        right = _right_outputs(current, new)
        taken = {name: origin for name, origin in current}
        clashes = [f"'{name}' ({taken[name]} and {origin})" for name, origin in right if name in taken]
        if clashes:
            raise QueryError(f"feature name collision: {', '.join(clashes)}; pass prefix= to join() or select "
                             "fewer features")
        return self._copy(joins=self._joins + (new,))

    def _pit_choice(self, other: Query, point_in_time: bool | None, join_type: str) -> bool:
        """Whether a join with ``other`` is point-in-time (see :meth:`join`); errors name the feature groups."""
        left_fg, right_fg = self._fg, other.feature_group
        timed = bool(left_fg.event_time) and bool(right_fg.event_time)
        if point_in_time is False or (point_in_time is None and not timed):
            return False
        if not timed:
            lacking = [f"'{fg.name}' v{fg.version}" for fg in (left_fg, right_fg) if not fg.event_time]
            raise QueryError(f"point_in_time=True: feature group(s) {', '.join(lacking)} have no event_time")
        if join_type not in ("left", "inner"):
            raise QueryError(f"join of '{left_fg.name}' and '{right_fg.name}' is point-in-time (both have an event "
                             f"time), which keeps each left row once: join_type must be 'left' or 'inner', got "
                             f"{join_type!r}; pass point_in_time=False for the plain equi-join")
        kinds = [pit.time_kind(fg.get_feature(fg.event_time).data_type,
                               f"event time '{fg.event_time}' of feature group '{fg.name}'")
                 for fg in (left_fg, right_fg)]
        if kinds[0] != kinds[1]:
            raise QueryError(f"point-in-time join: event time '{left_fg.event_time}' of '{left_fg.name}' and "
                             f"'{right_fg.event_time}' of '{right_fg.name}' cannot be compared (a time and a "
                             "number); pass point_in_time=False for the plain equi-join")
        return True

    # -- running -----------------------------------------------------------------------------
    def read(self, ttl: dt.timedelta | None = None) -> DataFrame:
        """Run the query: a Spark DataFrame with the output columns in order.

        ``ttl`` (a ``datetime.timedelta``) applies to every point-in-time join: a right row older than the
        left row's event time minus ``ttl`` does not match (as in ``fs.get_training_data``).
        """
        if ttl is not None and not isinstance(ttl, dt.timedelta):
            raise QueryError(f"ttl must be a datetime.timedelta, got {type(ttl).__name__}")
        return self._frame([], ttl).select(*[F.col(q(n)) for n in self.features])

    def show(self, n: int = 20) -> None:
        """Print the first ``n`` rows of :meth:`read` (hsfs's ``Query.show``)."""
        self.read().show(n, truncate=False)

    def _frame(self, needed: list[str], ttl: dt.timedelta | None = None) -> DataFrame:
        """Output columns plus ``__key_<c>`` for each column ``c`` of this feature group in ``needed``."""
        base = read_feature_group(self._ctx, self._fg, self._as_of, self._exclude_until)
        for cond in self._filters:
            base = base.where(F.expr(cond))
        timed = [self._fg.event_time] if any(j.point_in_time for j in self._joins) else []
        keys = list(dict.fromkeys(list(needed) + [c for j in self._joins for c in j.left_on] + timed))
        df = base.select(*[F.col(q(f)).alias(f) for f in self._features],
                         *[F.col(q(c)).alias(f"__key_{c}") for c in keys])
        outputs = list(self._features)
        for j in self._joins:
            right_time = j.query.feature_group.event_time
            right = j.query._frame(list(j.right_on) + ([right_time] if j.point_in_time else []), ttl)
            right_names = j.query.features
            merged = dict(_merged_keys(outputs, j))
            renamed = [F.col(q(n)).alias((j.prefix or "") + n) for n in right_names if j.prefix or n not in merged]
            right = right.select(*renamed, *[F.col(q(f"__key_{c}")).alias(f"__rkey_{i}")
                                             for i, c in enumerate(j.right_on)],
                                 *([F.col(q(f"__key_{right_time}")).alias("__rtime")] if j.point_in_time else []))
            new_names = [(j.prefix or "") + n for n in right_names if j.prefix or n not in merged]
            if j.point_in_time:
                pairs = [(f"__key_{lc}", f"__rkey_{i}") for i, lc in enumerate(j.left_on)]
                df = pit.join_query_frames(df, f"__key_{self._fg.event_time}", right, "__rtime", pairs, new_names,
                                           ttl, j.join_type)
                df = df.select(*[F.col(q(n)) for n in outputs + new_names], *[F.col(q(f"__key_{c}")) for c in keys])
                outputs += new_names
                continue
            cond = [F.col("l." + q(f"__key_{lc}")) == F.col("r." + q(f"__rkey_{i}"))
                    for i, lc in enumerate(j.left_on)]
            joined = df.alias("l").join(right.alias("r"), cond, j.join_type)
            cols = []
            for n in outputs:
                if n in merged and j.join_type in ("right", "outer"):
                    # like SQL USING: the key of the row, whichever side it came from
                    cols.append(F.coalesce(F.col("l." + q(n)), F.col("r." + q(f"__rkey_{merged[n]}"))).alias(n))
                else:
                    cols.append(F.col("l." + q(n)))
            cols += [F.col("r." + q(n)) for n in new_names]
            key_cols = []
            for c in keys:
                left_key = F.col("l." + q(f"__key_{c}"))
                if c in j.left_on and j.join_type in ("right", "outer"):
                    left_key = F.coalesce(left_key, F.col("r." + q(f"__rkey_{j.left_on.index(c)}")))
                key_cols.append(left_key.alias(f"__key_{c}"))
            df = joined.select(*cols, *key_cols)
            outputs += new_names
        return df

    def to_string(self) -> str:
        """The query as Spark SQL over the views ``<name>_<version>`` of ``fs.sql`` (``as_of`` is shown as
        a comment: time travel is applied by ``read()``).

        A point-in-time join is shown as a ``LATERAL`` subquery taking the newest right row at or before the
        left row's event time (``ORDER BY ... DESC LIMIT 1``): the same rows as ``read()`` gives (without a
        ttl), though ``read()`` computes them by sort-and-carry-forward, not by this range join.
        """
        return self._sql_select([0], [])

    def _sql_select(self, counter: list[int], hidden: list[str]) -> str:
        """``SELECT`` of the outputs, plus the columns ``hidden`` of this feature group as ``__h<i>``."""
        from_sql, aliases = self._sql_from(counter)
        cols = []
        for name, alias, src, coalesce_with in self._sql_columns(aliases):
            expr = f"{alias}.{q(src)}" if coalesce_with is None else f"COALESCE({alias}.{q(src)}, {coalesce_with})"
            cols.append(expr if src == name and coalesce_with is None else f"{expr} AS {q(name)}")
        cols += [f"{aliases[id(self)]}.{q(c)} AS {q(f'__h{i}')}" for i, c in enumerate(hidden)]
        return "SELECT " + ", ".join(cols) + "\nFROM " + from_sql

    def _sql_from(self, counter: list[int]) -> tuple[str, dict[int, str]]:
        alias = f"t{counter[0]}"
        counter[0] += 1
        table = q(self._fg.table_name)
        comment = f" /* as of commit {self._as_of} */" if self._as_of else ""
        if self._exclude_until:
            comment = f" /* commits after {self._exclude_until} up to {self._as_of or 'the latest'} */"
        if self._filters:
            where = " AND ".join(f"({c})" for c in self._filters)
            # display text for to_string(); the filters are Spark's own rendering of resolved conditions
            text = f"(SELECT * FROM {table}{comment} WHERE {where}) AS {alias}"  # noqa: S608
        else:
            text = f"{table}{comment} AS {alias}"
        aliases = {id(self): alias}
        for j in self._joins:
            if j.point_in_time:
                text += self._sql_pit_join(j, alias, counter, aliases)
                continue
            right_sql, right_aliases = j.query._sql_from(counter)
            if j.query._joins:
                right_sql = f"({right_sql})"
            aliases.update(right_aliases)
            cond = " AND ".join(f"{alias}.{q(lc)} = {right_aliases[id(j.query)]}.{q(rc)}"
                                for lc, rc in zip(j.left_on, j.right_on, strict=True))
            kind = {"inner": "INNER", "left": "LEFT OUTER", "right": "RIGHT OUTER", "outer": "FULL OUTER"}[j.join_type]
            text += f"\n{kind} JOIN {right_sql} ON {cond}"
        return text, aliases

    def _sql_pit_join(self, j: Join, alias: str, counter: list[int], aliases: dict[int, str]) -> str:
        """A point-in-time join as SQL: the right query (with its keys and event time as ``__h<i>``) in a
        lateral subquery that keeps the newest row at or before the left row's event time."""
        right_alias = f"t{counter[0]}"
        counter[0] += 1
        n = len(j.right_on)
        right_sql = j.query._sql_select(counter, [*j.right_on, j.query.feature_group.event_time])
        conds = [f"{right_alias}.{q(f'__h{i}')} = {alias}.{q(lc)}" for i, lc in enumerate(j.left_on)]
        conds.append(f"{right_alias}.{q(f'__h{n}')} <= {alias}.{q(self._fg.event_time)}")
        aliases[id(j.query)] = right_alias
        kind = "LEFT OUTER" if j.join_type == "left" else "INNER"
        inner = right_sql.replace("\n", "\n    ")
        # display text for to_string(); every name in it is quoted by q() or generated here
        return (f"\n{kind} JOIN LATERAL (SELECT * FROM (\n    {inner}) AS {right_alias}\n  WHERE "  # noqa: S608
                f"{' AND '.join(conds)}\n  ORDER BY {right_alias}.{q(f'__h{n}')} DESC LIMIT 1) AS {right_alias} "
                "ON TRUE")

    def _sql_columns(self, aliases: dict[int, str]) -> list[tuple[str, str, str, str | None]]:
        """(output name, table alias, source column, COALESCE partner or None) of every output."""
        alias = aliases[id(self)]
        cols: list[tuple[str, str, str, str | None]] = [(f, alias, f, None) for f in self._features]
        for j in self._joins:
            merged = dict(_merged_keys([c[0] for c in cols], j))
            if j.join_type in ("right", "outer"):
                right_alias = aliases[id(j.query)]
                cols = [(n, a, s, f"{right_alias}.{q(j.right_on[merged[n]])}" if n in merged else c)
                        for n, a, s, c in cols]
            right_cols = ([(n, aliases[id(j.query)], n, None) for n in j.query.features] if j.point_in_time
                          else j.query._sql_columns(aliases))
            for n, a, s, c in right_cols:
                if j.prefix:
                    cols.append(((j.prefix or "") + n, a, s, c))
                elif n not in merged:
                    cols.append((n, a, s, c))
        return cols

    # -- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON form (feature group names and versions, features, SQL filters, as_of, joins)."""
        return {"feature_group": self._fg.name, "version": self._fg.version, "features": list(self._features),
                "filters": list(self._filters), "as_of": self._as_of, "exclude_until": self._exclude_until,
                "joins": [{"query": j.query.to_dict(), "left_on": list(j.left_on), "right_on": list(j.right_on),
                           "join_type": j.join_type, "prefix": j.prefix, "point_in_time": j.point_in_time}
                          for j in self._joins]}

    @classmethod
    def from_dict(cls, ctx: StoreContext, data: dict[str, Any]) -> Query:
        """Rebuild a query saved with :meth:`to_dict`."""
        fg = ctx.feature_group_record(data["feature_group"], data.get("version"))
        joins = tuple(Join(cls.from_dict(ctx, j["query"]), tuple(j["left_on"]), tuple(j["right_on"]),
                           j.get("join_type", "inner"), j.get("prefix"),
                           # saved before point-in-time joins existed: the equi-join it was made with
                           bool(j.get("point_in_time", False))) for j in data.get("joins", []))
        return cls(ctx, fg, data.get("features") or [f.name for f in fg.features], tuple(data.get("filters", [])),
                   data.get("as_of"), joins, data.get("exclude_until"))

    def with_commits(self, commits: dict[str, str]) -> Query:
        """The same query with every feature group read as of ``commits[f"{name}_{version}"]``."""
        joins = tuple(replace(j, query=j.query.with_commits(commits)) for j in self._joins)
        return self._copy(as_of=commits.get(self._fg.table_name, self._as_of), joins=joins)


def _merged_keys(left_outputs: list[str], join: Join) -> list[tuple[str, int]]:
    """Key columns of the same name on both sides that the left side outputs: merged like SQL USING (the
    right copy is not repeated; right and outer joins take the key of whichever side has the row)."""
    if join.prefix:
        return []
    return [(lc, i) for i, (lc, rc) in enumerate(zip(join.left_on, join.right_on, strict=True))
            if lc == rc and lc in left_outputs]


def _right_outputs(left: list[tuple[str, str]], join: Join) -> list[tuple[str, str]]:
    merged = {n for n, _ in _merged_keys([n for n, _ in left], join)}
    return [((join.prefix or "") + n, origin) for n, origin in join.query._outputs()
            if join.prefix or n not in merged]

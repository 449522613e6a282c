"""Feature-vector serving: primary-key lookups through a connection pool and prepared statements.

One statement per feature group per call (``WHERE k IN (...)`` / ``WHERE (k1, k2) IN (...)``),
cached per connection by (table, number of keys). Values come back as the Python values of the
offline schema; timestamps as naive UTC datetimes, structs as dicts.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from featurestore.online.store import Connection, OnlineStore
from featurestore.online.types import OnlineStoreError, fetch_converter, key_param

if TYPE_CHECKING:
    from featurestore.model.records import FeatureGroupRecord

MAX_STATEMENTS = 64  # prepared statements kept per connection


class _Conn:
    """A pooled connection with its prepared-statement cache."""

    def __init__(self, settings: Connection) -> None:
        self.dialect = settings.dialect
        self.driver = settings.driver
        self.raw = settings.connect(database=False)  # statements name their database: it may not exist yet
        if self.dialect == "mysql":
            self.raw.autocommit = True  # every lookup sees the latest committed rows
        self.statements: OrderedDict[str, tuple[str, Any]] = OrderedDict()

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        if self.dialect == "sqlite":
            return self.raw.execute(sql, params).fetchall()  # sqlite3 caches compiled statements itself
        cached = self.statements.get(sql)
        if cached is None:
            # binary: MariaDB Connector/Python would otherwise send the values substituted into the text
            cursor = self.raw.cursor(prepared=True, binary=True) if self.driver == "mariadb" else \
                self.raw.cursor(prepared=True)
            cached = (sql, cursor)
            self.statements[sql] = cached
            if len(self.statements) > MAX_STATEMENTS:
                self.statements.popitem(last=False)[1][1].close()
        else:
            self.statements.move_to_end(sql)
        # the connector re-prepares unless it gets the *same* string object it prepared
        text, cur = cached
        try:
            cur.execute(text, params)
            return cur.fetchall()
        except Exception:
            self.statements.pop(sql, None)  # never reuse a statement that failed to prepare or run
            raise

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


class Pool:
    """A bounded, blocking connection pool (callers wait for a free connection).

    One plain lock around a list: a lookup takes ~110 us, and a queue plus a semaphore cost ~10% of that.
    """

    def __init__(self, settings: Connection, size: int, timeout: float = 30.0) -> None:
        self.settings = settings
        self.size = size
        self.timeout = timeout
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        self._idle: list[_Conn] = []
        self._in_use = 0

    def connection(self) -> _Lease:
        """A connection for the duration of a ``with`` block; a connection that failed is discarded."""
        return _Lease(self)

    def _take(self) -> _Conn:
        with self._lock:
            if self._in_use >= self.size:
                deadline = time.monotonic() + self.timeout
                while self._in_use >= self.size:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise OnlineStoreError(f"no free online-store connection after {self.timeout:.0f}s")
                    self._released.wait(left)
            self._in_use += 1
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            try:
                conn = _Conn(self.settings)
            except BaseException:
                self._give_back(None)
                raise
        return conn

    def _give_back(self, conn: _Conn | None) -> None:
        with self._lock:
            if conn is not None:
                self._idle.append(conn)
            self._in_use -= 1
            self._released.notify()

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _Lease:
    """``with pool.connection() as conn``: takes a connection, returns it (or discards it on an error)."""

    __slots__ = ("_pool", "_conn")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._conn: _Conn | None = None

    def __enter__(self) -> _Conn:
        self._conn = self._pool._take()
        return self._conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        conn, self._conn = self._conn, None
        if exc_type is not None:
            conn.close()
            conn = None
        self._pool._give_back(conn)


@dataclass(frozen=True)
class LookupPlan:
    """What a lookup of one feature group needs, computed once per (feature group, features)."""

    columns: list[str]       # selected: keys first, then the requested features, then the event time
    features: list[str]      # returned
    key_params: list[Any]    # per key column: lookup value -> bound parameter (checks the type)
    key_back: list[Any]      # per key column: fetched/bound value -> Python value (None: the same), to match rows
    out: list[tuple[str, int]]            # (returned feature, its index in a fetched row)
    out_converters: list[tuple[str, Any]]  # (returned feature, fetched value -> Python value) where they differ
    whole: bool              # a fetched row is the vector as it is: ``dict(zip(columns, row))``, nothing converted
    event_time: tuple[int, Any] | None  # (index, converter) of the event time when a TTL hides expired rows
    sql: dict[int, str] = field(default_factory=dict)  # SELECT by number of keys (the same string object each
    # time: a prepared cursor is reused only for the very string it prepared)


class Server:
    """Looks up feature vectors for one online store."""

    def __init__(self, store: OnlineStore, pool_size: int) -> None:
        self.store = store
        self.pool = Pool(store.conn, pool_size)
        self._plans: dict[tuple, LookupPlan] = {}

    def close(self) -> None:
        """Close the pool's idle connections."""
        self.pool.close()

    def _plan(self, fg: FeatureGroupRecord, features: Sequence[str] | None) -> LookupPlan:
        key = (fg.id, fg.updated_at, tuple(features) if features is not None else None)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        if not fg.online_enabled:
            raise OnlineStoreError(f"feature group '{fg.name}' v{fg.version} is not online-enabled")
        schema = fg.schema
        names = schema.fieldNames()
        if not names:  # created, never written: there is no table and no column to look up yet
            raise OnlineStoreError(f"feature group '{fg.name}' v{fg.version} has no features yet (insert data "
                                   "first); nothing can be served from it")
        wanted = list(features) if features is not None else names
        unknown = [f for f in wanted if f not in names]
        if unknown:
            raise OnlineStoreError(f"feature group '{fg.name}' v{fg.version} has no feature(s) "
                                   f"{', '.join(map(repr, unknown))}")
        ttl = bool(fg.event_time and fg.online_ttl)
        columns = list(dict.fromkeys(fg.primary_key + wanted + ([fg.event_time] if ttl else [])))
        dialect = self.store.dialect
        driver = self.store.conn.driver if dialect == "mysql" else None
        convs = {c: fetch_converter(schema[c].dataType, dialect, driver) for c in columns}
        index = {c: i for i, c in enumerate(columns)}
        out_converters = [(f, convs[f]) for f in wanted if convs[f] is not None]
        plan = LookupPlan(columns, wanted, [key_param(k, schema[k].dataType, dialect) for k in fg.primary_key],
                     [convs[k] for k in fg.primary_key], [(f, index[f]) for f in wanted], out_converters,
                     wanted == columns and not out_converters,
                     (index[fg.event_time], convs[fg.event_time]) if ttl else None)
        if len(self._plans) > 1024:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def lookup(self, fg: FeatureGroupRecord, entries: Sequence[dict[str, Any]], features: Sequence[str] | None = None,
               on_missing: str = "none") -> list[dict[str, Any] | None]:
        """Vectors of ``fg`` for each entry (a dict holding the primary-key values)."""
        from featurestore.online.sync import ttl_cutoff

        if on_missing not in ("none", "raise"):
            raise OnlineStoreError(f"on_missing must be 'none' or 'raise', got {on_missing!r}")
        plan = self._plan(fg, features)
        pk = fg.primary_key
        single = len(pk) == 1  # the common case: bare values, not 1-tuples, as keys
        key_params = list(zip(pk, plan.key_params, strict=True))
        params_of: list[Any] = []
        try:
            if single:
                k0, param0 = key_params[0]
                for entry in entries:
                    params_of.append(param0(entry[k0]))
            else:
                for entry in entries:
                    params_of.append(tuple([param(entry[k]) for k, param in key_params]))
        except (KeyError, TypeError, AttributeError):
            if not isinstance(entry, dict):
                raise OnlineStoreError(f"an entry must be a mapping of primary-key values, got {entry!r}") from None
            missing = [k for k in pk if k not in entry]
            if not missing:
                raise
            raise OnlineStoreError(f"entry {entry!r} lacks primary-key column(s) {', '.join(map(repr, missing))} "
                                   f"of feature group '{fg.name}'") from None
        if single:
            unique = list(dict.fromkeys(p for p in params_of if p is not None))
            flat = unique
        else:
            unique = list(dict.fromkeys(p for p in params_of if None not in p))
            flat = [v for p in unique for v in p]
        key_back = plan.key_back
        # fetched rows by their key, as the Python values the entries' keys convert to
        found: dict[Any, tuple] = {}
        if unique:
            sql = plan.sql.get(len(unique))
            if sql is None:
                if len(plan.sql) > MAX_STATEMENTS:
                    plan.sql.clear()
                sql = plan.sql[len(unique)] = self.store.select_sql(fg, plan.columns, len(unique))
            with self.pool.connection() as conn:
                try:
                    rows = conn.query(sql, flat)
                except OnlineStoreError:
                    raise
                except Exception as exc:
                    if _missing_table(exc):  # nothing materialized yet: every key is missing
                        rows = []
                    else:
                        raise OnlineStoreError(f"online lookup in {self.store.table_name(fg)} failed: "
                                               f"{getattr(exc, 'msg', None) or exc}") from None
            if plan.event_time is not None and fg.online_ttl is not None:
                rows = _unexpired(rows, *plan.event_time, ttl_cutoff(fg))
            if single:
                back0 = key_back[0]
                found = {r[0]: r for r in rows} if back0 is None else {back0(r[0]): r for r in rows}
            else:
                found = {tuple([r[i] if c is None else c(r[i]) for i, c in enumerate(key_back)]): r for r in rows}
        if not any(key_back):
            keys_of = params_of
        elif single:
            keys_of = [None if p is None else key_back[0](p) for p in params_of]
        else:
            keys_of = [tuple([v if c is None or v is None else c(v) for c, v in zip(key_back, p, strict=True)])
                       for p in params_of]
        features, columns = plan.features, plan.columns
        out: list[dict[str, Any] | None] = []
        for entry, key in zip(entries, keys_of, strict=True):
            row = found.get(key)
            if row is None:
                if on_missing == "raise":
                    raise KeyError(f"no online row for key {', '.join(f'{k}={entry[k]!r}' for k in pk)} in "
                                   f"feature group '{fg.name}' v{fg.version}")
                out.append({f: (entry[f] if f in pk else None) for f in features})
            elif plan.whole:
                out.append(dict(zip(columns, row)))  # noqa: B905 - a fetched row has every selected column
            else:
                vector = {f: row[i] for f, i in plan.out}
                for f, conv in plan.out_converters:
                    v = vector[f]
                    if v is not None:
                        vector[f] = conv(v)
                out.append(vector)
        return out

    def vectors(self, targets: Sequence[Target], entries: Sequence[dict[str, Any]],
                on_missing: str = "none") -> list[dict[str, Any]]:
        """Join the vectors of several feature groups by key: one lookup per feature group."""
        if len(targets) == 1 and not targets[0][2]:  # one feature group, no renames: nothing to merge
            return self.lookup(targets[0][0], entries, targets[0][1], on_missing)
        merged: list[dict[str, Any]] = [{} for _ in entries]
        owner: dict[str, str] = {}
        for fg, features, rename in targets:
            part = self.lookup(fg, entries, features, on_missing)
            for name in self._plan(fg, features).features:
                out = rename.get(name, name)
                if out in owner and name not in fg.primary_key:
                    raise OnlineStoreError(f"feature '{out}' is in both '{owner[out]}' and '{fg.name}': "
                                           "select features explicitly to disambiguate")
                owner.setdefault(out, fg.name)
            for vec, values in zip(merged, part, strict=True):
                for k, v in values.items():
                    out = rename.get(k, k)
                    if out not in vec or vec[out] is None:
                        vec[out] = v
        return merged


Target = tuple["FeatureGroupRecord", "Sequence[str] | None", dict[str, str]]


def normalize_target(target: Any, features: Sequence[str] | None = None) -> list[Target]:
    """A feature group, a Query (``fg.select(...).join(...)``: its feature groups with their output
    names), or a list of feature groups or ``(feature group, features)`` pairs, as records.

    A feature group is its record, or any object holding one as ``.record`` (the facade)."""
    if hasattr(target, "parts"):
        items: list[Any] = [(p.feature_group, [src for src, _ in p.features], {src: out for src, out in p.features})
                            for p in target.parts()]
    else:
        items = list(target) if isinstance(target, (list, tuple)) else [target]
    out: list[Target] = []
    for item in items:
        fg, chosen, rename = (item + ({},))[:3] if isinstance(item, tuple) else (item, None, {})
        fg = getattr(fg, "record", fg)
        if features is not None:
            names = [f.name for f in fg.features] if chosen is None else list(chosen)
            chosen = [f for f in names if rename.get(f, f) in features]
        out.append((fg, chosen, rename))
    if features is not None:
        known = {rename.get(f, f) for _, ch, rename in out for f in (ch or [])}
        unknown = [f for f in features if f not in known]
        if unknown:
            raise OnlineStoreError(f"no feature group of the target has feature(s) {', '.join(map(repr, unknown))}")
    return out


def _unexpired(rows: list[tuple], index: int, conv: Any, cutoff: Any) -> list[tuple]:
    """The rows whose event time (at ``index``) is at or after ``cutoff``: expired rows are not served even
    before the job purges them."""
    kept = []
    for row in rows:
        v = row[index]
        if v is not None and conv is not None:
            v = conv(v)
        if v is None or v >= cutoff:
            kept.append(row)
    return kept


def _missing_table(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (1049, 1146) or "no such table" in str(exc)


def json_value(value: Any) -> Any:
    """A served value as JSON (datetimes ISO 8601 UTC, decimals as strings, bytes base64; NaN and
    infinities as null, which JSON cannot hold)."""
    import base64
    import decimal
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value

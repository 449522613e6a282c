"""The registry: feature-store metadata in a SQL database through SQLAlchemy 2.

SQLite by default (a file under the warehouse), MariaDB/MySQL by URL. Every value goes through
bound parameters; identifiers never come from users. Records come back as plain dicts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError

from featurestore.errors import FeatureStoreError
from featurestore.registry import schema as S


class RegistryError(FeatureStoreError):
    """A registry record is missing or would be duplicated."""


def utcnow() -> dt.datetime:
    """Naive UTC now, second precision (what every backend stores the same way)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def make_engine(url: str, password: str | None = None) -> Engine:
    """A SQLAlchemy engine for ``url``; ``password`` fills in a URL that has none."""
    parsed = make_url(url)
    if password and not parsed.password:
        parsed = parsed.set(password=password)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            import os

            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001 - SQLAlchemy event signature
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_recycle=3600)


class Registry:
    """Typed access to the registry tables."""

    def __init__(self, url: str, password: str | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, password)
        self.migrate()

    # -- schema ------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version."""
        with self.engine.begin() as conn:
            S.schema_version.create(conn, checkfirst=True)
            current = conn.execute(select(func.max(S.schema_version.c.version))).scalar() or 0
        for version, _desc, run in S.MIGRATIONS:
            if version <= current:
                continue
            with self.engine.begin() as conn:
                run(conn)
                try:
                    conn.execute(insert(S.schema_version).values(version=version, applied_at=utcnow()))
                except IntegrityError:
                    pass  # another process applied it at the same time
            current = version
        return current

    def schema_version(self) -> int:
        """The newest applied migration."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(S.schema_version.c.version))).scalar() or 0

    # -- feature stores ------------------------------------------------------------------------
    def ensure_feature_store(self, name: str, description: str = "") -> int:
        """The id of the feature store ``name``, creating it if needed."""
        t = S.feature_stores
        with self.engine.begin() as conn:
            found = conn.execute(select(t.c.id).where(t.c.name == name)).scalar()
            if found is not None:
                return found
            try:
                return conn.execute(insert(t).values(name=name, description=description,
                                                     created_at=utcnow())).inserted_primary_key[0]
            except IntegrityError:
                pass
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.id).where(t.c.name == name)).scalar_one()

    # -- feature groups ------------------------------------------------------------------------
    def create_feature_group(self, record: dict[str, Any], table_format: str = "HUDI",
                             engine: str = "native") -> dict[str, Any]:
        """Insert a feature group version (its offline ``table_format`` and ``engine`` recorded with it);
        a duplicate (store, name, version) is an error."""
        now = utcnow()
        values = {**record, "table_format": table_format, "engine": engine, "created_at": now, "updated_at": now}
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(insert(S.feature_groups).values(**values)).inserted_primary_key[0]
        except IntegrityError:
            raise RegistryError(
                f"feature group '{record['name']}' version {record['version']} already exists"
            ) from None
        return self.feature_group_by_id(new_id)

    def feature_group_by_id(self, fg_id: int) -> dict[str, Any]:
        """One feature group record by id."""
        with self.engine.connect() as conn:
            row = conn.execute(select(S.feature_groups).where(S.feature_groups.c.id == fg_id)).mappings().first()
        if row is None:
            raise RegistryError(f"feature group id {fg_id} not found")
        return dict(row)

    def find_feature_group(self, fs_id: int, name: str, version: int | None = None) -> dict[str, Any] | None:
        """A feature group version (None = the latest), or None."""
        t = S.feature_groups
        query = select(t).where(and_(t.c.feature_store_id == fs_id, t.c.name == name))
        query = query.where(t.c.version == version) if version is not None else query.order_by(t.c.version.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).mappings().first()
        return dict(row) if row else None

    def list_feature_groups(self, fs_id: int, name: str | None = None) -> list[dict[str, Any]]:
        """Every feature group version of a store (of one name if given), by name then version."""
        t = S.feature_groups
        query = select(t).where(t.c.feature_store_id == fs_id)
        if name is not None:
            query = query.where(t.c.name == name)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.name, t.c.version)).mappings()]

    def next_version(self, fs_id: int, name: str) -> int:
        """The next free version number of a feature group name."""
        t = S.feature_groups
        with self.engine.connect() as conn:
            top = conn.execute(select(func.max(t.c.version)).where(
                and_(t.c.feature_store_id == fs_id, t.c.name == name))).scalar()
        return (top or 0) + 1

    def update_feature_group(self, fg_id: int, user: str, **values: Any) -> dict[str, Any]:
        """Change fields of a feature group (description, features, options, ...)."""
        with self.engine.begin() as conn:
            conn.execute(update(S.feature_groups).where(S.feature_groups.c.id == fg_id).values(
                **values, updated_at=utcnow(), updated_by=user))
        return self.feature_group_by_id(fg_id)

    def delete_feature_group(self, fg_id: int) -> None:
        """Remove a feature group with its tags and commit log."""
        with self.engine.begin() as conn:
            self.delete_quality_records(conn, fg_id)
            conn.execute(delete(S.commits).where(S.commits.c.feature_group_id == fg_id))
            conn.execute(delete(S.tags).where(and_(S.tags.c.entity_type == "feature_group",
                                                   S.tags.c.entity_id == fg_id)))
            conn.execute(delete(S.feature_groups).where(S.feature_groups.c.id == fg_id))

    # -- tags ----------------------------------------------------------------------------------
    def set_tag(self, entity_type: str, entity_id: int, name: str, value: Any) -> None:
        """Add or replace a tag (JSON value)."""
        t = S.tags
        where = and_(t.c.entity_type == entity_type, t.c.entity_id == entity_id, t.c.name == name)
        with self.engine.begin() as conn:
            if conn.execute(select(t.c.id).where(where)).first():
                conn.execute(update(t).where(where).values(value=value))
            else:
                conn.execute(insert(t).values(entity_type=entity_type, entity_id=entity_id, name=name, value=value))

    def get_tags(self, entity_type: str, entity_id: int) -> dict[str, Any]:
        """All tags of an entity."""
        t = S.tags
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.name, t.c.value).where(
                and_(t.c.entity_type == entity_type, t.c.entity_id == entity_id)).order_by(t.c.name))
            return {r.name: r.value for r in rows}

    def delete_tag(self, entity_type: str, entity_id: int, name: str) -> bool:
        """Remove a tag; True if it existed."""
        t = S.tags
        with self.engine.begin() as conn:
            res = conn.execute(delete(t).where(and_(t.c.entity_type == entity_type, t.c.entity_id == entity_id,
                                                    t.c.name == name)))
        return res.rowcount > 0

    def all_tags(self, entity_type: str, entity_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Tags of many entities at once."""
        ids = list(entity_ids)
        if not ids:
            return {}
        t = S.tags
        out: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(select(t).where(and_(t.c.entity_type == entity_type, t.c.entity_id.in_(ids)))):
                out.setdefault(r.entity_id, {})[r.name] = r.value
        return out

    # -- commits -------------------------------------------------------------------------------
    def add_commit(self, fg_id: int, commit: dict[str, Any]) -> bool:
        """Record a commit of a feature group; False if it was already recorded."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(S.commits).values(feature_group_id=fg_id, **commit))
            return True
        except IntegrityError:
            return False

    def list_commits(self, fg_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits of a feature group, newest first."""
        t = S.commits
        query = select(t).where(t.c.feature_group_id == fg_id).order_by(t.c.commit_id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- connectors ----------------------------------------------------------------------------
    def create_connector(self, record: dict[str, Any]) -> dict[str, Any]:
        """Register a connector; a duplicate name is an error."""
        try:
            with self.engine.begin() as conn:
                res = conn.execute(insert(S.connectors).values(**record, created_at=utcnow()))
                new_id = res.inserted_primary_key[0]
        except IntegrityError:
            raise RegistryError(f"connector '{record['name']}' already exists") from None
        return self.connector(record["feature_store_id"], connector_id=new_id)

    def connector(self, fs_id: int, name: str | None = None, connector_id: int | None = None) -> dict[str, Any]:
        """A connector by name or id."""
        t = S.connectors
        query = select(t).where(t.c.feature_store_id == fs_id)
        query = query.where(t.c.id == connector_id) if connector_id is not None else query.where(t.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise RegistryError(f"connector '{name or connector_id}' not found")
        return dict(row)

    # -- quality -------------------------------------------------------------------------------
    def set_expectation_suite(self, fg_id: int, suite: dict[str, Any], policy: str, user: str) -> None:
        """Attach (or replace) the expectation suite of a feature group."""
        t = S.expectation_suites
        values = {"suite": suite, "policy": policy, "updated_at": utcnow(), "updated_by": user}
        with self.engine.begin() as conn:
            if conn.execute(select(t.c.id).where(t.c.feature_group_id == fg_id)).first():
                conn.execute(update(t).where(t.c.feature_group_id == fg_id).values(**values))
            else:
                conn.execute(insert(t).values(feature_group_id=fg_id, **values))

    def get_expectation_suite(self, fg_id: int) -> dict[str, Any] | None:
        """``{"suite", "policy", "updated_at", "updated_by"}`` or None."""
        t = S.expectation_suites
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.feature_group_id == fg_id)).mappings().first()
        return dict(row) if row else None

    def delete_expectation_suite(self, fg_id: int) -> bool:
        """Detach the suite; True if there was one."""
        with self.engine.begin() as conn:
            res = conn.execute(delete(S.expectation_suites).where(S.expectation_suites.c.feature_group_id == fg_id))
        return res.rowcount > 0

    def add_validation_report(self, fg_id: int, report: dict[str, Any], outcome: str, policy: str | None,
                              commit_id: str | None, metrics: dict[str, float | None]) -> int:
        """Store a validation report and, in the same transaction, its numeric metrics (the history
        anomaly checks compare against). Returns the report id."""
        now = utcnow()
        with self.engine.begin() as conn:
            report_id = conn.execute(insert(S.validation_reports).values(
                feature_group_id=fg_id, commit_id=commit_id, outcome=outcome, status=report["status"],
                policy=policy, rows=report.get("rows"), report=report, validated_at=now)).inserted_primary_key[0]
            rows = [{"feature_group_id": fg_id, "report_id": report_id, "commit_id": commit_id, "analyzer": k,
                     "value": v, "recorded_at": now} for k, v in metrics.items()]
            if rows:
                conn.execute(insert(S.metric_history), rows)
        return report_id

    def list_validation_reports(self, fg_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Validation reports of a feature group, newest first."""
        t = S.validation_reports
        query = select(t).where(t.c.feature_group_id == fg_id).order_by(t.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def metric_history(self, fg_id: int, analyzer: str, accepted_only: bool = True) -> list[tuple[str | None, float]]:
        """``(commit_id, value)`` of a metric over earlier inserts, oldest first (accepted inserts only
        by default: rejected batches are not a baseline)."""
        t = S.metric_history
        query = select(t.c.commit_id, t.c.value).where(and_(t.c.feature_group_id == fg_id, t.c.analyzer == analyzer,
                                                           t.c.value.is_not(None)))
        if accepted_only:
            query = query.where(t.c.commit_id.is_not(None))
        with self.engine.connect() as conn:
            return [(r.commit_id, r.value) for r in conn.execute(query.order_by(t.c.id))]

    def add_statistics(self, fg_id: int, commit_id: str | None, kind: str, stats: dict[str, Any]) -> int:
        """Store statistics of a commit's data (``kind="commit"``) or of the whole table (``"table"``)."""
        with self.engine.begin() as conn:
            return conn.execute(insert(S.statistics).values(feature_group_id=fg_id, commit_id=commit_id, kind=kind,
                                                            computed_at=utcnow(), stats=stats)).inserted_primary_key[0]

    def list_statistics(self, fg_id: int, commit_id: str | None = None, kind: str | None = None
                        ) -> list[dict[str, Any]]:
        """Stored statistics, newest first (of one commit and/or kind if given)."""
        t = S.statistics
        query = select(t).where(t.c.feature_group_id == fg_id)
        if commit_id is not None:
            query = query.where(t.c.commit_id == commit_id)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.id.desc())).mappings()]

    def vacuum_rejected_reports(self, fg_ids: list[int], older_than_days: int) -> int:
        """Delete reports (and their metrics) of rejected batches older than ``older_than_days``."""
        if not fg_ids:
            return 0
        cutoff = utcnow() - dt.timedelta(days=older_than_days)
        t = S.validation_reports
        where = and_(t.c.feature_group_id.in_(fg_ids), t.c.outcome == "rejected", t.c.validated_at < cutoff)
        with self.engine.begin() as conn:
            ids = [r.id for r in conn.execute(select(t.c.id).where(where))]
            if not ids:
                return 0
            conn.execute(delete(S.metric_history).where(S.metric_history.c.report_id.in_(ids)))
            conn.execute(delete(t).where(t.c.id.in_(ids)))
        return len(ids)

    def delete_quality_records(self, conn: Any, fg_id: int) -> None:
        """Inside ``delete_feature_group``'s transaction: suites, reports, metrics, statistics."""
        for table in (S.metric_history, S.validation_reports, S.statistics, S.expectation_suites):
            conn.execute(delete(table).where(table.c.feature_group_id == fg_id))


    # -- online store --------------------------------------------------------------------------
    def online_state(self, fg_id: int) -> dict[str, Any] | None:
        """The materialization state of a feature group (last materialized commit, ...), or None."""
        t = S.online_state
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.feature_group_id == fg_id)).mappings().first()
        return dict(row) if row else None

    def set_online_state(self, fg_id: int, last_commit: str | None, mode: str, rows_written: int = 0,
                         rows_deleted: int = 0) -> None:
        """Record a finished materialization (called only after every online write succeeded)."""
        t = S.online_state
        values = {"last_commit": last_commit, "mode": mode, "rows_written": rows_written,
                  "rows_deleted": rows_deleted, "materialized_at": utcnow()}
        with self.engine.begin() as conn:
            if conn.execute(select(t.c.feature_group_id).where(t.c.feature_group_id == fg_id)).first():
                conn.execute(update(t).where(t.c.feature_group_id == fg_id).values(**values))
            else:
                conn.execute(insert(t).values(feature_group_id=fg_id, **values))


    # -- versioned records of a store: training datasets, feature views ---------------------------
    # Both tables are keyed by (feature_store_id, name, version); what and t name the kind and its table.
    def _create_versioned(self, t: Any, what: str, record: dict[str, Any]) -> dict[str, Any]:
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(insert(t).values(**record, created_at=utcnow())).inserted_primary_key[0]
        except IntegrityError:
            raise RegistryError(f"{what} '{record['name']}' version {record['version']} already exists") from None
        with self.engine.connect() as conn:
            return dict(conn.execute(select(t).where(t.c.id == new_id)).mappings().one())

    def _find_versioned(self, t: Any, fs_id: int, name: str, version: int | None) -> dict[str, Any] | None:
        query = select(t).where(and_(t.c.feature_store_id == fs_id, t.c.name == name))
        query = query.where(t.c.version == version) if version is not None else query.order_by(t.c.version.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).mappings().first()
        return dict(row) if row else None

    def _list_versioned(self, t: Any, fs_id: int, name: str | None) -> list[dict[str, Any]]:
        query = select(t).where(t.c.feature_store_id == fs_id)
        if name is not None:
            query = query.where(t.c.name == name)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.name, t.c.version)).mappings()]

    def _next_version(self, t: Any, fs_id: int, name: str) -> int:
        with self.engine.connect() as conn:
            top = conn.execute(select(func.max(t.c.version)).where(
                and_(t.c.feature_store_id == fs_id, t.c.name == name))).scalar()
        return (top or 0) + 1

    def _delete_versioned(self, t: Any, record_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.id == record_id))

    def create_training_dataset(self, record: dict[str, Any]) -> dict[str, Any]:
        """Insert a training dataset version; a duplicate (store, name, version) is an error."""
        return self._create_versioned(S.training_datasets, "training dataset", record)

    def find_training_dataset(self, fs_id: int, name: str, version: int | None = None) -> dict[str, Any] | None:
        """A training dataset version (None = the latest), or None."""
        return self._find_versioned(S.training_datasets, fs_id, name, version)

    def list_training_datasets(self, fs_id: int, name: str | None = None) -> list[dict[str, Any]]:
        """Every training dataset version of a store (of one name if given), by name then version."""
        return self._list_versioned(S.training_datasets, fs_id, name)

    def next_training_dataset_version(self, fs_id: int, name: str) -> int:
        """The next free version number of a training dataset name."""
        return self._next_version(S.training_datasets, fs_id, name)

    def delete_training_dataset(self, td_id: int) -> None:
        """Remove a training dataset record."""
        self._delete_versioned(S.training_datasets, td_id)

    def create_feature_view(self, record: dict[str, Any]) -> dict[str, Any]:
        """Insert a feature view version; a duplicate (store, name, version) is an error."""
        return self._create_versioned(S.feature_views, "feature view", record)

    def find_feature_view(self, fs_id: int, name: str, version: int | None = None) -> dict[str, Any] | None:
        """A feature view version (None = the latest), or None."""
        return self._find_versioned(S.feature_views, fs_id, name, version)

    def list_feature_views(self, fs_id: int, name: str | None = None) -> list[dict[str, Any]]:
        """Every feature view version of a store (of one name if given), by name then version."""
        return self._list_versioned(S.feature_views, fs_id, name)

    def next_feature_view_version(self, fs_id: int, name: str) -> int:
        """The next free version number of a feature view name."""
        return self._next_version(S.feature_views, fs_id, name)

    def delete_feature_view(self, fv_id: int) -> None:
        """Remove a feature view record."""
        self._delete_versioned(S.feature_views, fv_id)

    # -- code provenance -------------------------------------------------------------------------
    def add_provenance(self, record: dict[str, Any], content: bytes | None) -> int:
        """Store a provenance row; the code content is stored once per SHA-256."""
        now = utcnow()
        with self.engine.begin() as conn:
            if record.get("sha256") and content is not None and not conn.execute(
                    select(S.code_contents.c.sha256).where(S.code_contents.c.sha256 == record["sha256"])).first():
                try:
                    with conn.begin_nested():
                        conn.execute(insert(S.code_contents).values(sha256=record["sha256"], kind=record["kind"],
                                                                    size=len(content), content=content, stored_at=now))
                except IntegrityError:
                    pass  # stored concurrently by another writer
            return conn.execute(insert(S.provenance).values(**record)).inserted_primary_key[0]

    def get_provenance(self, entity_type: str, feature_group_id: int | None = None, commit_id: str | None = None,
                       entity_id: int | None = None) -> list[dict[str, Any]]:
        """Provenance rows of a feature group (one commit if given) or of an entity, newest first."""
        t = S.provenance
        query = select(t).where(t.c.entity_type == entity_type)
        if feature_group_id is not None:
            query = query.where(t.c.feature_group_id == feature_group_id)
        if commit_id is not None:
            query = query.where(t.c.commit_id == commit_id)
        if entity_id is not None:
            query = query.where(t.c.entity_id == entity_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.id.desc())).mappings()]

    def get_code(self, sha256: str) -> bytes | None:
        """Stored code content by hash."""
        with self.engine.connect() as conn:
            return conn.execute(select(S.code_contents.c.content).where(S.code_contents.c.sha256 == sha256)).scalar()

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()

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
    def create_feature_group(self, record: dict[str, Any]) -> dict[str, Any]:
        """Insert a feature group version; a duplicate (store, name, version) is an error."""
        now = utcnow()
        values = {**record, "created_at": now, "updated_at": now}
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

    # -- online store --------------------------------------------------------------------------

    # -- training data -------------------------------------------------------------------------

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()

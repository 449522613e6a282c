"""Where a feature group's rows come from: its offline table (cached) or a JDBC query (external)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from featurestore import offline
from featurestore.errors import FeatureGroupError, FeatureStoreError
from featurestore.model.protocols import StoreContext
from featurestore.model.records import FeatureGroupRecord

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

JDBC_DRIVER = "org.mariadb.jdbc.Driver"


def read_jdbc(ctx: StoreContext, connector_id: int, query: str) -> DataFrame:
    """Run ``query`` on a registered JDBC connector through Spark JDBC (the password from the
    environment variable the connector names, read now and never stored)."""
    conn = ctx.registry.connector(ctx.id, connector_id=connector_id)
    reader = (ctx.spark.read.format("jdbc").option("url", conn["url"]).option("query", query)
              .option("driver", JDBC_DRIVER))
    if conn["user"]:
        reader = reader.option("user", conn["user"])
    if conn["password_env"]:
        password = os.environ.get(conn["password_env"])
        if password is None:
            raise FeatureStoreError(f"connector '{conn['name']}': environment variable {conn['password_env']} "
                                    "is not set")
        reader = reader.option("password", password)
    for k, v in (conn["options"] or {}).items():
        reader = reader.option(k, v)
    return reader.load()


def read_feature_group(ctx: StoreContext, record: FeatureGroupRecord, as_of: str | None = None,
                       exclude_until: str | None = None) -> DataFrame:
    """The rows of a feature group: the offline snapshot (as of a commit id), or with ``exclude_until`` (a
    commit id) the rows the commits after it wrote, up to ``as_of``; or an external query's result."""
    if record.kind == "external":
        if as_of is not None or exclude_until is not None:
            raise FeatureGroupError(f"external feature group '{record.name}' has no commit history; as_of is not "
                                    "supported")
        return read_jdbc(ctx, int(record.connector_id or 0), str(record.options["query"]))
    table = offline.open_table(ctx, record)
    if exclude_until is not None:
        return table.read_changes(exclude_until, as_of)
    return table.read(as_of=as_of)

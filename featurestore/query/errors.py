"""The query package's error and its identifier quoting, shared by the query and the point-in-time join
modules (kept apart so that neither imports the other's internals in a circle)."""

from __future__ import annotations

from featurestore.errors import FeatureStoreError
from featurestore.names import quote_identifier


class QueryError(FeatureStoreError, ValueError):
    """A query that cannot be built: names the feature, column, feature group or option at fault."""


def q(name: str) -> str:
    """A back-quoted Spark SQL identifier (see :func:`featurestore.names.quote_identifier`)."""
    return quote_identifier(name, "spark")

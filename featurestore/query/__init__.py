"""Query API and point-in-time joins.

Public surface: :class:`Query` (built with ``fg.select_all()``, ``fg.select([...])``, ``fg.filter(...)``),
:class:`QueryError`, :func:`resolve_features` (``fs.get_features``) and :func:`point_in_time`
(``fs.get_training_data``).
"""

from featurestore.query.filters import Condition, FeatureColumn
from featurestore.query.planner import point_in_time, resolve_features
from featurestore.query.query import Join, Query, QueryError

__all__ = ["Condition", "FeatureColumn", "Join", "Query", "QueryError", "point_in_time", "resolve_features"]

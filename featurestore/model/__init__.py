"""The model layer: plain records, the timeline as data, and the protocols services depend on.

Nothing here imports anything above it (no storage engine, registry, service or facade): every other
layer of the package builds on these types.
"""

from featurestore.model.protocols import StoreContext
from featurestore.model.records import (
    EVENT_TIME_TYPES,
    CommitInfo,
    CommitOutcome,
    Feature,
    FeatureGroupRecord,
    WriteResult,
    features_from_schema,
)

__all__ = [
    "EVENT_TIME_TYPES",
    "CommitInfo",
    "CommitOutcome",
    "Feature",
    "FeatureGroupRecord",
    "StoreContext",
    "WriteResult",
    "features_from_schema",
]

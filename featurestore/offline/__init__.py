"""The offline store: one interface (:class:`OfflineTable`) over every table format and engine.

:func:`open_table` picks the implementation named by the feature group's record
(``table_format`` + ``engine``). Nothing outside this package imports a table format's engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurestore.errors import OfflineStoreError
from featurestore.model.records import FeatureGroupRecord
from featurestore.offline.delta_lake import DeltaLakeTable
from featurestore.offline.interface import WRITE_OPERATIONS, OfflineTable
from featurestore.offline.native_hudi import NativeHudiTable

if TYPE_CHECKING:
    from featurestore.model.protocols import StoreContext

#: (table_format, engine) pairs this build can open
IMPLEMENTATIONS: dict[tuple[str, str], type[OfflineTable]] = {("HUDI", "native"): NativeHudiTable,
                                                              ("DELTA", "delta"): DeltaLakeTable}
#: the engine of a table format when none is named
DEFAULT_ENGINES = {"HUDI": "native", "DELTA": "delta"}


def open_table(ctx: StoreContext, record: FeatureGroupRecord) -> OfflineTable:
    """The offline table of a cached feature group version, by its format and engine."""
    if record.kind != "cached" or not record.location:
        raise OfflineStoreError(f"feature group {record.label} is {record.kind}: it has no offline table")
    target = IMPLEMENTATIONS.get((record.table_format, record.engine))
    if target is None:
        known = ", ".join(f"{f}/{e}" for f, e in IMPLEMENTATIONS)
        raise OfflineStoreError(f"feature group {record.label}: no offline engine for table format "
                                f"{record.table_format!r} with engine {record.engine!r} (available: {known})")
    return target(ctx, record)


__all__ = ["DEFAULT_ENGINES", "IMPLEMENTATIONS", "WRITE_OPERATIONS", "OfflineStoreError", "OfflineTable", "open_table"]

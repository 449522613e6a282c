"""Apache Hudi copy-on-write engine: PySpark executors write the files, the driver commits.

Public surface:

* :func:`write` ``(df, path, options) -> CommitResult``
* :func:`read` ``(spark, path, options=None) -> DataFrame``
* :func:`timeline` ``(path) -> list[dict]``
* :func:`clean` ``(path, commits_retained) -> int`` (explicit cleaning; writes also clean; both first
  finish a clean or rollback a killed writer left)

Options use Hudi's own keys; see :mod:`featurestore.hudi.options` and the README.
"""

from featurestore.hudi.errors import (
    HudiError,
    HudiInstantNotReadable,
    HudiLockTimeout,
    HudiOptionError,
    HudiSchemaError,
    HudiTableNotFound,
)
from featurestore.hudi.reader import read, timeline
from featurestore.hudi.writer import CommitResult, clean, write

__all__ = [
    "CommitResult",
    "HudiError",
    "HudiInstantNotReadable",
    "HudiLockTimeout",
    "HudiOptionError",
    "HudiSchemaError",
    "HudiTableNotFound",
    "clean",
    "read",
    "timeline",
    "write",
]

"""The online store: latest row per primary key in MariaDB/MySQL or SQLite, kept in sync from the
Hudi timeline by the materializer, served as feature vectors in milliseconds.

Public surface (also reached through ``FeatureStore`` and ``FeatureGroup``):

* :class:`OnlineStore` - connection settings, tables and statements of one feature store
* :func:`materialize` ``(ctx, record, mode)`` - sync an online table from the offline commits
* :func:`read_online` ``(ctx, record)`` - the online table as a Spark DataFrame
* :class:`Server` - feature-vector lookups through a connection pool
* :class:`OnlineStoreError`
"""

from featurestore.online.serving import Server
from featurestore.online.store import OnlineStore
from featurestore.online.sync import materialize, read_online
from featurestore.online.types import OnlineStoreError

__all__ = ["OnlineStore", "OnlineStoreError", "Server", "materialize", "read_online"]

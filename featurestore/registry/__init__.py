"""The metadata registry (SQLAlchemy 2): SQLite by default, MariaDB/MySQL by URL."""

from featurestore.registry.errors import MigrationLockTimeout, RegistryError
from featurestore.registry.sql import Registry, make_engine

__all__ = ["MigrationLockTimeout", "Registry", "RegistryError", "make_engine"]

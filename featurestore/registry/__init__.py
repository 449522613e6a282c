"""The metadata registry (SQLAlchemy 2): SQLite by default, MariaDB/MySQL by URL."""

from featurestore.registry.sql import Registry, RegistryError, make_engine

__all__ = ["Registry", "RegistryError", "make_engine"]

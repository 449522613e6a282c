"""Exceptions raised by the feature store. Every message names the key, column or option at fault."""


class FeatureStoreError(Exception):
    """Base class of every error the feature store raises on purpose."""


class ConfigError(FeatureStoreError, ValueError):
    """A configuration key is unknown or has a value of the wrong type."""


class ServiceError(FeatureStoreError, RuntimeError):
    """A service the feature store needs (database, Spark cluster) could not be started or reached."""


class FeatureGroupError(FeatureStoreError, ValueError):
    """Bad input for a feature group: names the column, key or option at fault."""


class OfflineStoreError(FeatureStoreError):
    """An offline table could not be read or written as asked (an unreadable commit, a bad option)."""

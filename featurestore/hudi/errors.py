"""Errors of the Hudi engine; each names the option, column, key or instant at fault."""

from featurestore.errors import FeatureStoreError


class HudiError(FeatureStoreError):
    """Base class of Hudi engine errors."""


class HudiOptionError(HudiError, ValueError):
    """An unknown option, a bad option value, or options that contradict the existing table."""


class HudiSchemaError(HudiError, ValueError):
    """Incoming data does not fit the table: missing, dropped or retyped columns, null keys."""


class HudiLockTimeout(HudiError, TimeoutError):
    """Another writer held the table lock for longer than the lock timeout."""


class HudiInstantNotReadable(HudiError, ValueError):
    """A time-travel or incremental read asked for a commit the cleaner removed or never existed."""


class HudiTableNotFound(HudiError, FileNotFoundError):
    """No Hudi table at the path."""

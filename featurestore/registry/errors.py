"""The registry's errors."""

from __future__ import annotations

from featurestore.errors import FeatureStoreError


class RegistryError(FeatureStoreError):
    """A registry record is missing, would be duplicated, or collided with a concurrent writer."""


class MigrationLockTimeout(RegistryError):
    """Another process held the registry's migration lock for longer than the timeout."""

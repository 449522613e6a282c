"""The error of malformed checks, constraints and suites (below every quality module that raises it)."""

from featurestore.errors import FeatureStoreError


class SuiteError(FeatureStoreError, ValueError):
    """A check, constraint or suite is malformed; names the constraint and parameter at fault."""

"""Identifier rules: names that end up in paths, table names and SQL identifiers."""

from __future__ import annotations

import re

from featurestore.errors import FeatureStoreError

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")


class NameError_(FeatureStoreError, ValueError):
    """A name that does not match the identifier pattern."""


def check_name(name: object, what: str) -> str:
    """Return ``name`` if it matches ``[a-z][a-z0-9_]{0,62}``, else raise naming ``what``."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise NameError_(f"{what} name {name!r} is invalid: use lower-case letters, digits and '_', "
                         "starting with a letter, at most 63 characters")
    return name

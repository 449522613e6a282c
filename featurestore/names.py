"""Identifier rules: names that end up in paths, table names and SQL identifiers, and the one helper
that quotes an identifier for Spark SQL, MariaDB/MySQL or SQLite."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from featurestore.errors import FeatureStoreError

if TYPE_CHECKING:
    from pyspark.sql import Column

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")
QUOTE_CHARS = {"spark": "`", "mysql": "`", "sqlite": '"'}


class NameError_(FeatureStoreError, ValueError):
    """A name that does not match the identifier pattern."""


def check_name(name: object, what: str) -> str:
    """Return ``name`` if it matches ``[a-z][a-z0-9_]{0,62}``, else raise naming ``what``."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise NameError_(f"{what} name {name!r} is invalid: use lower-case letters, digits and '_', "
                         "starting with a letter, at most 63 characters")
    return name


def quote_identifier(name: str, dialect: str = "spark") -> str:
    """``name`` quoted as one identifier of ``dialect`` (``spark``, ``mysql`` or ``sqlite``).

    The quote character inside the name is doubled, so no name can close the quotes early. Column
    names come from users' DataFrames and may hold any character; table and database names are
    also checked against a strict pattern where they are made.
    """
    quote = QUOTE_CHARS.get(dialect)
    if quote is None:
        raise ValueError(f"unknown SQL dialect {dialect!r}; use {', '.join(QUOTE_CHARS)}")
    if not isinstance(name, str) or not name or "\x00" in name:
        raise FeatureStoreError(f"invalid identifier {name!r}: an identifier is a non-empty string without NUL")
    return quote + name.replace(quote, quote * 2) + quote


def spark_column(name: str) -> Column:
    """The Spark column called exactly ``name`` (dots, spaces and back-quotes taken literally)."""
    from pyspark.sql import functions as F

    return F.col(quote_identifier(name, "spark"))

"""Filters written with features, as hsfs users write them: ``fg.amount > 100``, ``fg["category"] == "x"``,
``(fg.a > 1) & (fg.b == "x")``, ``fg.country.isin(["fr", "de"])``, ``fg.name.like("an%")``.

A :class:`FeatureColumn` names one feature of one feature group; comparing it gives a :class:`Condition`, a
Spark Column that remembers the feature groups its features come from, so ``Query.filter`` can refuse a
condition on another feature group's features (filters apply to a query's own feature group, before joins).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from featurestore.query.errors import QueryError


class Condition:
    """A boolean condition over features; combine with ``&``, ``|`` and ``~``."""

    def __init__(self, column: Column, feature_groups: frozenset[str]) -> None:
        self.column = column
        self.feature_groups = feature_groups  # table names (<name>_<version>) of the features used

    def _combine(self, other: Any, op: str) -> Condition:
        if not isinstance(other, Condition):
            raise QueryError(f"'{op}' combines two feature conditions, got {type(other).__name__}; wrap "
                             "comparisons in parentheses: (fg.a > 1) & (fg.b == 'x')")
        column = self.column & other.column if op == "&" else self.column | other.column
        return Condition(column, self.feature_groups | other.feature_groups)

    def __and__(self, other: Any) -> Condition:
        return self._combine(other, "&")

    def __or__(self, other: Any) -> Condition:
        return self._combine(other, "|")

    def __invert__(self) -> Condition:
        return Condition(~self.column, self.feature_groups)

    def __bool__(self) -> bool:
        raise QueryError("a feature condition has no truth value: use & | ~ (not and/or/not), in parentheses")

    def __repr__(self) -> str:
        return f"Condition({self.column})"


class FeatureColumn:
    """One feature of one feature group, for building filter conditions (``fg.amount``, ``fg["amount"]``)."""

    def __init__(self, name: str, feature_group: str) -> None:
        self.name = name
        self.feature_group = feature_group  # table name: <name>_<version>

    @property
    def column(self) -> Column:
        """The Spark column of the feature."""
        return F.col(f"`{self.name.replace('`', '``')}`")

    def _cond(self, column: Column) -> Condition:
        return Condition(column, frozenset([self.feature_group]))

    def _value(self, other: Any) -> Any:
        if isinstance(other, FeatureColumn):
            if other.feature_group != self.feature_group:
                raise QueryError(f"comparing features of two feature groups ({self.feature_group}.{self.name} and "
                                 f"{other.feature_group}.{other.name}) is not a filter: join the queries instead")
            return other.column
        if isinstance(other, Condition | Column):
            raise QueryError(f"feature '{self.name}' compared with a condition; compare with a value")
        return F.lit(other)

    def __eq__(self, other: Any) -> Condition:  # type: ignore[override]
        if other is None:
            return self._cond(self.column.isNull())
        return self._cond(self.column == self._value(other))

    def __ne__(self, other: Any) -> Condition:  # type: ignore[override]
        if other is None:
            return self._cond(self.column.isNotNull())
        return self._cond(self.column != self._value(other))

    def __lt__(self, other: Any) -> Condition:
        return self._cond(self.column < self._value(other))

    def __le__(self, other: Any) -> Condition:
        return self._cond(self.column <= self._value(other))

    def __gt__(self, other: Any) -> Condition:
        return self._cond(self.column > self._value(other))

    def __ge__(self, other: Any) -> Condition:
        return self._cond(self.column >= self._value(other))

    __hash__ = None  # type: ignore[assignment]  # == builds a condition: not usable as a dict key

    def isin(self, values: Iterable[Any]) -> Condition:
        """The feature's value is one of ``values``."""
        if isinstance(values, str) or not isinstance(values, Iterable):
            raise QueryError(f"isin on feature '{self.name}' needs a list of values, got {type(values).__name__}")
        return self._cond(self.column.isin([*values]))

    def like(self, pattern: str) -> Condition:
        """SQL ``LIKE``: ``%`` any characters, ``_`` one character."""
        if not isinstance(pattern, str):
            raise QueryError(f"like on feature '{self.name}' needs a string pattern, got {type(pattern).__name__}")
        return self._cond(self.column.like(pattern))

    def isnull(self) -> Condition:
        """The feature's value is null."""
        return self._cond(self.column.isNull())

    def notnull(self) -> Condition:
        """The feature's value is not null."""
        return self._cond(self.column.isNotNull())

    def __repr__(self) -> str:
        return f"FeatureColumn({self.feature_group}.{self.name})"

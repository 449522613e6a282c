"""Registered transformation functions of a feature store: ``fs.create_transformation_function(...).save()``,
``fs.get_transformation_function(name, version)``, ``fs.get_transformation_functions()``.

The built-ins belong to every feature store (version 1) and cannot be registered over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featurestore.names import check_name
from featurestore.transformation.functions import BUILTIN_FUNCTIONS, TransformationError, TransformationFunction

if TYPE_CHECKING:
    from featurestore.model.protocols import StoreContext


def _check_version(version: Any, name: str) -> None:
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise TransformationError(f"transformation function '{name}': version must be a positive integer, "
                                  f"got {version!r}")


def prepare(ctx: StoreContext, function: Any, version: int | None = None) -> TransformationFunction:
    """An unsaved transformation function of the store: a ``@udf`` function (or a plain Python function,
    taken as returning ``float``) at ``version`` (None: the next free one when saved)."""
    if not isinstance(function, TransformationFunction):
        if not callable(function):
            raise TransformationError(f"create_transformation_function takes a @udf function, got "
                                      f"{type(function).__name__}")
        from featurestore.transformation.functions import udf

        function = udf(float)(function)
    if function.builtin is not None:
        raise TransformationError(f"'{function.name}' is a built-in transformation function: every feature store "
                                  "has it already")
    _check_version(version, function.name)
    check_name(function.name, "transformation function")
    return function._copy(version=version, store=ctx, features=(), output_names=None)


def get(ctx: StoreContext, name: str, version: int | None = None) -> TransformationFunction:
    """A registered function version (None: the latest) or a built-in; an error naming it if absent."""
    _check_version(version, str(name))
    if name in BUILTIN_FUNCTIONS and version in (None, 1):
        return BUILTIN_FUNCTIONS[name]
    row = ctx.registry.find_transformation_function(ctx.id, name, version)
    if row is None:
        which = f"version {version}" if version is not None else "any version"
        raise TransformationError(f"transformation function '{name}' ({which}) not found in feature store "
                                  f"'{ctx.name}'")
    return TransformationFunction.from_dict(row["definition"], store=ctx)


def list_all(ctx: StoreContext) -> list[TransformationFunction]:
    """The built-ins, then every registered function version by name and version."""
    rows = ctx.registry.list_transformation_functions(ctx.id)
    return list(BUILTIN_FUNCTIONS.values()) + [TransformationFunction.from_dict(r["definition"], store=ctx)
                                               for r in rows]

"""How the ``featurestore`` command fails: one ``featurestore: error: ...`` line naming the cause, exit
code 2 for a usage mistake and 1 for a failure at run time (3: ``validate`` found the data failing its
suite); ``--debug`` adds the traceback."""

from __future__ import annotations

import argparse
from typing import NoReturn

from featurestore.errors import FeatureStoreError

PROG = "featurestore"
USAGE_EXIT = 2
RUNTIME_EXIT = 1
# ``validate`` ran and the data failed an Error-level constraint: not a usage mistake (2), not a crash (1)
VALIDATION_FAILED_EXIT = 3


class UsageError(Exception):
    """The command line is wrong (an unknown option, a missing argument, a bad value): exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose mistakes raise :class:`UsageError` instead of printing the usage block
    and exiting, so that ``main`` reports them as one line like every other failure."""

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` naming the subcommand (``serve: argument --port: ...``)."""
        command = self.prog[len(PROG):].strip()
        hint = f" (see '{self.prog} --help')"
        raise UsageError(f"{command}: {message}{hint}" if command else f"{message}{hint}")


class SubcommandParser(OneLineParser):
    """A subcommand's parser: ``--json`` and ``--debug`` are accepted after the subcommand as well as
    before it (SUPPRESS: given only here, they do not reset what was given before the subcommand)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - argparse's own signature
        super().__init__(*args, **kwargs)
        self.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                          help="print machine-readable JSON")
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="show the traceback of a failure")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def describe(exc: BaseException) -> str:
    """One line saying what failed: the feature store's own message, the registry database's answer
    (never the SQL or its parameters, which may hold values), or the first line of anything else."""
    if isinstance(exc, (FeatureStoreError, UsageError)):
        return _first_line(str(exc)) or type(exc).__name__
    try:
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        DBAPIError = SQLAlchemyError = ()  # noqa: N806
    if isinstance(exc, DBAPIError):
        return f"registry database: {_first_line(str(exc.orig)) or type(exc.orig).__name__}"
    if isinstance(exc, SQLAlchemyError):
        return f"registry database: {_first_line(str(exc).split('(Background on this error')[0])}"
    java = getattr(exc, "java_exception", None)
    if java is not None:  # a Py4JJavaError: its str() is the whole Java stack trace
        return _first_line(java.toString())
    text = _first_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

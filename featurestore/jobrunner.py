"""What every spark-submit job in ``jobs/`` shares: a log line per stage, exit code 0 or 1 with a
one-line reason, the alert webhook on failure, and the Spark session stopped at the end."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError)


class JobContext:
    """Handed to a job's body: the parsed arguments, the feature store (on first use) and ``log``."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name = name
        self.args = args
        self._fs: Any = None

    @property
    def fs(self) -> Any:
        """``featurestore.connect(--config, --feature-store)``."""
        if self._fs is None:
            import featurestore

            self._fs = featurestore.connect(getattr(self.args, "config", None),
                                            name=getattr(self.args, "feature_store", None))
            self.log("connect", f"feature store '{self._fs.name}', warehouse {self._fs.config.warehouse}")
        return self._fs

    def log(self, stage: str, message: str) -> None:
        """One log line per stage, on stderr."""
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {self.name} [{stage}] {message}", file=sys.stderr, flush=True)


def common_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--feature-store`` and ``--config``, which every job takes."""
    parser.add_argument("--feature-store", help="feature store (project) name (default: the configuration's "
                        "store, FEATURESTORE_STORE, else 'default')")
    parser.add_argument("--config", help="configuration file (default: the usual lookup, see conf/featurestore.yaml)")
    return parser


def run_job(name: str, parser: argparse.ArgumentParser, body: Callable[[JobContext], int],
            argv: list[str] | None = None) -> int:
    """Parse arguments, run ``body``; exit code 0/its result, or 1 with ``<name>: error: <reason>``."""
    from featurestore.errors import FeatureStoreError

    try:
        from pyspark.errors import PySparkException
    except ImportError:  # pragma: no cover - older pyspark
        PySparkException = Exception  # noqa: N806
    from pyspark.sql import SparkSession

    args = parser.parse_args(argv)
    ctx = JobContext(name, args)
    # A job run inside a process that already has a session (a notebook, a test) must not stop it.
    had_session = SparkSession.getActiveSession() is not None
    try:
        return body(ctx)
    except (FeatureStoreError, PySparkException, *EXPECTED_ERRORS) as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        print(f"{name}: error: {reason}", file=sys.stderr, flush=True)
        _alert_failure(ctx, reason)
        return 1
    finally:
        if ctx._fs is not None and ctx._fs._spark is not None and not had_session:
            ctx._fs._spark.stop()


def _alert_failure(ctx: JobContext, reason: str) -> None:
    """Call the alert webhook for a failed job, also when it failed before connecting."""
    from featurestore.alerts import send_alert
    from featurestore.config import load_config

    try:
        config = ctx._fs.config if ctx._fs is not None else load_config(getattr(ctx.args, "config", None))
    except Exception:  # noqa: BLE001 - a broken configuration must not hide the job's own error
        return
    send_alert(config, "job_failed", {"job": ctx.name, "reason": reason, "argv": sys.argv[1:]})

"""The one place that builds a SparkSession for the feature store.

Jobs, notebooks, tests and benchmarks call :func:`get_session`; it applies, in order,
``conf/spark-defaults.conf``, the ``spark`` section of the configuration (master, app name,
shuffle partitions, UTC session time zone, the MariaDB JDBC jar, the web UI switch) and finally
``spark.conf`` and the caller's ``conf``. On a non-local master the ``featurestore`` package is
zipped and shipped to the executors.
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.config import Config, load_config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_CONF_DIR = PACKAGE_DIR.parent / "conf"


def read_spark_defaults(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Parse a ``spark-defaults.conf`` file (``key value`` per line, ``#`` comments)."""
    p = Path(path) if path is not None else REPO_CONF_DIR / "spark-defaults.conf"
    if not p.is_file():
        return {}
    props: dict[str, str] = {}
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        props[key.strip()] = value.strip()
    return props


def package_zip(target_dir: str | os.PathLike[str] | None = None) -> Path:
    """Zip the ``featurestore`` package (Python sources only) for ``--py-files`` / ``addPyFile``."""
    target = Path(target_dir or tempfile.mkdtemp(prefix="featurestore-zip-")) / "featurestore.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(PACKAGE_DIR.rglob("*.py")):
            zf.write(f, f.relative_to(PACKAGE_DIR.parent))
    return target


def session_conf(config: Config, master: str | None = None, app_name: str | None = None,
                 conf: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The Spark properties :func:`get_session` would set, as a plain dict (for inspection)."""
    spark_cfg = config.values["spark"]
    props: dict[str, str] = dict(read_spark_defaults())
    props["spark.master"] = master or spark_cfg["master"]
    props["spark.app.name"] = app_name or spark_cfg["app_name"]
    props["spark.sql.shuffle.partitions"] = str(spark_cfg["shuffle_partitions"])
    props["spark.sql.session.timeZone"] = "UTC"
    props["spark.ui.enabled"] = "true" if spark_cfg["ui"] else "false"
    jar = spark_cfg["jdbc_jar"]
    if jar and Path(jar).is_file():
        existing = props.get("spark.jars")
        props["spark.jars"] = f"{existing},{jar}" if existing and jar not in existing else (existing or jar)
    for key, value in {**spark_cfg["conf"], **(conf or {})}.items():
        props[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return props


def get_session(
    master: str | None = None,
    app_name: str | None = None,
    conf: Mapping[str, Any] | None = None,
    config: Config | None = None,
) -> SparkSession:
    """Build (or return the running) SparkSession configured for the feature store.

    Args:
        master: Spark master URL; default ``spark.master`` from the configuration.
        app_name: application name; default ``spark.app_name``.
        conf: extra Spark properties, applied last.
        config: a loaded :class:`~featurestore.config.Config`; default :func:`load_config`.
    """
    from pyspark.sql import SparkSession

    running = SparkSession.getActiveSession()
    if running is not None:
        # Reconfiguring a running session would silently change it for its other users (a notebook,
        # a test run, a job calling library code): it is returned as it is.
        return running
    config = config or load_config()
    launched_by_spark_submit = master is None and "PYSPARK_GATEWAY_PORT" in os.environ
    # Executors must run the same interpreter (and so the same installed packages) as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    props = session_conf(config, master, app_name, conf)
    if props["spark.master"].startswith("local") or "://127.0.0.1" in props["spark.master"]:
        # Bind the driver to loopback instead of the first network interface.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if launched_by_spark_submit:
        # spark-submit's --master (and its properties file) win over the configuration file.
        props.pop("spark.master")
        if app_name is None:
            props.pop("spark.app.name")
    builder = SparkSession.builder
    for key, value in props.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    resolved_master = spark.sparkContext.master
    if not resolved_master.startswith("local") and not _package_importable_remotely(spark):
        spark.sparkContext.addPyFile(str(package_zip()))
    return spark


def _package_importable_remotely(spark: SparkSession) -> bool:
    """Whether ``--py-files`` already shipped the package (spark-submit.sh does)."""
    py_files = spark.sparkContext.getConf().get("spark.submit.pyFiles", "") or ""
    return "featurestore" in py_files

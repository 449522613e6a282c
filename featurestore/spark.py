"""The one place that builds a SparkSession for the feature store.

Jobs, notebooks, tests and benchmarks call :func:`get_session`; it applies, in order,
``conf/spark-defaults.conf``, the JVM jars of the set-up with the settings they need (see below),
the ``spark`` section of the configuration (master, app name, shuffle partitions, UTC session time
zone, the MariaDB JDBC jar, the web UI switch) and finally ``spark.conf`` and the caller's ``conf``.
On a non-local master the ``featurestore`` package is zipped and shipped to the executors.

JVM jars: ``./bootstrap.sh`` copies the artifacts that ``pom.xml`` lists (with their runtime
dependencies, without Spark's and Scala's) into the jars folder (``spark.jars_dir``, default
``jars/`` in the repository). Every jar of that folder goes into ``spark.jars`` (driver and
executors), and the session settings follow from the artifacts: Apache Hudi's bundle brings the Kryo
serializer with Hudi's registrator, Hudi's session extension and catalog; delta-spark brings Delta's
session extension (and Delta's catalog when Hudi's is not there: only one catalog can be
``spark_catalog``). A jar that is missing is a :class:`~featurestore.errors.ServiceError` naming it
and ``./bootstrap.sh``, raised before the JVM starts.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.config import Config, load_config
from featurestore.errors import ServiceError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PACKAGE_DIR = Path(__file__).resolve().parent
# Under spark-submit the package is imported from the --py-files zip, so its parent is no folder:
# spark-submit.sh names the repository in FEATURESTORE_HOME.
REPO_DIR = Path(os.environ.get("FEATURESTORE_HOME") or PACKAGE_DIR.parent)
REPO_CONF_DIR = REPO_DIR / "conf"
POM_PATH = REPO_DIR / "pom.xml"
DEFAULT_JARS_DIR = REPO_DIR / "jars"
SETUP_COMMAND = "./bootstrap.sh"

HUDI_EXTENSION = "org.apache.spark.sql.hudi.HoodieSparkSessionExtension"
HUDI_CATALOG = "org.apache.spark.sql.hudi.catalog.HoodieCatalog"
HUDI_KRYO_REGISTRATOR = "org.apache.spark.HoodieSparkKryoRegistrar"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
DELTA_SNAPSHOT_PARTITIONS = "spark.databricks.delta.snapshotPartitions"
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
KRYO_SERIALIZER = "org.apache.spark.serializer.KryoSerializer"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


@dataclass(frozen=True)
class JvmArtifact:
    """One Maven artifact of the set-up (a ``<dependency>`` of ``pom.xml``)."""

    group_id: str
    artifact_id: str
    version: str

    @property
    def coordinate(self) -> str:
        """``group:artifact:version``, as ``--packages`` takes it."""
        return f"{self.group_id}:{self.artifact_id}:{self.version}"

    @property
    def jar_name(self) -> str:
        """The file name Maven's ``copy-dependencies`` gives its jar."""
        return f"{self.artifact_id}-{self.version}.jar"

    @property
    def is_hudi_bundle(self) -> bool:
        """Apache Hudi's Spark bundle (``hudi-spark<version>-bundle_<scala>``)."""
        return self.group_id == "org.apache.hudi" and re.fullmatch(r"hudi-spark[\d.]*-bundle_[\d.]+",
                                                                   self.artifact_id) is not None

    @property
    def is_delta_spark(self) -> bool:
        """Delta Lake's Spark artifact (``delta-spark_<spark>_<scala>``)."""
        return self.group_id == "io.delta" and self.artifact_id.startswith("delta-spark_")


def pom_artifacts(pom: str | os.PathLike[str] = POM_PATH) -> list[JvmArtifact]:
    """The artifacts ``pom.xml`` lists as its direct dependencies (not ``dependencyManagement``)."""
    path = Path(pom)
    if not path.is_file():
        raise ServiceError(f"{path} not found: the JVM jars are set up from the repository's pom.xml "
                           f"by {SETUP_COMMAND}")
    root = ElementTree.parse(path).getroot()
    artifacts = []
    for dep in root.findall("m:dependencies/m:dependency", _POM_NS):
        fields = [(dep.findtext(f"m:{name}", default="", namespaces=_POM_NS) or "").strip()
                  for name in ("groupId", "artifactId", "version")]
        if not all(fields) or "${" in "".join(fields):
            raise ServiceError(f"{path}: every dependency needs a literal groupId, artifactId and version, "
                               f"got {':'.join(fields)}")
        artifacts.append(JvmArtifact(*fields))
    return artifacts


def jars_dir(config: Config | None = None) -> Path:
    """The folder of the JVM jars: ``spark.jars_dir``, else ``jars/`` in the repository."""
    configured = (config or load_config()).values["spark"].get("jars_dir")
    return Path(configured) if configured else DEFAULT_JARS_DIR


def check_jars(folder: str | os.PathLike[str], artifacts: Sequence[JvmArtifact] | None = None) -> list[Path]:
    """Every jar of ``folder``, after checking that each artifact of the set-up has its jar there.

    Raises :class:`~featurestore.errors.ServiceError` naming the folder, every missing artifact and
    the set-up command. Starts no JVM (so a missing jar never becomes a JVM stack trace).
    """
    artifacts = pom_artifacts() if artifacts is None else list(artifacts)
    path = Path(folder)
    if not path.is_dir():
        names = ", ".join(a.coordinate for a in artifacts) or "none"
        raise ServiceError(f"JVM jars folder {path} does not exist (it should hold {names}); "
                           f"run {SETUP_COMMAND} to fetch the jars")
    missing = [a for a in artifacts if not (path / a.jar_name).is_file()]
    if missing:
        names = ", ".join(f"{a.coordinate} ({a.jar_name})" for a in missing)
        raise ServiceError(f"JVM jars missing from {path}: {names}; run {SETUP_COMMAND} to fetch them")
    return sorted(p for p in path.glob("*.jar") if p.is_file())


def jvm_session_conf(artifacts: Sequence[JvmArtifact]) -> dict[str, str]:
    """The Spark settings the artifacts of the set-up need in every session and job."""
    props: dict[str, str] = {}
    extensions: list[str] = []
    has_hudi = any(a.is_hudi_bundle for a in artifacts)
    has_delta = any(a.is_delta_spark for a in artifacts)
    if has_hudi:
        props["spark.serializer"] = KRYO_SERIALIZER
        props["spark.kryo.registrator"] = HUDI_KRYO_REGISTRATOR
        extensions.append(HUDI_EXTENSION)
        props["spark.sql.catalog.spark_catalog"] = HUDI_CATALOG
        # Hudi 1.2 on Spark 4.1: pushing VARIANT extraction into the scan breaks merge-on-read reads.
        props["spark.sql.variant.pushVariantIntoScan"] = "false"
    if has_delta:
        extensions.append(DELTA_EXTENSION)
        if not has_hudi:
            props["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
    if extensions:
        props["spark.sql.extensions"] = ",".join(extensions)
    return props


def _is_jdbc_connector(jar: Path) -> bool:
    return jar.name.startswith("mariadb-java-client-")


def session_jars(config: Config, artifacts: Sequence[JvmArtifact] | None = None) -> list[str]:
    """The jars a session puts on the classpath: the jars folder's, with ``spark.jdbc_jar`` (when set)
    in place of the folder's MariaDB Connector/J. Raises ServiceError when the folder is incomplete."""
    jars = check_jars(jars_dir(config), artifacts)
    jdbc_jar = config.values["spark"].get("jdbc_jar")
    if jdbc_jar:
        if not Path(jdbc_jar).is_file():
            raise ServiceError(f"spark.jdbc_jar {jdbc_jar} does not exist; set it to a MariaDB Connector/J "
                               f"jar, or to null for the one {SETUP_COMMAND} fetches")
        jars = [j for j in jars if not _is_jdbc_connector(j)] + [Path(jdbc_jar)]
    return [str(j) for j in jars]


def submit_args(config: Config | None = None) -> list[str]:
    """The spark-submit options for the JVM jars: ``--jars`` and one ``--conf`` per setting.

    ``./spark-submit.sh`` passes them (the driver's classpath is fixed when spark-submit starts it).
    """
    config = config or load_config()
    artifacts = pom_artifacts()
    args = ["--jars", ",".join(session_jars(config, artifacts))]
    for key, value in jvm_session_conf(artifacts).items():
        args += ["--conf", f"{key}={value}"]
    return args


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
    """The Spark properties :func:`get_session` would set, as a plain dict (for inspection).

    Raises :class:`~featurestore.errors.ServiceError` when a jar of the set-up is missing.
    """
    spark_cfg = config.values["spark"]
    props: dict[str, str] = dict(read_spark_defaults())
    props["spark.master"] = master or spark_cfg["master"]
    props["spark.app.name"] = app_name or spark_cfg["app_name"]
    props["spark.sql.shuffle.partitions"] = str(spark_cfg["shuffle_partitions"])
    props["spark.sql.session.timeZone"] = "UTC"
    props["spark.ui.enabled"] = "true" if spark_cfg["ui"] else "false"
    artifacts = pom_artifacts()
    props.update(jvm_session_conf(artifacts))
    jars = [j for j in props.get("spark.jars", "").split(",") if j]
    props["spark.jars"] = ",".join(jars + [j for j in session_jars(config, artifacts) if j not in jars])
    if (props["spark.master"].startswith("local") and DELTA_SNAPSHOT_PARTITIONS not in props
            and any(a.is_delta_spark for a in artifacts)):
        # Delta rebuilds a table's state from its log with spark.databricks.delta.snapshotPartitions tasks
        # (50 by default, sized for clusters); on a local session that fixed cost dominated every small
        # MERGE and read (8 s against 1.8 s per 1,000-row MERGE on 2 cores). spark.conf or spark-defaults win.
        props[DELTA_SNAPSHOT_PARTITIONS] = props["spark.sql.shuffle.partitions"]
    if props["spark.master"].startswith("local") and LISTING_PARALLELISM not in props:
        # VACUUM lists a table's files with this many tasks (Spark's default, 10,000): on a local session
        # that took 80 s for a table of a few files. (Spark's own partition discovery uses it the same way.)
        props[LISTING_PARALLELISM] = props["spark.sql.shuffle.partitions"]
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
    # Checked (and ServiceError raised) before anything starts a JVM.
    props = session_conf(config, master, app_name, conf)
    # pydeequ picks its Deequ build from this variable at import time.
    from pyspark import __version__ as pyspark_version

    os.environ.setdefault("SPARK_VERSION", ".".join(pyspark_version.split(".")[:2]))
    launched_by_spark_submit = master is None and "PYSPARK_GATEWAY_PORT" in os.environ
    # Executors must run the same interpreter (and so the same installed packages) as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
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

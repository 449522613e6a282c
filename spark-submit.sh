#!/usr/bin/env bash
# Submit a feature-store job: the venv's spark-submit, the featurestore package zipped into
# --py-files, every JVM jar of the jars folder (jars/, filled by ./bootstrap.sh from pom.xml) in
# --jars with the session settings those jars need (Hudi's Kryo registrator, session extensions,
# catalog), conf/spark-defaults.conf, conf/log4j2.properties for the driver, then your arguments.
#   ./spark-submit.sh [spark-submit options] jobs/<job>.py [job arguments]
# --master comes from the arguments, else $SPARK_MASTER, else local[*].
# The driver logs at WARN; FEATURESTORE_LOG_LEVEL=INFO (or DEBUG, ERROR) sets another level. Passing
# your own --driver-java-options or spark.driver.extraJavaOptions leaves the logging to you.
# A missing jar stops here, before any JVM starts, with the missing artifact and ./bootstrap.sh named.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
# Where featurestore.spark finds pom.xml, jars/ and conf/ (the driver imports the package from a zip).
export FEATURESTORE_HOME="$ROOT"
if [ ! -x "$VENV/bin/spark-submit" ]; then
  echo "spark-submit.sh: $VENV/bin/spark-submit not found; run ./bootstrap.sh first" >&2
  exit 2
fi

# Does the caller choose the master, or the driver's Java options (before the application file)?
has_master=0
has_driver_java_options=0
for arg in "$@"; do
  case "$arg" in
    --master|--master=*) has_master=1 ;;
    --driver-java-options|--driver-java-options=*|spark.driver.extraJavaOptions=*) has_driver_java_options=1 ;;
    *.py) break ;;
  esac
done
master_args=()
[ "$has_master" = 1 ] || master_args=(--master "${SPARK_MASTER:-local[*]}")
# A local or loopback master: keep the driver on loopback rather than the first network interface.
case " $* ${master_args[*]} " in
  *local*|*spark://127.0.0.1*|*spark://localhost*) export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}" ;;
esac
log_args=()
if [ "$has_driver_java_options" = 0 ]; then
  log_args=(--driver-java-options
    "-Dlog4j2.configurationFile=file:$ROOT/conf/log4j2.properties -Dfeaturestore.log.level=${FEATURESTORE_LOG_LEVEL:-WARN}")
fi

build_dir="$(mktemp -d "${TMPDIR:-/tmp}/featurestore-submit.XXXXXX")"
trap 'rm -rf "$build_dir"' EXIT
# The package zip, and the --jars/--conf options of the JVM jars (NUL-separated); a missing jar is a
# ServiceError printed here.
"$VENV/bin/python" - "$build_dir" <<'PY' || exit 2
import sys
from pathlib import Path

from featurestore.errors import FeatureStoreError
from featurestore.spark import package_zip, submit_args

try:
    args = submit_args()
except FeatureStoreError as exc:
    sys.exit(f"spark-submit.sh: {exc}")
package_zip(sys.argv[1])
Path(sys.argv[1], "jvm-args").write_bytes(b"".join(a.encode() + b"\0" for a in args))
PY
mapfile -d '' jvm_args < "$build_dir/jvm-args"

export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$VENV/bin/python}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$VENV/bin/python}"
export PATH="$VENV/bin:$PATH"
# Not exec: the trap must remove the temporary zip after the job ends.
"$VENV/bin/spark-submit" "${master_args[@]}" \
  --properties-file "$ROOT/conf/spark-defaults.conf" \
  "${jvm_args[@]}" "${log_args[@]}" --py-files "$build_dir/featurestore.zip" "$@"

#!/usr/bin/env bash
# Submit a feature-store job: the venv's spark-submit, the featurestore package zipped into
# --py-files, the MariaDB JDBC jar in --jars, conf/spark-defaults.conf, then your arguments.
#   ./spark-submit.sh [spark-submit options] jobs/<job>.py [job arguments]
# --master comes from the arguments, else $SPARK_MASTER, else local[*].
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/spark-submit" ]; then
  echo "spark-submit.sh: $VENV/bin/spark-submit not found; run ./bootstrap.sh first" >&2
  exit 2
fi
JDBC_JAR="${FEATURESTORE_SPARK_JDBC_JAR:-/usr/share/java/mariadb-java-client.jar}"

# Does the caller choose the master (before the application file)?
has_master=0
for arg in "$@"; do
  case "$arg" in
    --master|--master=*) has_master=1 ;;
    *.py) break ;;
  esac
done
master_args=()
[ "$has_master" = 1 ] || master_args=(--master "${SPARK_MASTER:-local[*]}")
# A local or loopback master: keep the driver on loopback rather than the first network interface.
case " $* ${master_args[*]} " in
  *local*|*spark://127.0.0.1*|*spark://localhost*) export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}" ;;
esac

build_dir="$(mktemp -d "${TMPDIR:-/tmp}/featurestore-submit.XXXXXX")"
trap 'rm -rf "$build_dir"' EXIT
"$VENV/bin/python" -c "import sys; from featurestore.spark import package_zip; print(package_zip(sys.argv[1]))" \
  "$build_dir" >/dev/null

jar_args=()
[ -f "$JDBC_JAR" ] && jar_args=(--jars "$JDBC_JAR")

export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$VENV/bin/python}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$VENV/bin/python}"
export PATH="$VENV/bin:$PATH"
# Not exec: the trap must remove the temporary zip after the job ends.
"$VENV/bin/spark-submit" "${master_args[@]}" \
  --properties-file "$ROOT/conf/spark-defaults.conf" \
  "${jar_args[@]}" --py-files "$build_dir/featurestore.zip" "$@"

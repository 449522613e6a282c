#!/usr/bin/env bash
# Set-up command: installs everything this project needs on a fresh Debian machine (run as root).
# Idempotent: packages already present are not reinstalled; an existing .venv is reused.
#   - Debian packages: mariadb-server, mariadb-client, maven (fetches the JVM jars),
#     libmariadb-dev + gcc (MariaDB Connector/Python, the C client the online store serves with, is built
#     from its source distribution against them),
#     chromium (headless, renders the statistics report in the tests),
#     a Java 17 runtime and Python 3.11 with venv, when missing;
#   - .venv/ at the repository root with the package installed editable and every dependency
#     pinned by constraints.txt (pydeequ, delta-spark and deltalake included);
#   - reference/setup.sh: .venv-reference/ (pyspark 3.5.5) and reference/jars/ (Apache Hudi 1.2.0's
#     Spark 3.5 bundle, Deequ for Spark 3.5): the tests' oracle for our Hudi engine and quality engine;
#   - jars/ (or $FEATURESTORE_SPARK_JARS_DIR): the JVM jars pom.xml lists, with their runtime
#     dependencies but without the ones pyspark ships, fetched with Maven from Maven Central
#     (Apache Hudi's Spark bundle, Delta Lake, MariaDB Connector/J, ...). Skipped when the folder
#     already holds the jars of this pom.xml; otherwise rebuilt in a temporary folder and swapped in.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

need=()
for pkg in mariadb-server mariadb-client maven libmariadb-dev gcc chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
PY="$(command -v python3.11 || true)"
if [ -z "$PY" ]; then need+=(python3 python3-venv); fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "bootstrap: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
PY="$(command -v python3.11 || command -v python3)"
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "bootstrap: Python 3.11 is required, found $("$PY" --version)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $PY"
  "$PY" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q "pip==$(sed -n 's/^pip==//p' constraints.txt)"
echo "bootstrap: installing the package (editable) with pinned dependencies"
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,mariadb,jvm]"
.venv/bin/python -c "import featurestore, pyspark, hudi, mariadb, delta, deltalake; print('bootstrap: featurestore', featurestore.__version__, '| pyspark', pyspark.__version__, '| hudi', hudi.__version__, '| mariadb', mariadb.__version__, '| deltalake', deltalake.__version__)"

# JVM jars. The stamp holds the digest of the pom.xml (and pyspark) the folder was filled from.
JARS_DIR="${FEATURESTORE_SPARK_JARS_DIR:-$ROOT/jars}"
PYSPARK_JARS="$(.venv/bin/python -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
want="$(cat pom.xml <(ls "$PYSPARK_JARS") | sha256sum | cut -d' ' -f1)"
check_jars() {
  .venv/bin/python -c "import sys; from featurestore.spark import check_jars; check_jars(sys.argv[1])" "$JARS_DIR"
}
if [ "$(cat "$JARS_DIR/.pom.sha256" 2>/dev/null)" = "$want" ] && check_jars 2>/dev/null; then
  echo "bootstrap: JVM jars in $JARS_DIR are current"
else
  echo "bootstrap: fetching the JVM jars of pom.xml into $JARS_DIR (Maven)"
  # Leave out every artifact pyspark already ships (by artifactId, version stripped from the file name).
  pyspark_artifacts="$(ls "$PYSPARK_JARS" | sed -n -E 's/-[0-9][^-]*(-.*)?\.jar$//p' | sort -u | paste -sd, -)"
  staging="$(mktemp -d "$(dirname "$JARS_DIR")/.jars-staging.XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  mvn -q -B -f "$ROOT/pom.xml" dependency:copy-dependencies \
    -Djars.dir="$staging/jars" -Dpyspark.artifacts="$pyspark_artifacts"
  echo "$want" > "$staging/jars/.pom.sha256"
  # Swap the complete folder in: a failed fetch leaves the previous folder as it was.
  rm -rf "$JARS_DIR"
  mv "$staging/jars" "$JARS_DIR"
  check_jars
  echo "bootstrap: $(ls "$JARS_DIR"/*.jar | wc -l) jars in $JARS_DIR"
fi
# The reference JVM of the tests: Apache Hudi's own writer and Deequ on Spark 3.5 (see reference/pom.xml)
./reference/setup.sh
.venv/bin/featurestore --help >/dev/null
echo "bootstrap: done. Run the tests with ./run-tests.sh"

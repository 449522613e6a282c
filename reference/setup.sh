#!/usr/bin/env bash
# Part of the set-up command (./bootstrap.sh calls it): the reference JVM of the tests.
#   - .venv-reference/ at the repository root: pyspark 3.5.5 and pydeequ, pinned by
#     reference/constraints.txt (a separate environment: the project's own .venv has pyspark 4.1.4);
#   - reference/jars/: Apache Hudi's Spark 3.5 bundle and Deequ for Spark 3.5 (reference/pom.xml),
#     fetched with Maven from Maven Central.
# Idempotent: an environment and jars that are already there are kept.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
if [ ! -x .venv-reference/bin/python ]; then
  echo "reference: creating .venv-reference (pyspark 3.5 for the reference JVM)"
  "$PYTHON" -m venv .venv-reference
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! .venv-reference/bin/python -c "import pyspark, pydeequ, sys; sys.exit(pyspark.__version__ != '3.5.5')" 2>/dev/null; then
  .venv-reference/bin/python -m pip install -q -c reference/constraints.txt pyspark pydeequ
fi
want="$(sha256sum reference/pom.xml | cut -d' ' -f1)"
if [ "$(cat reference/jars/.pom.sha256 2>/dev/null)" != "$want" ]; then
  echo "reference: fetching the jars of reference/pom.xml (Maven)"
  staging="$(mktemp -d reference/.jars-staging.XXXXXX)"
  trap 'rm -rf "$staging"' EXIT
  mvn -q -B -f reference/pom.xml dependency:copy-dependencies -Djars.dir="$ROOT/$staging/jars"
  echo "$want" > "$staging/jars/.pom.sha256"
  rm -rf reference/jars
  mv "$staging/jars" reference/jars
fi
echo "reference: $(.venv-reference/bin/python -c 'import pyspark; print("pyspark", pyspark.__version__)'), jars: $(ls reference/jars/*.jar | xargs -n1 basename | tr '\n' ' ')"

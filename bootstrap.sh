#!/usr/bin/env bash
# Set-up command: installs everything this project needs on a fresh Debian machine (run as root).
# Idempotent: packages already present are not reinstalled; an existing .venv is reused.
#   - Debian packages: mariadb-server, mariadb-client, libmariadb-java (MariaDB Connector/J),
#     libmariadb-dev + gcc (MariaDB Connector/Python, the C client the online store serves with, is built
#     from its source distribution against them),
#     chromium (headless, renders the statistics report in the tests),
#     a Java 17 runtime and Python 3.11 with venv, when missing;
#   - .venv/ at the repository root with the package installed editable and every dependency
#     pinned by constraints.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

need=()
for pkg in mariadb-server mariadb-client libmariadb-java libmariadb-dev gcc chromium; do
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
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,mariadb]"
.venv/bin/python -c "import featurestore, pyspark, hudi, mariadb; print('bootstrap: featurestore', featurestore.__version__, '| pyspark', pyspark.__version__, '| hudi', hudi.__version__, '| mariadb', mariadb.__version__)"
.venv/bin/featurestore --help >/dev/null
echo "bootstrap: done. Run the tests with ./run-tests.sh"

#!/usr/bin/env bash
# make e2e: the provider on a real Airflow deployment (docs/development.md, "Testing on a real Airflow deployment").
#
# 1. Installs what the deployment needs and the machine may lack: PostgreSQL (the metadata database)
#    and Redis (the Celery broker) with apt-get - this needs root -, and the Python drivers
#    (tests/e2e/requirements.txt) into .venv.
# 2. Runs tests/e2e with ARR_E2E=1: a throwaway PostgreSQL cluster, the emulator, and Airflow's
#    api-server, scheduler, dag-processor and triggerer as separate processes, once with the
#    LocalExecutor and once with the CeleryExecutor (plus a Celery worker and Redis). Everything it
#    starts it stops, whatever happens. On the LocalExecutor deployment a browser test drives Airflow's
#    UI in Debian's Chromium (installed here with apt-get when missing; Playwright, the driver, comes
#    with .venv's test extras); its screenshots go to <temp dir>/screenshots.
# 3. The crash suite (tests/e2e/test_crash.py, LocalExecutor deployment of its own, about 5 minutes):
#    SIGKILLs tasks, supervisors and the scheduler, and clears tasks, mid-session on both API
#    dialects, and prints a table of sessions created / left running / alive at once per scenario.
#    Alone: ARR_E2E_EXECUTORS=local bash scripts/e2e.sh -k crash; ARR_E2E_CRASH=0 leaves it out.
#
# `scripts/e2e.sh --bench-billed [args]` (make bench-billed) runs tests/e2e/bench_billed_idle.py on the
# same kind of deployment instead of the tests.
#
# Environment: ARR_E2E_EXECUTORS=local (or celery) runs one variant only; ARR_E2E_KEEP=1 keeps the
# temporary directory (Airflow home, component and task logs) and prints its path. Extra arguments go
# to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
started=$(date +%s)
executors=",${ARR_E2E_EXECUTORS:-local,celery},"

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || missing+=(postgresql)
if [[ $executors == *,celery,* ]] && ! command -v redis-server >/dev/null; then
    missing+=(redis-server)
fi
# The browser test (tests/e2e/test_ui_browser.py, LocalExecutor deployment) drives Debian's Chromium,
# headless; a font makes its screenshots legible. ARR_E2E_CHROMIUM names another Chromium binary.
if [[ $executors == *,local,* && -z ${ARR_E2E_CHROMIUM:-} ]] && ! command -v chromium >/dev/null; then
    missing+=(chromium fonts-liberation)
fi
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "make e2e: ${missing[*]} missing; run as root (it installs them with apt-get) or install them first" >&2
        exit 1
    fi
    echo "::: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The packages may start their default services (where the init system lets them): the test runs
    # its own servers on free ports, so stop what the install just started.
    if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_lsclusters >/dev/null; then
        pg_lsclusters --no-header | while read -r version cluster _port status _rest; do
            if [[ $status == online* ]]; then pg_ctlcluster "$version" "$cluster" stop || true; fi
        done
    fi
    if [[ " ${missing[*]} " == *" redis-server "* ]] && service redis-server status >/dev/null 2>&1; then
        service redis-server stop || true
    fi
fi

echo "::: install the PostgreSQL drivers and the Celery provider into .venv"
"$BIN/uv" pip install --quiet --python "$BIN/python" -c constraints.txt -r tests/e2e/requirements.txt

if [[ ${1:-} == --bench-billed ]]; then  # make bench-billed: the same deployment, a benchmark instead
    shift
    echo "::: tests/e2e/bench_billed_idle.py $*"
    ARR_E2E=1 exec "$BIN/python" tests/e2e/bench_billed_idle.py "$@"
fi

echo "::: pytest tests/e2e (executors: ${ARR_E2E_EXECUTORS:-local,celery})"
status=0
ARR_E2E=1 "$BIN/python" -m pytest tests/e2e -v -s -p no:cacheprovider "$@" || status=$?
echo "::: make e2e: $(($(date +%s) - started)) s wall time, pytest exit status $status"
exit $status

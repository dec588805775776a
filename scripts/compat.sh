#!/usr/bin/env bash
# The provider on an older Airflow minor (issue 21): build its own virtualenv, then run the unit suite
# (tests/unit), the dag.test suite (tests/airflow) and the demo (scripts/demo.py, what `make demo` runs),
# one after the other, and print each one's wall time.
#
#   scripts/compat.sh 3.1        # or 3.2, 3.3
#   scripts/compat.sh 3.1 3.2    # several minors at once, in parallel (what `make compat` and CI run):
#                                # each one's output goes to .compat/<minor>.log, printed when all end
#
# Airflow publishes no constraints file for these combinations, so each minor's newest patch is resolved
# with `uv pip install --exclude-newer <its release date>`: the dependencies as they were on that day.
# Two packages are newer than that on purpose: apache-airflow-providers-common-compat (>= 1.23, which the
# hook needs; released 2026-10) and the test runners of the `test` extra. 3.3 uses constraints.txt, as
# `make venv` does. The virtualenv is .venv-af<minor without the dot> (.venv-af31), reused when present.
# Needs .venv (`make venv`) for uv. Exit status: non-zero if any of the three failed.
set -uo pipefail
cd "$(dirname "$0")/.."

if (($# > 1)); then
    # The suites of two minors share the machine's two cores better than they run one after the other:
    # most of a dag.test run is one process working while another waits for it.
    mkdir -p .compat
    began=$(date +%s)
    pids=()
    for minor in "$@"; do
        bash "$0" "$minor" >".compat/$minor.log" 2>&1 &
        pids+=($!)
    done
    status=0
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || status=1
    done
    for minor in "$@"; do
        echo "===== Airflow $minor (.compat/$minor.log, last 60 lines) ====="
        tail -n 60 ".compat/$minor.log"
    done
    echo "All minors ($*) in parallel: $(($(date +%s) - began)) s wall time, exit status $status"
    exit $status
fi

minor="${1:-}"
case "$minor" in
    3.1) version=3.1.8 resolved_on=2026-03-15 ;;
    3.2) version=3.2.2 resolved_on=2026-07-15 ;;
    3.3) version=3.3.2 resolved_on="" ;;
    *)
        echo "usage: $0 3.1|3.2|3.3" >&2
        exit 2
        ;;
esac
uv=.venv/bin/uv
if [[ ! -x $uv ]]; then
    echo "$uv is missing: run 'make venv' first" >&2
    exit 2
fi
venv=".venv-af${minor/./}"
compat_date=2026-10-31 # apache-airflow-providers-common-compat 1.23.0 was out by then

started=$(date +%s)
if [[ ! -x $venv/bin/python ]]; then
    $uv venv --quiet --python .venv/bin/python "$venv" || exit 1
fi
if [[ -n $resolved_on ]]; then
    pins=(--exclude-newer "$resolved_on"
        --exclude-newer-package "apache-airflow-providers-common-compat=$compat_date")
else
    pins=(-c constraints.txt)
fi
echo "== Airflow $version in $venv (dependencies: ${resolved_on:+as of }${resolved_on:-constraints.txt})"
if ! $uv pip install --quiet --python "$venv/bin/python" "${pins[@]}" "apache-airflow==$version" -e ".[test]"; then
    echo "Airflow $version: the install failed" >&2
    exit 1
fi
summary=("install: $(($(date +%s) - started)) s")

failed=0
step() { # step NAME COMMAND...: run it, note its outcome and wall time
    local name=$1 begun=$(date +%s) outcome=passed
    shift
    echo "== Airflow $version: $name: $*"
    "$@" || { outcome=FAILED; failed=1; }
    summary+=("$name: $outcome in $(($(date +%s) - begun)) s")
}
step unit "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit
step dag.test "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/airflow
step demo "$venv/bin/python" scripts/demo.py

echo
echo "Airflow $version ($venv), $(date -u +%Y-%m-%d):"
printf '  %s\n' "${summary[@]}"
exit $failed

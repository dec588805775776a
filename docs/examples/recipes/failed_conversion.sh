#!/usr/bin/env bash
# Fail a conversion on purpose, from the command line. Run it in your project's folder (the one with
# dags/my_conversion.py), once Airflow's database exists (airflow db migrate).
set -euo pipefail
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"

# 1. The emulator, in the background: every conversion of a model under broken/ ends Failed with this
#    message, after its one-second conversion delay. --port 0 picks a free port.
arr-emulator --port 0 --conversion-delay 1 \
  --fail-conversion 'broken/*:The model has no geometry.' > emulator.log 2>&1 &
EMULATOR=$!
trap 'kill "$EMULATOR"' EXIT
until grep -q '^export AIRFLOW_CONN_ARR_DEFAULT=' emulator.log; do
  kill -0 "$EMULATOR" || { cat emulator.log; exit 1; }  # it stopped: say why
  sleep 0.2
done

# 2. The connection to it, as its banner prints it, and its URL.
eval "$(grep '^export AIRFLOW_CONN_ARR_DEFAULT=' emulator.log)"
URL=$(sed -n 's/^ARR_EMULATOR_URL=//p' emulator.log)

# 3. A model that converts: the run succeeds.
airflow dags test my_conversion -c '{"input_asset_path": "chairs/chair.fbx"}'

# 4. A model under broken/: the convert task fails at once, without retries, with the service's
#    message; `airflow dags test` then exits with "DagRun failed".
if airflow dags test my_conversion -c '{"input_asset_path": "broken/chair.fbx"}'; then
  echo "the run should have failed" >&2
  exit 1
fi

# 5. What the emulator did: one conversion Succeeded, one Failed with the message.
curl -s "$URL/_emulator/conversions"
echo

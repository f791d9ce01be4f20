#!/usr/bin/env bash
# `make demo`: from a fresh clone, everything the kit does once: set up, start the real stack on loopback, seed
# the fake users, find the largest HTTP load it serves without error, then the largest MQTT device fleet the
# broker serves, print the verdicts, stop the stack.
set -euo pipefail
cd "$(dirname "$0")/.."

# Seconds each search may take (HTTP, MQTT), and how many fake users to seed (the locustfile picks among them).
DEMO_TIME_LIMIT="${DEMO_TIME_LIMIT:-600}"
DEMO_MQTT_TIME_LIMIT="$DEMO_MQTT_TIME_LIMIT"
DEMO_FAKE_USERS="${DEMO_FAKE_USERS:-10000}"

say() { printf '\ndemo: %s\n' "$*"; }
stack() { PYTHONPATH=scripts .venv/bin/python -m lampi_stack "$@"; }

bash scripts/setup.sh

# On two or more cores, the server gets core 0 and Locust core 1, so neither steals the other's CPU time.
if [ "$(nproc)" -ge 2 ]; then
    export LAMPI_SERVER_CPUS="${LAMPI_SERVER_CPUS:-0}" LAMPI_LOADGEN_CPUS="${LAMPI_LOADGEN_CPUS:-1}"
fi

say "starting the stack (make up)"
stack up
trap 'say "stopping the stack (make down)"; stack down' EXIT

say "seeding $DEMO_FAKE_USERS fake users (only what is missing; hashing dominates the first time)"
stack manage loadtestingdata --count "$DEMO_FAKE_USERS"

say "searching for the largest HTTP load served without error (at most ${DEMO_TIME_LIMIT}s)"
(cd loadtesting && ../.venv/bin/python -m lampi_load.runs.http \
    --host "http://127.0.0.1:${LAMPI_HTTP_PORT:-8080}" --time-limit "$DEMO_TIME_LIMIT" --name demo-http \
    -- --fake-users "$DEMO_FAKE_USERS")
http_report=$(ls -td "${LAMPI_RESULTS_DIR:-loadtesting/output}"/*-demo-http | head -n 1)/report.md

say "searching for the largest LAMPI device fleet the broker serves without error (at most ${DEMO_MQTT_TIME_LIMIT}s)"
(cd loadtesting && ../.venv/bin/python -m lampi_load.runs.mqtt \
    --host "mqtt://127.0.0.1:${LAMPI_MQTT_PORT:-1883}" --time-limit "$DEMO_MQTT_TIME_LIMIT" --name demo-mqtt)
mqtt_report=$(ls -td "${LAMPI_RESULTS_DIR:-loadtesting/output}"/*-demo-mqtt | head -n 1)/report.md

say "HTTP verdict ($http_report):"
sed -n '3,6p' "$http_report"
say "MQTT verdict ($mqtt_report):"
sed -n '3,6p' "$mqtt_report"

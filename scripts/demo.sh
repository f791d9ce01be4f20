#!/usr/bin/env bash
# `make demo`: from a fresh clone, everything the kit does once: set up, start the real stack on loopback, seed
# the fake users, find the largest HTTP load it serves without error, then the largest LAMPI device fleet the
# broker serves, print both verdicts, stop the stack. Ctrl-C stops the stack too; a re-run goes on from there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\ndemo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 2; }
stack() { PYTHONPATH=scripts .venv/bin/python -m lampi_stack "$@"; }

# The demo's size. full (the default): 10,000 fake users, at most 10 minutes for the HTTP search and 5 for the
# MQTT search, about 17 minutes from a fresh clone. smoke: the same steps at a size that only shows each one
# works (200 users, 45 s per search, about 3 minutes). Each DEMO_* below overrides one figure of the scale.
DEMO_SCALE="${DEMO_SCALE:-full}"
case "$DEMO_SCALE" in
    full) scale_users=10000 scale_http=600 scale_mqtt=300 ;;
    smoke) scale_users=200 scale_http=45 scale_mqtt=45 ;;
    *) die "DEMO_SCALE must be full or smoke, not '$DEMO_SCALE'" ;;
esac
# Seconds the HTTP search may take.
DEMO_TIME_LIMIT="${DEMO_TIME_LIMIT:-$scale_http}"
# Seconds the MQTT search may take.
DEMO_MQTT_TIME_LIMIT="${DEMO_MQTT_TIME_LIMIT:-$scale_mqtt}"
# Fake users to seed; the HTTP load test signs in as random ones among them.
DEMO_FAKE_USERS="${DEMO_FAKE_USERS:-$scale_users}"
for name in DEMO_TIME_LIMIT DEMO_MQTT_TIME_LIMIT DEMO_FAKE_USERS; do
    [[ "${!name}" =~ ^[1-9][0-9]{0,6}$ ]] || die "$name must be a whole number from 1 to 9999999, not '${!name}'"
done

bash scripts/setup.sh

# On two or more cores, the server gets core 0 and Locust core 1, so neither steals the other's CPU time.
if [ "$(nproc)" -ge 2 ]; then
    export LAMPI_SERVER_CPUS="${LAMPI_SERVER_CPUS:-0}" LAMPI_LOADGEN_CPUS="${LAMPI_LOADGEN_CPUS:-1}"
fi

say "starting the stack (make up)"
started=$(stack up) || { printf '%s\n' "$started"; exit 1; }
printf '%s\n' "$started"
case "$started" in
    "up: the stack already runs"*) say "the stack was already running: the demo leaves it running" ;;
    *)
        # Whatever ends the demo (its end, an error, Ctrl-C), the stack it started stops.
        trap 'say "stopping the stack (make down)"; stack down' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        ;;
esac

say "seeding $DEMO_FAKE_USERS fake users (only what is missing)"
stack manage loadtestingdata --count "$DEMO_FAKE_USERS"

# Both searches' folders go in one folder of the demo's own.
results="$(realpath -m "${LAMPI_RESULTS_DIR:-loadtesting/output}")/$(date -u +%Y%m%d-%H%M%S)-demo"
say "searching for the largest HTTP load served without error (at most ${DEMO_TIME_LIMIT} s)"
(cd loadtesting && ../.venv/bin/python -m lampi_load.runs.http \
    --host "http://127.0.0.1:${LAMPI_HTTP_PORT:-8080}" --time-limit "$DEMO_TIME_LIMIT" --name http \
    --results-root "$results" -- --fake-users "$DEMO_FAKE_USERS")

say "searching for the largest LAMPI device fleet the broker serves without error (at most ${DEMO_MQTT_TIME_LIMIT} s)"
(cd loadtesting && ../.venv/bin/python -m lampi_load.runs.mqtt \
    --host "mqtt://127.0.0.1:${LAMPI_MQTT_PORT:-1883}" --time-limit "$DEMO_MQTT_TIME_LIMIT" --name mqtt \
    --results-root "$results")

say "verdicts"
(cd loadtesting && ../.venv/bin/python -m lampi_load.reports.verdicts \
    "HTTP users=$(ls -d "$results"/*-http)" "MQTT devices=$(ls -d "$results"/*-mqtt)")

#!/bin/bash
# Paired A/B: the tuned stack with uwsgi_max_requests 5000 (the role's default) and 100000, each at a fixed
# 1,000 users (10/s ramp, then held), server on CPU 0, Locust on CPU 1. Run from the repository as
# `bash loadtesting/results/20261201-161633-uwsgi-max-requests/commands.sh` with OUT unset (/tmp/ab), then the four
# r* folders were copied here. It restarts the local stack for each run, and stops it at the end.
set -e
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
for round in 1 2; do
for n in 5000 100000; do
  out=${OUT:-/tmp/ab}/r$round-$n; mkdir -p $out
  export LAMPI_PROFILE=tuned LAMPI_STACK_VARS="{\"uwsgi_max_requests\": $n}" LAMPI_DB_NAME=lampi_argon2 LAMPI_SERVER_CPUS=0
  PYTHONPATH=scripts .venv/bin/python -m lampi_stack down
  PYTHONPATH=scripts .venv/bin/python -m lampi_stack up
  PYTHONPATH=scripts .venv/bin/python -m lampi_stack manage loadtestingdata --count 1000
  start=$(wc -l < run/uwsgi.log)
  (cd loadtesting && taskset -c 1 ../.venv/bin/locust -f locustfile.py --headless -u 1000 -r 10 -t 220s --host http://127.0.0.1:8080 --csv $out/locust --csv-full-history --fake-users 1000 --only-summary > $out/locust.log 2>&1) || true
  tail -n +$start run/uwsgi.log | grep -c Respawned > $out/respawns.txt || true
  tail -n +$start run/uwsgi.log | grep "ready in" > $out/ready.txt || true
done
done
PYTHONPATH=scripts .venv/bin/python -m lampi_stack down
echo AB-DONE

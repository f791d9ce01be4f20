#!/bin/bash
# Does the tuned stack's throughput at saturation rise with the stack's age? One restart, 1,500 users (over the
# ~1,000 it serves at p95 1 s, under its error-free maximum), held 15 minutes; server on CPU 0, Locust on CPU 1.
set -e
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
out=${OUT:-/tmp/warm}; mkdir -p $out
export LAMPI_PROFILE=tuned LAMPI_STACK_VARS='{}' LAMPI_DB_NAME=lampi_argon2 LAMPI_SERVER_CPUS=0
PYTHONPATH=scripts .venv/bin/python -m lampi_stack down
PYTHONPATH=scripts .venv/bin/python -m lampi_stack up
PYTHONPATH=scripts .venv/bin/python -m lampi_stack manage loadtestingdata --count 1000
(cd loadtesting && taskset -c 1 ../.venv/bin/locust -f locustfile.py --headless -u 1500 -r 10 -t 1050s --host http://127.0.0.1:8080 --csv $out/locust --csv-full-history --fake-users 1000 --only-summary > $out/locust.log 2>&1) || true
PYTHONPATH=scripts .venv/bin/python -m lampi_stack down
echo WARM-DONE

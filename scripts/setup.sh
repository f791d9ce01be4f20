#!/usr/bin/env bash
# Installs what the project needs and is missing: Debian packages (when root with apt), uv, and the locked
# Python environment in .venv. Safe to run again: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the stack and the tests use; `command -v`-style checks keep a second run quick. The last three
# build and boot the host the playbook is tested on (ansible/tests/test_site_deploy.py).
DEB_PACKAGES=(nginx-light mosquitto mosquitto-clients sysstat chromium chromium-driver postgresql memcached
    debootstrap systemd-container openssh-client)
UV_VERSION="0.13.9"
PYTHON="${PYTHON:-python3.11}"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "missing Debian packages (${missing[*]}) and no apt-get here; install them by hand"
    [ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}); run as root or: sudo apt-get install ${missing[*]}"
    say "installing Debian packages: ${missing[*]}"
    # The project runs these servers itself, as the user, on loopback: keep apt from starting system copies.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "$created_policy" = 1 ] && rm -f "$policy"
fi

command -v "$PYTHON" >/dev/null || die "$PYTHON not found; the project needs CPython 3.11"

uv=.cache/uv/bin/uv
if ! [ -x "$uv" ] || [ "$("$uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    say "installing uv $UV_VERSION into .cache/uv"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --target .cache/uv "uv==$UV_VERSION"
fi

say "syncing .venv with uv.lock"
UV_PROJECT_ENVIRONMENT=.venv "$uv" sync --frozen --quiet --python "$PYTHON"
say "ready: $(.venv/bin/python --version), Django $(.venv/bin/python -c 'import django; print(django.get_version())')"

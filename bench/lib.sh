# Shared by the benchmark scripts (proxy.sh, purge.sh, range.sh, redis.sh): logging, installing
# missing Debian packages, the release build, free loopback ports, and stopping everything a
# script started.
# Usage: set BENCH_NAME, then `. "$ROOT/bench/lib.sh"`.

log() { printf '[%s] %s\n' "$BENCH_NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

install_missing() { # package...: installs them with apt-get (through sudo when not root)
    [ $# -gt 0 ] || return 0
    log "installing $* with apt-get"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_tools() { # command:package...: installs the packages whose command is missing (commands
    # in /usr/sbin count); then puts /usr/sbin on PATH
    local need=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
    done
    install_missing "${need[@]}"
    export PATH="$PATH:/usr/sbin:/sbin"
}

build_vanish() { # builds Vanish (release) and sets VANISH to the binary
    log "building vanish (release)"
    (cd "$ROOT" && cargo build --release -p vanish -q)
    VANISH="$ROOT/target/release/vanish"
}

bench_workdir() { # prefix: WORK becomes a fresh temporary folder; on exit, every pid in PIDS is
    # stopped (SIGTERM, then SIGKILL after 2 s) and WORK is removed.
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
NEXT_PORT=$((20000 + RANDOM % 20000))
free_port() { # VAR: sets VAR to a free loopback port (not in a subshell: NEXT_PORT advances)
    while ! port_free "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
    printf -v "$1" '%s' "$NEXT_PORT"
    NEXT_PORT=$((NEXT_PORT + 1))
}
wait_port() { # port name
    for _ in $(seq 1 100); do
        port_free "$1" || return 0
        sleep 0.1
    done
    die "$2 did not start listening on 127.0.0.1:$1${WORK:+ (logs in $WORK)}"
}

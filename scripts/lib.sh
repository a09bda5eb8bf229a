# lib.sh - shared by scripts/test and scripts/demo (sourced, not run): installing the
# Debian packages jobd needs, configuring and building, and finding the built programs.
# Checklist: a new build or test dependency goes in JOBD_PACKAGES here and nowhere else.

JOBD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBD_PACKAGES=(build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev
               libsqlite3-dev libcurl4-openssl-dev libcmocka-dev libpq-dev libjemalloc-dev python3
               sqlite3 curl postgresql)

say() { printf '==> %s\n' "$*"; }

# Install whichever of JOBD_PACKAGES is missing: as root directly, else through sudo;
# without either, say what to install and fail.
ensure_packages() {
    local missing=() p sudo=""
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "error: no dpkg-query: this script installs Debian packages; install by hand:" >&2
        echo "  ${JOBD_PACKAGES[*]}" >&2
        return 1
    fi
    for p in "${JOBD_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "error: missing packages and neither root nor sudo; as root run:" >&2
            echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
            return 1
        fi
    fi
    say "installing ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${missing[@]}"
}

# build_jobd DIR [cmake options...]: configure (once; options are re-applied) and build.
build_jobd() {
    local dir=$1
    shift
    cmake -S "$JOBD_ROOT" -B "$dir" "$@" && cmake --build "$dir" -j "$(nproc)"
}

# jobd_bin DIR NAME: path of the built program NAME in build directory DIR.
jobd_bin() {
    find "$1" -type f -name "$2" -perm -u+x -not -path '*/CMakeFiles/*' 2>/dev/null | head -n 1
}

# free_port: a TCP port of 127.0.0.1 that nothing listens on (the kernel's pick).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- a throwaway PostgreSQL for the tests -------------------------------------------------
# pg_start DIR: initdb a cluster into DIR/data as a non-root user (PostgreSQL refuses to run
# as root: the `postgres` user the package creates, else `nobody`), on a free port of
# 127.0.0.1 with its unix socket in DIR and fsync on, and wait until it answers.  Exports
#   JOBD_TEST_PG       postgresql:// URL of its `postgres` database (superuser, trust auth)
#   JOBD_TEST_PG_CTL   the pg_ctl command line for this cluster, e.g. "$JOBD_TEST_PG_CTL stop"
# The port and socket are in postgresql.conf, so plain `pg_ctl start` after a stop comes
# back on the same address (the restart test does exactly that).  pg_stop DIR undoes it.
pg_start() {
    local dir=$1 bin user="" as=() port
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "pg_start: no PostgreSQL server binaries (install the postgresql package)" >&2
        return 1
    fi
    mkdir -p "$dir" || return 1
    if [ "$(id -u)" -eq 0 ]; then
        user=postgres
        id -u "$user" >/dev/null 2>&1 || user=nobody
        chown "$user" "$dir" || return 1
        as=(runuser -u "$user" --)
    fi
    port=$(free_port)
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 \
        --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = on
max_connections = 200
CONF
    export JOBD_TEST_PG_CTL="${as[*]} $bin/pg_ctl -D $dir/data -l $dir/server.log -w"
    $JOBD_TEST_PG_CTL start >/dev/null || { tail -n 20 "$dir/server.log" >&2; return 1; }
    export JOBD_TEST_PG="postgresql://postgres@127.0.0.1:$port/postgres"
}

# pg_stop DIR: stop the cluster pg_start made in DIR (if running) and remove DIR.
pg_stop() {
    local dir=$1
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    [ -n "${JOBD_TEST_PG_CTL:-}" ] && $JOBD_TEST_PG_CTL -m immediate stop >/dev/null 2>&1
    rm -rf "$dir"
}

# lib.sh - shared by scripts/test and scripts/demo (sourced, not run): installing the
# Debian packages jobd needs, configuring and building, and finding the built programs.
# Checklist: a new build or test dependency goes in JOBD_PACKAGES here and nowhere else.

JOBD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBD_PACKAGES=(build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev
               libsqlite3-dev libcurl4-openssl-dev libcmocka-dev libpq-dev python3 sqlite3 curl)

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

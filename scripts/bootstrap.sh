# Sourced by scripts/demo and scripts/test: installs what a fresh Debian 12 machine lacks.
# Idempotent and quiet when everything is already there.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "bootstrap: installing ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

python_env() {
    local extra="$1"
    python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    local stamp="$VENV/.installed-$extra" inputs
    inputs="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$inputs" ]; then
        echo "bootstrap: installing cti-server into $VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check -U pip
        "$VENV/bin/pip" install -q --disable-pip-version-check -e "$REPO_ROOT[$extra]"
        echo "$inputs" > "$stamp"
    fi
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# The server binaries for the embedded CRM store; the lab's tools; sipp for calls.
SYSTEM_PACKAGES=(postgresql debootstrap zstd sip-tester ca-certificates)
# The tests drive the agent and supervisor pages in a real headless browser (Playwright).
TEST_PACKAGES=(chromium)

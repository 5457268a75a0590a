#!/usr/bin/env bash
# install.sh - install, update or remove the bodycam agent. IT's one command.
#
#   sudo ./install.sh [--device-id ID] [--site SITE] [--recipients evidence.pub]
#   sudo ./install.sh --dry-run            # print what would be done, change nothing
#   sudo ./install.sh --uninstall          # remove service and software; keep evidence, keys, config
#   sudo ./install.sh --uninstall --purge  # also remove evidence, keys and config (refused while
#                                          # segments wait for the back office's receipt)
#
# On Raspberry Pi OS Bookworm (64-bit) it sets up the camera, I2C and GPIO; on any other Debian
# machine it installs a simulation (synthetic camera, emulated display, mock GPIO) instead.
# Every step first checks whether it is already done, so running it again changes nothing and says
# so; after an update of the checkout it installs exactly what changed. docs/INSTALL.md explains
# each step, the service's hardening, enrolment and 'bodycam doctor'.
set -euo pipefail
shopt -s nullglob

readonly PREFIX=/opt/bodycam
readonly VENV=$PREFIX/venv
readonly STAMP=$PREFIX/.installed-source
readonly CLI_LINK=/usr/local/bin/bodycam
readonly ETC_DIR=/etc/bodycam
readonly CONFIG=$ETC_DIR/agent.toml
readonly RECIPIENTS_FILE=$ETC_DIR/evidence.pub
readonly RECEIPT_KEY_FILE=$ETC_DIR/keys/receipt.pub
readonly TLS_DIR=$ETC_DIR/mqtt
readonly STATE_ROOT=/var/lib/bodycam
readonly SERVICE=bodycam-agent.service
readonly UNIT_DIR=/etc/systemd/system
readonly DROPIN_DIR=$UNIT_DIR/$SERVICE.d
readonly SERVICE_USER=bodycam
readonly HARDWARE_GROUPS=(video i2c spi gpio)
# The Python wheels the agent needs (numpy, pillow, cffi, pyrage, pygame, PyAV) exist on PyPI for
# these only; on 32-bit Raspberry Pi OS (armhf) pip would try to compile them and fail.
readonly SUPPORTED_ARCHITECTURES=(arm64 amd64)
readonly SUPPORTED_OS="bodycam installs on Raspberry Pi OS Bookworm (64-bit) on a Raspberry Pi 4 or 5, and for the simulation on 64-bit Debian 12 (amd64 or arm64)."
readonly BASE_PACKAGES=(python3 python3-venv ca-certificates openssl i2c-tools procps systemd)
# python3-spidev: the big front displays (SSD1322/SSD1362/SSD1351 OLEDs, ST7789/ILI9341 TFTs) are on SPI,
# and luma.core does not pull in spidev itself.
readonly PI_PACKAGES=(python3-picamera2 python3-lgpio python3-spidev raspi-config)
# Used only by --dry-run before python3 is installed; otherwise the paths come from the config.
readonly DEFAULT_SPOOL=$STATE_ROOT/spool

SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The back office's installer (install-office.sh) sources this file for its helpers and sets these three:
# its name in messages, MODE=office (pip installs the 'office' extra) and the checkout's back-office parts.
PROG=install.sh
OFFICE_PARTS=()
DRY_RUN=0
UNINSTALL=0
PURGE=0
MODE=auto
DEVICE_ID=""
SITE=""
RECIPIENTS_SRC=""
RECEIPT_KEY_SRC=""
CHANGES=0
WARNINGS=0
REBOOT_NEEDED=0
RESTART_NEEDED=0
UNITS_CHANGED=0
VENV_CREATED=0
APT_UPDATED=0

usage() {
    cat <<'EOF'
Usage: sudo ./install.sh [OPTIONS]

Install or update the bodycam agent from this checkout, or remove it.

  --dry-run             print what would be done; change nothing (root not needed)
  --device-id ID        device id for a new config and the device key (default: from the hostname)
  --site SITE           site (municipality or department) for a new config (default: the example's)
  --recipients FILE     the municipality's evidence.pub; installed as /etc/bodycam/evidence.pub
  --receipt-key FILE    the back office's receipt.pub; installed as /etc/bodycam/keys/receipt.pub
  --source DIR          install the agent from DIR instead of this script's checkout
  --mode pi|simulation  override the detection (simulation: synthetic camera, mock GPIO)
  --uninstall           stop and remove the service and the software; keep evidence, keys, config
  --purge               with --uninstall: also remove evidence, keys, config and the user; refused
                        while any segment still waits for the back office's receipt
  -h, --help            show this help

A second run changes nothing and says so. See docs/INSTALL.md.
EOF
}

# --- output -----------------------------------------------------------------------------------

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }
ok() { printf '  [ok]    %s\n' "$*"; }
note() { printf '  [note]  %s\n' "$*"; }
warn() { WARNINGS=$((WARNINGS + 1)); printf '  [warn]  %s\n' "$*"; }
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() { printf '%s: %s (see --help)\n' "$PROG" "$*" >&2; exit 2; }

# change WHAT COMMAND...: do one step (or only say so under --dry-run) and count it.
change() {
    local what=$1
    shift
    CHANGES=$((CHANGES + 1))
    if ((DRY_RUN)); then
        printf '  [would] %s\n' "$what"
        return 0
    fi
    "$@"
    printf '  [done]  %s\n' "$what"
}

on_error() {
    printf '\n%s: failed at line %s: %s\n' "$PROG" "$1" "$2" >&2
    printf 'Nothing after that step was done. Fix the cause above and run %s again: it continues where it stopped.\n' "$PROG" >&2
}

# --- arguments and checks ---------------------------------------------------------------------

parse_args() {
    while (($#)); do
        case $1 in
            --dry-run) DRY_RUN=1 ;;
            --uninstall) UNINSTALL=1 ;;
            --purge) PURGE=1 ;;
            --device-id) DEVICE_ID=${2:?--device-id needs a value}; shift ;;
            --site) SITE=${2:?--site needs a value}; shift ;;
            --recipients) RECIPIENTS_SRC=${2:?--recipients needs a file}; shift ;;
            --receipt-key) RECEIPT_KEY_SRC=${2:?--receipt-key needs a file}; shift ;;
            --source) SOURCE_DIR=${2:?--source needs a directory}; shift ;;
            --mode) MODE=${2:?--mode needs pi or simulation}; shift ;;
            -h | --help) usage; exit 0 ;;
            *) usage_error "unknown option '$1'" ;;
        esac
        shift
    done
    if ((PURGE)); then UNINSTALL=1; fi
    case $MODE in auto | pi | simulation) ;; *) usage_error "--mode must be pi or simulation, not '$MODE'" ;; esac
    for value in "$DEVICE_ID" "$SITE"; do
        [[ -z $value || $value =~ ^[a-z0-9_-]{1,64}$ ]] ||
            usage_error "'$value' is not a valid id: use 1-64 characters of a-z, 0-9, '-' or '_'"
    done
    [[ -z $RECIPIENTS_SRC || -f $RECIPIENTS_SRC ]] || usage_error "--recipients: no such file '$RECIPIENTS_SRC'"
    [[ -z $RECEIPT_KEY_SRC || -f $RECEIPT_KEY_SRC ]] || usage_error "--receipt-key: no such file '$RECEIPT_KEY_SRC'"
    SOURCE_DIR=$(cd "$SOURCE_DIR" 2>/dev/null && pwd) || usage_error "--source: no such directory"
}

preflight() {
    ((UNINSTALL)) || check_architecture
    if ((!DRY_RUN)) && ((EUID != 0)); then
        die "run as root (sudo ./install.sh), or add --dry-run to only see the plan"
    fi
    if ((!UNINSTALL)); then
        local f
        for f in pyproject.toml agent/agent.example.toml "systemd/$SERVICE"; do
            [[ -f $SOURCE_DIR/$f ]] || die "$SOURCE_DIR is not a bodycam checkout ($f is missing); use --source DIR"
        done
    fi
    if [[ $MODE == auto ]]; then
        MODE=simulation
        if is_raspberry_pi; then MODE=pi; fi
    fi
}

# Refuse a system the agent's wheels do not exist for, before anything is done or planned.
check_architecture() {
    local arch
    command -v dpkg >/dev/null || die "dpkg not found: this is not a Debian system. $SUPPORTED_OS"
    arch=$(dpkg --print-architecture)
    [[ " ${SUPPORTED_ARCHITECTURES[*]} " == *" $arch "* ]] ||
        die "unsupported architecture ($arch): the agent's Python packages (numpy, pillow, cffi, pyrage, pygame) have no wheels for it on PyPI, so installing would need compilers and fail. $SUPPORTED_OS On a Pi, install Raspberry Pi OS (64-bit) and run install.sh again."
}

is_raspberry_pi() {
    [[ -r /proc/device-tree/model ]] && tr -d '\0' </proc/device-tree/model | grep -q "Raspberry Pi"
}

systemd_running() { [[ -d /run/systemd/system ]]; }

# --- Debian packages and the Pi's interfaces --------------------------------------------------

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

ensure_packages() {
    local wanted=("${BASE_PACKAGES[@]}")
    [[ $MODE == pi ]] && wanted+=("${PI_PACKAGES[@]}")
    ensure_debian_packages "${wanted[@]}"
}

# ensure_debian_packages PACKAGE...: install those that are missing (one apt-get run).
ensure_debian_packages() {
    local wanted=("$@") missing=() pkg
    for pkg in "${wanted[@]}"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        ok "Debian packages present: ${wanted[*]}"
        return
    fi
    change "install Debian packages: ${missing[*]}" apt_install "${missing[@]}"
}

apt_install() {
    if ((!APT_UPDATED)); then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

boot_config() {
    local f
    for f in /boot/firmware/config.txt /boot/config.txt; do
        [[ -f $f ]] && { printf '%s\n' "$f"; return; }
    done
    printf '/boot/firmware/config.txt\n'
}

ensure_pi_interfaces() {
    if ! command -v raspi-config >/dev/null; then
        if ((DRY_RUN)); then
            change "enable I2C, SPI and the camera with raspi-config (once it is installed)" true
            return
        fi
        die "raspi-config is missing; this does not look like Raspberry Pi OS (use --mode simulation to install the simulation)"
    fi
    # raspi-config's get_* functions print 0 for "enabled".
    if [[ $(raspi-config nonint get_i2c) == 0 ]]; then
        ok "I2C enabled (front display)"
    else
        change "enable I2C (front display)" raspi-config nonint do_i2c 0
        REBOOT_NEEDED=1
    fi
    if [[ $(raspi-config nonint get_spi) == 0 ]]; then
        ok "SPI enabled (large front displays)"
    else
        change "enable SPI (large front displays)" raspi-config nonint do_spi 0
        REBOOT_NEEDED=1
    fi
    local config
    config=$(boot_config)
    if [[ $(raspi-config nonint get_config_var camera_auto_detect "$config") == 1 ]]; then
        ok "camera auto-detection enabled in $config"
    else
        change "enable camera auto-detection in $config" \
            raspi-config nonint set_config_var camera_auto_detect 1 "$config"
        REBOOT_NEEDED=1
    fi
}

# --- user -------------------------------------------------------------------------------------

ensure_user() {
    local group
    for group in "${HARDWARE_GROUPS[@]}"; do
        if getent group "$group" >/dev/null; then
            ok "group $group exists"
        else
            change "create system group $group" groupadd --system "$group"
        fi
    done
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then
        ok "user $SERVICE_USER exists"
    else
        change "create system user $SERVICE_USER (no login, home $STATE_ROOT)" \
            useradd --system --user-group --home-dir "$STATE_ROOT" --no-create-home \
            --shell /usr/sbin/nologin --comment "bodycam agent" "$SERVICE_USER"
    fi
    local have
    have=" $(id -nG "$SERVICE_USER" 2>/dev/null || true) "
    for group in "${HARDWARE_GROUPS[@]}"; do
        if [[ $have == *" $group "* ]]; then
            ok "user $SERVICE_USER is in group $group"
        else
            change "add user $SERVICE_USER to group $group" usermod -aG "$group" "$SERVICE_USER"
        fi
    done
}

# --- software ---------------------------------------------------------------------------------

ensure_venv() {
    if [[ -x $VENV/bin/python ]] && grep -qx 'include-system-site-packages = true' "$VENV/pyvenv.cfg"; then
        ok "virtual environment $VENV (sees Raspberry Pi OS's picamera2 and lgpio)"
    else
        change "create virtual environment $VENV with --system-site-packages" \
            python3 -m venv --clear --system-site-packages "$VENV"
        VENV_CREATED=1
    fi
}

# The parts of the checkout that make up the installed software (ui/ and comms/ once they exist).
source_parts() {
    local part
    for part in pyproject.toml README.md base camera evidence ui comms agent docs/INSTALL.md "${OFFICE_PARTS[@]}"; do
        if [[ -e $SOURCE_DIR/$part ]]; then printf '%s\n' "$part"; fi
    done
}

# One line naming the source's content and the mode: it changes exactly when pip must run.
source_fingerprint() {
    local digest parts
    mapfile -t parts < <(source_parts)
    digest=$(cd "$SOURCE_DIR" &&
        find "${parts[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum)
    printf '%s %s\n' "${digest%% *}" "$MODE"
}

ensure_software() {
    local want
    want=$(source_fingerprint)
    if ((!VENV_CREATED)) && [[ -f $STAMP && $(<"$STAMP") == "$want" ]]; then
        ok "bodycam software up to date (source ${want:0:12})"
    else
        change "install the bodycam software from $SOURCE_DIR into $VENV" install_software "$want"
        RESTART_NEEDED=1
    fi
    if [[ -L $CLI_LINK && $(readlink "$CLI_LINK") == "$VENV/bin/bodycam" ]]; then
        ok "command $CLI_LINK"
    else
        change "link $CLI_LINK to the agent's command" ln -sfn "$VENV/bin/bodycam" "$CLI_LINK"
    fi
}

install_software() {
    local fingerprint=$1 build target parts part
    # Build from a copy so the checkout gets no build/ or egg-info directories.
    build=$(mktemp -d)
    mapfile -t parts < <(source_parts)
    tar -C "$SOURCE_DIR" --exclude=__pycache__ --exclude='*.egg-info' -cf - "${parts[@]}" | tar -C "$build" -xf -
    target=$build
    # Off the Pi the synthetic camera needs PyAV (the 'sim' extra); on the Pi, picamera2 comes from
    # Raspberry Pi OS. No --upgrade: dependencies Raspberry Pi OS already provides (numpy, which
    # picamera2 is built against) must stay the system's. The back office gets the 'office' extra.
    case $MODE in
        simulation) target="${build}[sim]" ;;
        office) target="${build}[office]" ;;
    esac
    "$VENV/bin/pip" install --quiet --no-input --disable-pip-version-check "$target"
    rm -rf "$build"
    install -d -m 755 "$PREFIX/docs"
    for part in "${parts[@]}"; do
        if [[ $part == docs/*.md ]]; then install -m 644 "$SOURCE_DIR/$part" "$PREFIX/$part"; fi
    done
    printf '%s\n' "$fingerprint" >"$STAMP"
}

# --- configuration ----------------------------------------------------------------------------

# Print KEY=VALUE lines from a config file, read by the agent's own loader from the checkout, so
# install.sh and the agent never disagree about a default.
config_values() {
    PYTHONPATH=$SOURCE_DIR "$(config_python)" - "$1" <<'PY'
import os, sys
from agent import config
from base.errors import ConfigError
try:
    c = config.load(sys.argv[1])
except ConfigError as exc:
    sys.exit(f"{exc}")
print(f"DEVICE_ID={c.device.id}")
print(f"SITE={c.device.site}")
print(f"SPOOL_DIR={c.storage.spool_dir}")
print(f"STATE_DIR={c.evidence.state_dir}")
print(f"AUDIT_DIR={os.path.dirname(c.storage.audit_log)}")
print(f"DEVICE_KEY={c.evidence.device_key}")
print(f"RECIPIENTS={len(c.evidence.recipients)}")
PY
}

# The checkout's code runs with the installed venv's packages (config sections of other packages may
# import them); before the venv exists (--dry-run, a purge after uninstall) with the system's python3.
config_python() {
    if [[ -x $VENV/bin/python ]]; then
        printf '%s\n' "$VENV/bin/python"
    else
        printf 'python3\n'
    fi
}

# Read the paths the agent will use from FILE into CFG_* variables.
load_config_values() {
    local file=$1 line values
    values=$(config_values "$file") || die "$file is not a valid config (message above); fix it and run again"
    while IFS= read -r line; do
        case $line in
            DEVICE_ID=*) CFG_DEVICE_ID=${line#*=} ;;
            SITE=*) CFG_SITE=${line#*=} ;;
            SPOOL_DIR=*) CFG_SPOOL_DIR=${line#*=} ;;
            STATE_DIR=*) CFG_STATE_DIR=${line#*=} ;;
            AUDIT_DIR=*) CFG_AUDIT_DIR=${line#*=} ;;
            DEVICE_KEY=*) CFG_DEVICE_KEY=${line#*=} ;;
            RECIPIENTS=*) CFG_RECIPIENTS=${line#*=} ;;
        esac
    done <<<"$values"
}

default_device_id() {
    local host
    host=$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null || printf 'bodycam')
    host=$(printf '%s' "$host" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9_-' '-' | cut -c1-64)
    printf '%s\n' "${host:-bodycam}"
}

# Replace "KEY = ..." inside [SECTION] of a TOML file with "KEY = VALUE" (VALUE is TOML).
set_toml_key() {
    local file=$1 section=$2 key=$3 value=$4 tmp
    tmp=$(mktemp)
    awk -v section="[$section]" -v key="$key" -v value="$value" '
        /^\[/ { inside = ($0 == section) }
        inside && !done && $0 ~ "^" key " *=" { print key " = " value; done = 1; next }
        { print }
    ' "$file" >"$tmp"
    cat "$tmp" >"$file"
    rm -f "$tmp"
}

toml_has_key() {
    awk -v section="[$2]" -v key="$3" '
        /^\[/ { inside = ($0 == section) }
        inside && $0 ~ "^" key " *=" { found = 1 }
        END { exit !found }
    ' "$1"
}

# The new config: the documented example with this device's id, site, recipients and mode.
render_config() {
    local out=$1 id=$2
    {
        printf '# Written by install.sh from the documented example (%s mode). Edit freely: install.sh\n' "$MODE"
        printf '# never overwrites this file; it only fills in evidence.recipients while that lists none\n'
        printf '# and --recipients is given. Check it with: bodycam config --check %s\n\n' "$CONFIG"
        cat "$SOURCE_DIR/agent/agent.example.toml"
    } >"$out"
    set_toml_key "$out" device id "\"$id\""
    [[ -n $SITE ]] && set_toml_key "$out" device site "\"$SITE\""
    if [[ -n $RECIPIENTS_SRC ]]; then
        set_toml_key "$out" evidence recipients "[\"$RECIPIENTS_FILE\"]"
    fi
    if [[ $MODE == simulation ]]; then
        set_toml_key "$out" camera backend '"synthetic"'
        if toml_has_key "$out" display driver; then set_toml_key "$out" display driver '"dummy"'; fi
        if toml_has_key "$out" controls pin_factory; then set_toml_key "$out" controls pin_factory '"mock"'; fi
    fi
    return 0
}

# enable_recipients FILE RECIPIENT: a config that lists no evidence recipients gets RECIPIENT as its one
# recipient (a later run with --recipients is the documented way to enable recording). Only that key
# changes; every other line and comment stays. The result must load with the agent's own loader and
# list a recipient, else FILE stays as it was and install.sh stops.
enable_recipients() {
    local file=$1 draft values
    draft=$(mktemp "$file.XXXXXX")
    RECIPIENTS_VALUE="[\"$2\"]" awk '
        function is_header(line) { return line ~ /^[ \t]*\[/ }
        function is_evidence(line) { return line ~ /^[ \t]*\[[ \t]*evidence[ \t]*\][ \t]*(#.*)?$/ }
        function is_key(line) { return line ~ /^[ \t]*recipients[ \t]*=/ }
        BEGIN { value = "recipients = " ENVIRON["RECIPIENTS_VALUE"] }
        NR == FNR {  # first pass: does [evidence] have the key?
            if (is_header($0)) inside = is_evidence($0)
            else if (inside && is_key($0)) has_key = 1
            next
        }
        FNR == 1 { inside = 0 }
        skipping { if (index($0, "]")) skipping = 0; next }  # the rest of a multi-line array
        is_header($0) {
            inside = is_evidence($0)
            print
            if (inside && !has_key && !done) { print value; done = 1 }
            next
        }
        inside && !done && is_key($0) {
            print value
            done = 1
            rest = $0
            sub(/^[^=]*=[ \t]*/, "", rest)
            sub(/[ \t]*#.*$/, "", rest)
            if (substr(rest, 1, 1) == "[" && !index(rest, "]")) skipping = 1
            next
        }
        { print }
        END { if (!done) printf "\n[evidence]\n%s\n", value }
    ' "$file" "$file" >"$draft"
    if ! values=$(config_values "$draft" 2>&1) || [[ $values != *$'\n'RECIPIENTS=[1-9]* ]]; then
        rm -f "$draft"
        die "could not list $2 in evidence.recipients of $file (${values##*$'\n'}); add it there by hand and run install.sh again"
    fi
    chmod --reference="$file" "$draft"
    chown --reference="$file" "$draft"
    mv -f "$draft" "$file"
}

ensure_etc_dir() {
    ensure_dir "$ETC_DIR" 750 root "$SERVICE_USER"
}

# install_public_file SRC DEST WHAT: copy a public key file (0644) when it is new or changed.
install_public_file() {
    [[ -n $1 ]] || return 0
    if [[ -f $2 ]] && cmp -s "$1" "$2"; then
        ok "$3 $2"
    else
        change "install the $3 as $2" install -m 644 -o root -g root "$1" "$2"
        RESTART_NEEDED=1
    fi
}

ensure_recipients_file() {
    install_public_file "$RECIPIENTS_SRC" "$RECIPIENTS_FILE" "municipality's evidence recipients"
}

ensure_config() {
    local id
    if [[ -f $CONFIG ]]; then
        load_config_values "$CONFIG"
        [[ -z $DEVICE_ID || $DEVICE_ID == "$CFG_DEVICE_ID" ]] ||
            warn "--device-id $DEVICE_ID ignored: $CONFIG already names device $CFG_DEVICE_ID (edit it there)"
        if [[ -n $RECIPIENTS_SRC && $CFG_RECIPIENTS == 0 ]]; then
            change "list $RECIPIENTS_FILE in evidence.recipients of $CONFIG (every other line stays)" \
                enable_recipients "$CONFIG" "$RECIPIENTS_FILE"
            if ((!DRY_RUN)); then load_config_values "$CONFIG"; fi
            RESTART_NEEDED=1
        else
            ok "config $CONFIG kept as it is"
        fi
        ensure_mode "$CONFIG" 640 root "$SERVICE_USER"
        return
    fi
    id=${DEVICE_ID:-$(default_device_id)}
    local draft
    draft=$(mktemp)
    render_config "$draft" "$id"
    if ! have_python; then
        # --dry-run on a machine without python3 yet: the paths are the example's defaults.
        CFG_DEVICE_ID=$id CFG_SITE=${SITE:-demo} CFG_SPOOL_DIR=$DEFAULT_SPOOL CFG_STATE_DIR=$STATE_ROOT/state
        CFG_AUDIT_DIR=$STATE_ROOT/audit CFG_DEVICE_KEY=$ETC_DIR/keys/device.key CFG_RECIPIENTS=0
    else
        load_config_values "$draft"
    fi
    change "write $CONFIG for device $id ($MODE mode)" \
        install -m 640 -o root -g "$SERVICE_USER" "$draft" "$CONFIG"
    rm -f "$draft"
    RESTART_NEEDED=1
}

have_python() {
    command -v python3 >/dev/null && python3 -c 'import tomllib' 2>/dev/null
}

# --- directories and keys ---------------------------------------------------------------------

# ensure_dir PATH MODE OWNER GROUP: the directory exists with exactly this mode and owner.
ensure_dir() {
    local path=$1 mode=$2 owner=$3 group=$4
    if [[ -d $path && $(stat -c '%a %U %G' "$path") == "$mode $owner $group" ]]; then
        ok "directory $path ($mode $owner:$group)"
    else
        change "directory $path ($mode $owner:$group)" install -d -m "$mode" -o "$owner" -g "$group" "$path"
    fi
}

# ensure_mode PATH MODE OWNER GROUP: an existing file has exactly this mode and owner.
ensure_mode() {
    local path=$1 mode=$2 owner=$3 group=$4
    [[ -e $path ]] || return 0
    if [[ $(stat -c '%a %U %G' "$path") == "$mode $owner $group" ]]; then
        ok "permissions of $path ($mode $owner:$group)"
    else
        change "set $path to $mode $owner:$group" set_mode "$path" "$mode" "$owner" "$group"
    fi
}

set_mode() {
    chown "$3:$4" "$1"
    chmod "$2" "$1"
}

# inside ROOT PATH: PATH is ROOT or below it.
inside() { [[ $2 == "$1" || $2 == "$1"/* ]]; }

# A configured directory outside our own trees must be the agent's alone: never take over (chown,
# chmod, later purge) a directory such as /var/log or /etc that other software owns.
guard_own_dir() {
    local path=$1 owner
    inside "$STATE_ROOT" "$path" && return 0
    inside "$ETC_DIR" "$path" && return 0
    [[ -e $path ]] || return 0
    owner=$(stat -c '%U' "$path")
    [[ $owner == "$SERVICE_USER" ]] ||
        die "$path (from $CONFIG) already exists and belongs to $owner; give the agent a directory of its own, e.g. $path/bodycam"
}

ensure_state_dirs() {
    local dir extra=()
    ensure_dir "$STATE_ROOT" 750 "$SERVICE_USER" "$SERVICE_USER"
    for dir in "$CFG_SPOOL_DIR" "$CFG_STATE_DIR" "$CFG_AUDIT_DIR"; do
        guard_own_dir "$dir"
        ensure_dir "$dir" 750 "$SERVICE_USER" "$SERVICE_USER"
        inside "$STATE_ROOT" "$dir" || extra+=("$dir")
    done
    # The unit may write only below /var/lib/bodycam; a config that moves the spool elsewhere
    # (e.g. a second SD card) gets those directories added by a drop-in.
    if ((${#extra[@]})); then
        ensure_file_content "$DROPIN_DIR/paths.conf" \
            "$(printf '# Written by install.sh: directories from %s outside %s.\n[Service]\nReadWritePaths=%s\n' \
                "$CONFIG" "$STATE_ROOT" "${extra[*]}")"
    else
        ensure_absent "$DROPIN_DIR/paths.conf"
    fi
}

run_as_service_user() {
    runuser -u "$SERVICE_USER" -- "$@"
}

# with_umask MASK COMMAND...: a private key is never readable by others, not even for a moment.
with_umask() {
    local mask=$1
    shift
    (umask "$mask" && "$@")
}

ensure_device_key() {
    local key=$CFG_DEVICE_KEY key_dir
    key_dir=$(dirname "$key")
    [[ $(basename "$key") == device.key ]] ||
        die "evidence.device_key in $CONFIG must name a file called device.key ('bodycam keys device' writes that name)"
    guard_own_dir "$key_dir"
    ensure_dir "$key_dir" 700 "$SERVICE_USER" "$SERVICE_USER"
    if [[ -f $key ]]; then
        ok "device signing key $key"
    else
        change "create the device signing key $key (for device $CFG_DEVICE_ID)" \
            create_device_key "$key_dir" "$CFG_DEVICE_ID"
        RESTART_NEEDED=1
    fi
    ensure_mode "$key" 600 "$SERVICE_USER" "$SERVICE_USER"
    ensure_mode "$key_dir/device.pub" 644 "$SERVICE_USER" "$SERVICE_USER"
    ensure_receipt_key
}

# The back office's receipt key: only receipts it verifies let the device delete a segment.
ensure_receipt_key() {
    install_public_file "$RECEIPT_KEY_SRC" "$RECEIPT_KEY_FILE" "back office's receipt key"
}

# 'bodycam keys device' as the service user, so the key is its own from the first byte (mode 0600).
create_device_key() {
    run_as_service_user "$VENV/bin/bodycam" keys device --out "$1" --device-id "$2" >/dev/null
}

# The MQTT client key is made here and never leaves the device; the CA signs the request.
ensure_tls_request() {
    ensure_dir "$TLS_DIR" 750 "$SERVICE_USER" "$SERVICE_USER"
    if [[ -f $TLS_DIR/client.key ]]; then
        ok "MQTT client key $TLS_DIR/client.key"
    else
        change "create the MQTT client key $TLS_DIR/client.key" \
            with_umask 077 run_as_service_user openssl genpkey -quiet -algorithm EC \
            -pkeyopt ec_paramgen_curve:P-256 -out "$TLS_DIR/client.key"
    fi
    if [[ -f $TLS_DIR/client.csr || -f $TLS_DIR/client.crt ]]; then
        ok "certificate request $TLS_DIR/client.csr"
    else
        change "create the certificate request $TLS_DIR/client.csr (CN=$CFG_DEVICE_ID, O=$CFG_SITE)" \
            run_as_service_user openssl req -new -key "$TLS_DIR/client.key" -out "$TLS_DIR/client.csr" \
            -subj "/O=$CFG_SITE/CN=$CFG_DEVICE_ID"
    fi
    ensure_mode "$TLS_DIR/client.key" 600 "$SERVICE_USER" "$SERVICE_USER"
}

# --- service ----------------------------------------------------------------------------------

# ensure_file_content PATH CONTENT: a root-owned 0644 file holds exactly CONTENT.
ensure_file_content() {
    local path=$1 content=$2
    if [[ -f $path && $(<"$path") == "$content" ]]; then
        ok "file $path"
    else
        change "write $path" write_file "$path" "$content"
        RESTART_NEEDED=1
        UNITS_CHANGED=1
    fi
}

write_file() {
    install -d -m 755 "$(dirname "$1")"
    printf '%s\n' "$2" >"$1.tmp"
    chmod 644 "$1.tmp"
    mv -f "$1.tmp" "$1"
}

ensure_absent() {
    if [[ -e $1 ]]; then
        change "remove $1" rm -f "$1"
        RESTART_NEEDED=1
        UNITS_CHANGED=1
    fi
}

ensure_unit() {
    local unit=$UNIT_DIR/$SERVICE
    if [[ -f $unit ]] && cmp -s "$SOURCE_DIR/systemd/$SERVICE" "$unit"; then
        ok "unit $unit"
    else
        change "install unit $unit" install -m 644 -o root -g root "$SOURCE_DIR/systemd/$SERVICE" "$unit"
        RESTART_NEEDED=1
        UNITS_CHANGED=1
    fi
    # gpiozero picks its pin factory from GPIOZERO_PIN_FACTORY: 'mock' off the Pi, where there are
    # no GPIO chips. Only the simulation gets this drop-in.
    if [[ $MODE == simulation ]]; then
        ensure_file_content "$DROPIN_DIR/simulation.conf" \
            "$(printf '# Written by install.sh: simulation mode (no Raspberry Pi detected).\n[Service]\nEnvironment=GPIOZERO_PIN_FACTORY=mock\n')"
    else
        ensure_absent "$DROPIN_DIR/simulation.conf"
    fi
}

ensure_service() {
    if ((UNITS_CHANGED)) && systemd_running; then
        change "reload systemd's unit files" systemctl daemon-reload
    fi
    if systemctl is-enabled --quiet "$SERVICE" 2>/dev/null; then
        ok "service $SERVICE enabled at boot"
    else
        change "enable $SERVICE at boot" systemctl enable --quiet "$SERVICE"
    fi
    if ! systemd_running; then
        note "not starting $SERVICE: systemd is not running here (chroot or image build); it starts at boot"
        return
    fi
    if systemctl is-active --quiet "$SERVICE"; then
        if ((RESTART_NEEDED)); then
            change "restart $SERVICE (software, config or unit changed)" start_service restart
        else
            ok "service $SERVICE running"
        fi
    else
        change "start $SERVICE" start_service start
    fi
}

start_service() {
    systemctl "$1" "$SERVICE" ||
        warn "$SERVICE did not start; the next steps below may explain why (journalctl -u ${SERVICE%.service} shows the reason)"
}

# --- uninstall --------------------------------------------------------------------------------

# Count segments in DIR whose manifest has no receipt: evidence the back office has not confirmed.
count_unacknowledged() {
    local dir=$1 n=0 manifest
    [[ -d $dir ]] || { printf '0\n'; return; }
    for manifest in "$dir"/*.manifest.json; do
        [[ -e ${manifest%.manifest.json}.receipt.json ]] || n=$((n + 1))
    done
    printf '%s\n' "$n"
}

count_quarantined() {
    local files=("$1"/quarantine/*)
    printf '%s\n' "${#files[@]}"
}

# Refuse --purge (exit 1) while anything in the spool could still be evidence.
check_purge_allowed() {
    local spool=$1 pending quarantined
    pending=$(count_unacknowledged "$spool")
    quarantined=$(count_quarantined "$spool")
    if ((pending > 0 || quarantined > 0)); then
        printf 'install.sh: refusing to purge: %s segment(s) in %s have no receipt from the back office' "$pending" "$spool" >&2
        printf ' and %s file(s) are in quarantine.\n' "$quarantined" >&2
        printf 'Let the device upload them (connect it and wait until "bodycam status" shows no backlog), or copy them to the back office by hand and examine the quarantine, then run --purge again. Nothing was changed.\n' >&2
        exit 1
    fi
    ok "no unacknowledged segments in $spool"
}

uninstall() {
    local spool=$DEFAULT_SPOOL
    if [[ -f $CONFIG ]] && have_python && [[ -f $SOURCE_DIR/agent/config.py ]]; then
        load_config_values "$CONFIG"
        spool=$CFG_SPOOL_DIR
    elif [[ -f $CONFIG ]] && ((PURGE)); then
        die "cannot read $CONFIG to find the spool; refusing to purge (run from a bodycam checkout with python3)"
    fi
    if ((PURGE)); then
        section "Evidence check"
        check_purge_allowed "$spool"
    fi
    section "Service"
    if [[ -f $UNIT_DIR/$SERVICE ]]; then
        if systemd_running; then
            change "stop and disable $SERVICE (the current segment is sealed first)" \
                systemctl disable --now --quiet "$SERVICE"
        else
            change "disable $SERVICE" systemctl disable --quiet "$SERVICE"
        fi
        change "remove unit $UNIT_DIR/$SERVICE and its drop-ins" rm -rf "$UNIT_DIR/$SERVICE" "$DROPIN_DIR"
        if systemd_running; then
            change "reload systemd's unit files" systemctl daemon-reload
        fi
    else
        ok "no unit $UNIT_DIR/$SERVICE installed"
    fi
    section "Software"
    if [[ -L $CLI_LINK ]]; then
        change "remove $CLI_LINK" rm -f "$CLI_LINK"
    fi
    if [[ -d $PREFIX ]]; then
        change "remove $PREFIX (virtual environment and documentation)" rm -rf "$PREFIX"
    else
        ok "no $PREFIX"
    fi
    if ((!PURGE)); then
        section "Kept"
        say "  Evidence, keys and config stay: $STATE_ROOT, $ETC_DIR, user $SERVICE_USER."
        say "  Run install.sh again to reinstall with them, or --uninstall --purge to remove them too."
        return
    fi
    section "Evidence, keys and config"
    # The service is stopped now; its last segment may have been sealed on the way down.
    check_purge_allowed "$spool"
    local dir
    for dir in "$STATE_ROOT" "$ETC_DIR"; do
        if [[ -e $dir ]]; then
            change "remove $dir" rm -rf "$dir"
        fi
    done
    # Directories the config put elsewhere are the agent's (install.sh checked that), but deleting
    # outside its own trees is left to a person who can see what else is there.
    for dir in "$spool" "${CFG_STATE_DIR:-}" "${CFG_AUDIT_DIR:-}"; do
        if [[ -n $dir && -e $dir ]] && ! inside "$STATE_ROOT" "$dir"; then
            note "kept $dir (outside $STATE_ROOT): remove it by hand once you are sure it holds nothing else"
        fi
    done
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then
        change "remove user $SERVICE_USER" userdel "$SERVICE_USER"
    fi
    say "  Debian packages and the groups video, i2c, spi, gpio stay (other software may use them)."
}

# --- summary ----------------------------------------------------------------------------------

next_steps() {
    local pub n=1
    pub=$(dirname "${CFG_DEVICE_KEY:-$ETC_DIR/keys/device.key}")/device.pub
    section "Device"
    say "  site ${CFG_SITE:-?}, device ${CFG_DEVICE_ID:-?}, $MODE mode"
    if [[ -f $pub ]]; then
        say "  Public key to enrol ($pub):"
        say "    $(<"$pub")"
    fi
    section "Next steps"
    say "  $n. Enrol the device: give $pub (one line, shown above) to the back office,"
    say "     which verifies every segment with it."
    n=$((n + 1))
    if [[ ! -f $TLS_DIR/client.crt ]]; then
        say "  $n. Client certificate: have the municipality's CA sign $TLS_DIR/client.csr, then put the"
        say "     certificate at $TLS_DIR/client.crt and the CA's certificate at $TLS_DIR/ca.crt"
        say "     (mode 0644), and enter the broker's host name in the [mqtt] section of $CONFIG."
        n=$((n + 1))
    fi
    if [[ ! -f $RECEIPT_KEY_FILE ]]; then
        say "  $n. Receipt key: run install.sh again with --receipt-key receipt.pub (the back office's"
        say "     public receipt key). Without it the device never deletes an uploaded segment."
        n=$((n + 1))
    fi
    if [[ ${CFG_RECIPIENTS:-0} == 0 && -z $RECIPIENTS_SRC ]]; then
        say "  $n. Evidence recipients: run install.sh again with --recipients evidence.pub (the"
        say "     municipality's public key), or set evidence.recipients in $CONFIG. Without it the agent"
        say "     does not record."
        n=$((n + 1))
    fi
    if ((REBOOT_NEEDED)); then
        say "  $n. Reboot once so the camera and I2C settings take effect."
        n=$((n + 1))
    fi
    say "  $n. Check everything: sudo bodycam doctor    (the running agent: bodycam status)"
}

summary() {
    section "Result"
    if ((CHANGES == 0)); then
        say "  Nothing to change: everything is already in place."
    elif ((DRY_RUN)); then
        say "  Dry run: $CHANGES step(s) would be done. Nothing was changed."
    else
        say "  $CHANGES step(s) done."
    fi
    if ((WARNINGS)); then
        say "  $WARNINGS warning(s) above."
    fi
}

install_all() {
    say "bodycam install.sh: $MODE mode, source $SOURCE_DIR$( ((DRY_RUN)) && printf ' (dry run: nothing is changed)')"
    section "Debian packages"
    ensure_packages
    if [[ $MODE == pi ]]; then
        section "Raspberry Pi interfaces"
        ensure_pi_interfaces
    fi
    section "Service user"
    ensure_user
    section "Software"
    ensure_venv
    ensure_software
    section "Configuration"
    ensure_etc_dir
    ensure_recipients_file
    ensure_config
    section "Evidence directories"
    ensure_state_dirs
    section "Keys"
    ensure_device_key
    ensure_tls_request
    section "Service"
    ensure_unit
    ensure_service
    next_steps
}

main() {
    parse_args "$@"
    preflight
    trap 'on_error "$LINENO" "$BASH_COMMAND"' ERR
    set -E
    if ((UNINSTALL)); then
        say "bodycam install.sh: uninstall$( ((PURGE)) && printf ' and purge')$( ((DRY_RUN)) && printf ' (dry run: nothing is changed)')"
        uninstall
    else
        install_all
    fi
    summary
}

# Sourcing the file (tests) defines the functions without running anything.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi

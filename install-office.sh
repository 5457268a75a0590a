#!/usr/bin/env bash
# install-office.sh - install, update or remove the bodycam back office on a server: the receiver, the
# retention timer, the key custodian and the review web app, next to each other. IT's one command.
#
#   sudo ./install-office.sh --evidence-key /media/safe/evidence.key [--admin NAME]
#   sudo ./install-office.sh --dry-run            # print what would be done, change nothing
#   sudo ./install-office.sh --uninstall          # remove services and software; keep everything else
#   sudo ./install-office.sh --uninstall --purge  # also the secrets and the custodian's and review app's
#                                                 # users; never the evidence store or the audit log
#
# It reuses install.sh's helpers (sourced: the same steps, output and venv) and, like it, checks every
# step before doing it, so a second run changes nothing and says so. docs/INSTALL.md ("The back office")
# explains each step and why this is a script of its own.
set -euo pipefail
shopt -s nullglob

OFFICE_SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=install.sh
source "$OFFICE_SCRIPT_DIR/install.sh"
PROG=install-office.sh
MODE=office
OFFICE_PARTS=(backoffice docs/BACKOFFICE.md docs/REVIEW.md)

readonly OFFICE_CLI_LINK=/usr/local/bin/bodycam-office
readonly OFFICE_CLI=$VENV/bin/bodycam-office
readonly RECEIVER_USER=bodycam-receiver
readonly CUSTODIAN_USER=bodycam-custodian
readonly REVIEW_USER=bodycam-review
readonly STORE_ROOT=/srv/bodycam
readonly STORE_DIR=$STORE_ROOT/store
readonly INCOMING_DIR=$STORE_ROOT/incoming
readonly OFFICE_DATA=/var/lib/bodycam-office
readonly AUDIT_DIR=$OFFICE_DATA/audit
readonly AUDIT_LOG=$AUDIT_DIR/office-audit.jsonl
readonly OFFICE_KEYS=$OFFICE_DATA/keys
readonly OFFICE_KEY=$OFFICE_KEYS/office.key
readonly OFFICE_PUB=$OFFICE_KEYS/office.pub
readonly DEVICES_DIR=$ETC_DIR/devices
readonly MQTT_DIR=$ETC_DIR/mqtt
readonly RECEIVER_CONFIG=$ETC_DIR/receiver.toml
readonly OFFICE_RECEIPT_KEY=$ETC_DIR/receipt.key
readonly OFFICE_RECEIPT_PUB=$ETC_DIR/receipt.pub
readonly OFFICE_ENV_FILE=$ETC_DIR/office.env
readonly REVIEW_SECRET=$ETC_DIR/review-secret
readonly CUSTODIAN_DIR=$ETC_DIR/custodian
readonly EVIDENCE_KEY=$CUSTODIAN_DIR/evidence.key
readonly RECEIVER=bodycam-receiver.service
readonly RETENTION=bodycam-office-retention.service
readonly RETENTION_TIMER=bodycam-office-retention.timer
readonly CUSTODIAN=bodycam-custodian.service
readonly REVIEW=bodycam-review.service
readonly OFFICE_UNITS=("$RECEIVER" "$RETENTION" "$RETENTION_TIMER" "$CUSTODIAN" "$REVIEW")
readonly RECEIVER_DROPIN=$UNIT_DIR/$RECEIVER.d/catalog.conf
readonly OFFICE_PACKAGES=(python3 python3-venv ca-certificates systemd tzdata fonts-dejavu-core)
readonly REVIEW_URL=http://127.0.0.1:8470/

EVIDENCE_SRC=""
ADMIN=""
OFFICE_ENV=()
RECIPIENT=""
# Units to restart because something they read changed (the software restarts all of them).
declare -A RESTART=()
# Units that may not start yet, with the reason (their own --check's sentence).
declare -A NOT_READY=()

office_usage() {
    cat <<'EOF'
Usage: sudo ./install-office.sh [OPTIONS]

Install or update the bodycam back office from this checkout (receiver, retention timer, key
custodian, review web app), or remove it.

  --evidence-key FILE   the municipality's evidence.key (age identity, from 'bodycam keys evidence');
                        needed once: installed as /etc/bodycam/custodian/evidence.key (0600 root), which
                        only systemd reads, for the key custodian; it is copied nowhere else
  --admin NAME          create the first admin of the review app if missing (password: asked twice
                        on a terminal, else one line from stdin)
  --source DIR          install from DIR instead of this script's checkout
  --dry-run             print what would be done; change nothing (root not needed)
  --uninstall           stop and remove the services and the software; keep data, keys and config
  --purge               with --uninstall: also remove the secrets (evidence key copy, session secret,
                        signing keys, broker key, database password) and the custodian's and review
                        app's users; the evidence store, the catalog and the audit log always stay
  -h, --help            show this help

A second run changes nothing and says so. See docs/INSTALL.md, "The back office".
EOF
}

# --- arguments and checks ---------------------------------------------------------------------

parse_office_args() {
    while (($#)); do
        case $1 in
            --dry-run) DRY_RUN=1 ;;
            --uninstall) UNINSTALL=1 ;;
            --purge) PURGE=1 ;;
            --evidence-key) EVIDENCE_SRC=${2:?--evidence-key needs a file}; shift ;;
            --admin) ADMIN=${2:?--admin needs a user name}; shift ;;
            --source) SOURCE_DIR=${2:?--source needs a directory}; shift ;;
            -h | --help) office_usage; exit 0 ;;
            *) usage_error "unknown option '$1'" ;;
        esac
        shift
    done
    if ((PURGE)); then UNINSTALL=1; fi
    [[ -z $ADMIN || $ADMIN =~ ^[A-Za-z0-9_.@+-]{1,150}$ ]] ||
        usage_error "--admin '$ADMIN' is not a valid user name: use letters, digits and _ . @ + -"
    SOURCE_DIR=$(cd "$SOURCE_DIR" 2>/dev/null && pwd) || usage_error "--source: no such directory"
}

office_preflight() {
    if ((!DRY_RUN)) && ((EUID != 0)); then
        die "run as root (sudo ./install-office.sh), or add --dry-run to only see the plan"
    fi
    # One machine, one role: the device's agent and the back office would share /opt/bodycam and /etc/bodycam.
    [[ ! -e $CONFIG ]] ||
        die "this machine is a bodycam device ($CONFIG exists); the back office goes on a server of its own. Nothing was changed."
    ((UNINSTALL)) && return 0
    local arch f
    command -v dpkg >/dev/null || die "dpkg not found: the back office installs on Debian 12 (amd64 or arm64)"
    arch=$(dpkg --print-architecture)
    [[ " ${SUPPORTED_ARCHITECTURES[*]} " == *" $arch "* ]] ||
        die "unsupported architecture ($arch): the back office installs on Debian 12 (amd64 or arm64), where its Python packages have wheels on PyPI"
    for f in pyproject.toml backoffice/cli.py "${OFFICE_UNITS[@]/#/systemd/}"; do
        [[ -f $SOURCE_DIR/$f ]] || die "$SOURCE_DIR is not a bodycam checkout ($f is missing); use --source DIR"
    done
    check_evidence_key_source
}

# The custodian cannot start without the evidence key: refuse before changing anything, and never
# replace an installed key with another one.
check_evidence_key_source() {
    if [[ -z $EVIDENCE_SRC ]]; then
        [[ -f $EVIDENCE_KEY ]] && return 0
        if ((DRY_RUN)); then
            warn "no --evidence-key given: a real run refuses to start without it"
            return 0
        fi
        usage_error "the key custodian needs the municipality's evidence key: give it with --evidence-key FILE (evidence.key from 'bodycam keys evidence', e.g. from the safe). It is installed as $EVIDENCE_KEY (0600 root), which only systemd reads, to hand it to $CUSTODIAN; it is copied nowhere else. Nothing was changed"
    fi
    [[ -f $EVIDENCE_SRC && -r $EVIDENCE_SRC ]] || usage_error "--evidence-key: cannot read '$EVIDENCE_SRC'"
    grep -q '^AGE-SECRET-KEY-1' "$EVIDENCE_SRC" ||
        usage_error "--evidence-key: $EVIDENCE_SRC holds no age identity (a line AGE-SECRET-KEY-1...); give the private evidence.key, not evidence.pub. Nothing was changed"
    if [[ -r $EVIDENCE_KEY ]] && ! cmp -s "$EVIDENCE_SRC" "$EVIDENCE_KEY"; then
        die "a different evidence key is installed at $EVIDENCE_KEY; install-office.sh never replaces a key (recordings sealed to it could no longer be played). If the municipality really changed its key, move the old one away yourself first. Nothing was changed."
    fi
}

# --- users ------------------------------------------------------------------------------------

ensure_group() {
    if getent group "$1" >/dev/null; then
        ok "group $1 exists"
    else
        change "create system group $1" groupadd --system "$1"
    fi
}

# ensure_system_user NAME GROUP HOME COMMENT: a system user without login whose primary group is GROUP.
ensure_system_user() {
    local name=$1 group=$2 home=$3 comment=$4
    if id -u "$name" >/dev/null 2>&1; then
        ok "user $name exists"
        if [[ $(id -gn "$name") != "$group" ]]; then
            change "make $group the primary group of $name" usermod -g "$group" "$name"
        fi
    else
        change "create system user $name (group $group, no login)" useradd --system --gid "$group" \
            --home-dir "$home" --no-create-home --shell /usr/sbin/nologin --comment "$comment" "$name"
    fi
}

ensure_member() {
    if [[ " $(id -nG "$1" 2>/dev/null || true) " == *" $2 "* ]]; then
        ok "user $1 is in group $2"
    else
        change "add user $1 to group $2" usermod -aG "$2" "$1"
    fi
}

ensure_office_users() {
    ensure_group "$RECEIVER_USER"
    ensure_system_user "$RECEIVER_USER" "$RECEIVER_USER" "$STORE_ROOT" "bodycam back office - receiver and retention"
    ensure_group "$CUSTODIAN_USER"
    ensure_system_user "$CUSTODIAN_USER" "$CUSTODIAN_USER" /nonexistent "bodycam back office - key custodian"
    # The review app writes what the receiver's group may (catalog, audit log, deletions in the store) and
    # talks to the custodian's socket (0660, group bodycam-custodian); it never reads a key file itself.
    ensure_system_user "$REVIEW_USER" "$RECEIVER_USER" /nonexistent "bodycam back office - review web app"
    ensure_member "$REVIEW_USER" "$CUSTODIAN_USER"
}

# --- software ---------------------------------------------------------------------------------

ensure_office_software() {
    local before=$CHANGES
    ensure_venv
    ensure_software
    if ((CHANGES > before)); then RESTART[$RECEIVER]=1 RESTART[$CUSTODIAN]=1 RESTART[$REVIEW]=1; fi
    if [[ -L $OFFICE_CLI_LINK && $(readlink "$OFFICE_CLI_LINK") == "$OFFICE_CLI" ]]; then
        ok "command $OFFICE_CLI_LINK"
    else
        change "link $OFFICE_CLI_LINK to the back office's command" ln -sfn "$OFFICE_CLI" "$OFFICE_CLI_LINK"
    fi
}

have_software() { [[ -x $OFFICE_CLI ]]; }

# --- directories ------------------------------------------------------------------------------

ensure_office_dirs() {
    local r=$RECEIVER_USER
    # /etc/bodycam: root's; the receiver's group reads the config, the enrolled devices and its TLS files.
    ensure_dir "$ETC_DIR" 750 root "$r"
    ensure_dir "$DEVICES_DIR" 750 root "$r"
    ensure_dir "$MQTT_DIR" 750 root "$r"
    ensure_dir "$CUSTODIAN_DIR" 700 root root
    # The store: the receiver writes it; the review app (same group) deletes what a decision names.
    ensure_dir "$STORE_ROOT" 750 "$r" "$r"
    ensure_dir "$STORE_DIR" 770 "$r" "$r"
    ensure_dir "$INCOMING_DIR" 750 "$r" "$r"
    # The office's data: catalog and audit log shared by the group, the keys not.
    ensure_dir "$OFFICE_DATA" 770 "$r" "$r"
    ensure_dir "$AUDIT_DIR" 770 "$r" "$r"
    ensure_dir "$OFFICE_KEYS" 750 "$r" "$r"
    local f
    for f in "$AUDIT_LOG" "$AUDIT_LOG.lock"; do
        if [[ -e $f ]]; then
            ensure_mode "$f" 660 "$r" "$r"
        else
            change "create $f (660 $r:$r: every writer of the office audit log appends to it)" \
                install -m 660 -o "$r" -g "$r" /dev/null "$f"
        fi
    done
    ensure_group_access "$STORE_DIR"
    ensure_group_access "$OFFICE_DATA" "$OFFICE_KEYS"
}

# ensure_group_access DIR [SKIP]: everything below DIR is group-readable and -writable (directories also
# searchable), as the services' UMask=0007 makes it; an installation made before the review app needs that once.
ensure_group_access() {
    local dir=$1 skip=${2:-/nonexistent} first
    [[ -d $dir ]] || return 0
    first=$(find "$dir" -path "$skip" -prune -o \( -type d ! -perm -g=rwx -o -type f ! -perm -g=rw \) -print -quit)
    if [[ -z $first ]]; then
        ok "the receiver's group may write below $dir"
    else
        change "let the receiver's group write below $dir (chmod g+rwX; e.g. $first was not)" \
            find "$dir" -path "$skip" -prune -o -exec chmod g+rwX {} +
    fi
}

# --- keys and secrets -------------------------------------------------------------------------

ensure_office_keys() {
    local r=$RECEIVER_USER
    if [[ -f $OFFICE_KEY ]]; then
        ok "office audit signing key $OFFICE_KEY"
    else
        change "create the office audit signing key $OFFICE_KEY and $OFFICE_PUB" create_office_key
    fi
    ensure_mode "$OFFICE_KEY" 600 "$r" "$r"
    ensure_mode "$OFFICE_PUB" 644 "$r" "$r"
    if [[ -f $OFFICE_RECEIPT_KEY ]]; then
        ok "receipt signing key $OFFICE_RECEIPT_KEY"
    else
        change "create the receipt signing key $OFFICE_RECEIPT_KEY and $OFFICE_RECEIPT_PUB (for the devices)" \
            create_receipt_key
        RESTART[$RECEIVER]=1
    fi
    ensure_mode "$OFFICE_RECEIPT_KEY" 600 "$r" "$r"
    ensure_mode "$OFFICE_RECEIPT_PUB" 644 root root
    ensure_evidence_key
    if [[ -f $REVIEW_SECRET ]]; then
        ok "session secret $REVIEW_SECRET"
    else
        change "create the review app's session secret $REVIEW_SECRET" create_review_secret
        RESTART[$REVIEW]=1
    fi
    ensure_mode "$REVIEW_SECRET" 600 root root
    ensure_mode "$OFFICE_ENV_FILE" 600 root root
}

create_office_key() {
    as_receiver "$OFFICE_CLI" keys office --out "$OFFICE_KEYS" >/dev/null
}

# Made by root in root's /etc/bodycam, then given to the receiver, which alone reads it.
create_receipt_key() {
    with_umask 077 "$OFFICE_CLI" keys receiver --out "$ETC_DIR" >/dev/null
    chown "$RECEIVER_USER:$RECEIVER_USER" "$OFFICE_RECEIPT_KEY"
}

create_review_secret() {
    (
        umask 077
        python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$REVIEW_SECRET.tmp"
        mv -f "$REVIEW_SECRET.tmp" "$REVIEW_SECRET"
    )
}

# The evidence key goes to exactly one place, root's 0700 directory; systemd hands it to the custodian as a
# credential (LoadCredential=), so no service user can read the file.
ensure_evidence_key() {
    if [[ -f $EVIDENCE_KEY ]]; then
        ok "evidence key $EVIDENCE_KEY (the custodian's credential)"
    elif [[ -n $EVIDENCE_SRC ]]; then
        change "install the evidence key as $EVIDENCE_KEY (0600 root; systemd hands it to $CUSTODIAN only)" \
            install_evidence_key
        RESTART[$CUSTODIAN]=1
    fi
    ensure_mode "$EVIDENCE_KEY" 600 root root
    if [[ -r $EVIDENCE_KEY ]] && have_software; then
        RECIPIENT=$(evidence_recipient)
    fi
}

install_evidence_key() {
    local problem
    with_umask 077 install -m 600 -o root -g root "$EVIDENCE_SRC" "$EVIDENCE_KEY"
    if ! problem=$(evidence_recipient 2>&1); then
        rm -f "$EVIDENCE_KEY"
        die "--evidence-key: ${problem##*$'\n'} (the file was not kept)"
    fi
}

# The age recipient (public key) of the installed evidence key, read by the project's own key loader.
evidence_recipient() {
    "$VENV/bin/python" -c '
import sys
from base.errors import BodycamError
from evidence.keys import load_evidence_identities
try:
    print(load_evidence_identities(sys.argv[1])[0].to_public())
except BodycamError as exc:
    sys.exit(str(exc))' "$EVIDENCE_KEY"
}

# --- the units' environment -------------------------------------------------------------------

# The environment the units give the office's programs: the data and store paths, and office.env
# (DATABASE_URL ...) read as systemd's EnvironmentFile= reads it (NAME=VALUE lines, # comments, quotes).
load_office_env() {
    local file=$1 line n=0 name value
    OFFICE_ENV=("BODYCAM_OFFICE_DATA=$OFFICE_DATA" "BODYCAM_OFFICE_STORE=$STORE_DIR" "BODYCAM_OFFICE_DEVICES=$DEVICES_DIR")
    [[ -f $file ]] || return 0
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        line=${line#"${line%%[![:space:]]*}"}
        [[ -z $line || $line == [\#\;]* ]] && continue
        # The line itself is not shown: it may hold the database's password.
        [[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || die "$file, line $n: not NAME=VALUE; fix it and run again"
        name=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
        if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
        OFFICE_ENV+=("$name=$value")
    done <"$file"
}

# as_receiver COMMAND...: as the receiver's user with the units' environment and UMask=0007, so that what
# it creates (the SQLite catalog, the office key) belongs to the receiver's group as the services expect.
# (setpriv rather than runuser: no PAM session, nothing in the system's log for each step.)
as_receiver() {
    with_umask 007 setpriv --reuid="$RECEIVER_USER" --regid="$RECEIVER_USER" --init-groups \
        env "${OFFICE_ENV[@]}" "$@"
}

# --- configuration and catalog ----------------------------------------------------------------

ensure_receiver_config() {
    if [[ -f $RECEIVER_CONFIG ]]; then
        ok "receiver config $RECEIVER_CONFIG kept as it is"
    else
        change "write $RECEIVER_CONFIG from the documented example (catalog = true; edit [mqtt])" \
            write_receiver_config
        RESTART[$RECEIVER]=1
    fi
    ensure_mode "$RECEIVER_CONFIG" 640 root "$RECEIVER_USER"
}

write_receiver_config() {
    local draft
    draft=$(mktemp)
    {
        printf '# Written by install-office.sh from "bodycam-office receiver --example". Edit freely: it is never\n'
        printf '# overwritten. Check it with: runuser -u bodycam-receiver -- bodycam-office receiver --check --config %s\n\n' \
            "$RECEIVER_CONFIG"
        "$OFFICE_CLI" receiver --example
    } >"$draft"
    set_toml_key "$draft" receiver catalog true
    install -m 640 -o root -g "$RECEIVER_USER" "$draft" "$RECEIVER_CONFIG"
    rm -f "$draft"
}

readonly PENDING_MIGRATIONS='
import sys
from base.errors import BodycamError
try:
    from backoffice.office.bootstrap import setup_django
    setup_django()
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor
    executor = MigrationExecutor(connection)
    print(len(executor.migration_plan(executor.loader.graph.leaf_nodes())))
except (BodycamError, DatabaseError) as exc:
    sys.exit(f"the catalog database cannot be read: {exc}")'

readonly ADMIN_STATE='
import sys
from backoffice.office.bootstrap import setup_django
setup_django()
from django.contrib.auth import get_user_model
user = get_user_model().objects.filter(username=sys.argv[1]).first()
print("missing" if user is None else "admin" if user.groups.filter(name="admin").exists() else "other")'

ensure_catalog() {
    local pending
    if ! have_software || ((DRY_RUN && CHANGES)); then
        change "migrate the catalog database (SQLite in $OFFICE_DATA, or DATABASE_URL from $OFFICE_ENV_FILE)" true
        return
    fi
    pending=$(as_receiver "$VENV/bin/python" -c "$PENDING_MIGRATIONS") ||
        die "check DATABASE_URL in $OFFICE_ENV_FILE (message above), then run install-office.sh again"
    if ((pending == 0)); then
        ok "catalog database migrated"
    else
        change "migrate the catalog database ($pending migration(s))" migrate_catalog
        RESTART[$REVIEW]=1
    fi
}

ensure_admin() {
    [[ -n $ADMIN ]] || return 0
    local state=missing
    if have_software && ! ((DRY_RUN && CHANGES)); then
        state=$(as_receiver "$VENV/bin/python" -c "$ADMIN_STATE" "$ADMIN")
    fi
    case $state in
        admin) ok "admin $ADMIN exists (password unchanged)" ;;
        other) change "give $ADMIN the role admin" as_receiver "$OFFICE_CLI" user "$ADMIN" --role admin ;;
        *) change "create the first admin $ADMIN (password from the terminal or stdin)" create_admin ;;
    esac
}

# SQLite makes a new database file 0644 minus the umask: the review app (the receiver's group) must write it
# (the default catalog.sqlite3, or the sqlite:// file DATABASE_URL names; the units write only here).
migrate_catalog() {
    as_receiver "$OFFICE_CLI" migrate >/dev/null
    find "$OFFICE_DATA" -maxdepth 1 -type f -name '*.sqlite3' -exec chmod g+rw {} +
}

create_admin() {
    as_receiver "$OFFICE_CLI" user "$ADMIN" --role admin --password >/dev/null
}

# --- units ------------------------------------------------------------------------------------

ensure_office_units() {
    local unit before
    for unit in "${OFFICE_UNITS[@]}"; do
        if [[ -f $UNIT_DIR/$unit ]] && cmp -s "$SOURCE_DIR/systemd/$unit" "$UNIT_DIR/$unit"; then
            ok "unit $UNIT_DIR/$unit"
        else
            change "install unit $UNIT_DIR/$unit" install -m 644 -o root -g root "$SOURCE_DIR/systemd/$unit" "$UNIT_DIR/$unit"
            RESTART[$unit]=1
            UNITS_CHANGED=1
        fi
    done
    # The receiver records each stored segment in the catalog (catalog = true): it needs the catalog's
    # settings and may write the office's data (docs/BACKOFFICE.md, "Running it with systemd").
    before=$CHANGES
    ensure_file_content "$RECEIVER_DROPIN" "$(printf '%s\n' \
        '# Written by install-office.sh: the receiver writes the catalog (receiver.catalog = true).' \
        '[Service]' "Environment=BODYCAM_OFFICE_DATA=$OFFICE_DATA" "EnvironmentFile=-$OFFICE_ENV_FILE" \
        "ReadWritePaths=$OFFICE_DATA")"
    if ((CHANGES > before)); then RESTART[$RECEIVER]=1; fi
    if ((UNITS_CHANGED)) && systemd_running; then
        change "reload systemd's unit files" systemctl daemon-reload
    fi
}

# check_ready UNIT: may UNIT start? Its program's own --check decides; the reason goes to NOT_READY.
check_ready() {
    local out
    case $1 in
        "$RECEIVER") out=$(as_receiver "$OFFICE_CLI" receiver --config "$RECEIVER_CONFIG" --check 2>&1) ;;
        "$CUSTODIAN") out=$(env "${OFFICE_ENV[@]}" "$OFFICE_CLI" custodian --check --identity "$EVIDENCE_KEY" \
            --office-key "$OFFICE_KEY" 2>&1) ;;
        *) return 0 ;;
    esac && return 0
    NOT_READY[$1]=${out##*$'\n'}
    NOT_READY[$1]=${NOT_READY[$1]#bodycam: }
    NOT_READY[$1]=${NOT_READY[$1]#bodycam-office: }
    return 1
}

# ensure_service UNIT: enabled at boot and running, once it can start: a unit that cannot (a receiver
# without broker certificates, a custodian without enrolled devices) would only restart every few seconds.
ensure_service() {
    local unit=$1 enabled=0 when=""
    if systemctl is-enabled --quiet "$unit" 2>/dev/null; then enabled=1; fi
    if ! have_software || ((DRY_RUN)); then
        # A plan: the checks need what it would install first, and they open the audit log.
        when=" (if its check passes then)"
    elif ! check_ready "$unit"; then
        if ((enabled)); then
            warn "$unit is enabled but cannot start: ${NOT_READY[$unit]}"
        else
            note "$unit not enabled yet: ${NOT_READY[$unit]}"
        fi
        return
    fi
    if ((enabled)); then
        ok "$unit enabled at boot"
    else
        case $unit in "$RECEIVER" | "$CUSTODIAN") ;; *) when="" ;; esac
        change "enable $unit at boot$when" systemctl enable --quiet "$unit"
    fi
    systemd_running || return 0
    if systemctl is-active --quiet "$unit"; then
        if [[ -n ${RESTART[$unit]:-} ]]; then
            change "restart $unit (software, keys, config or unit changed)" start_unit restart "$unit"
        else
            ok "$unit running"
        fi
    else
        change "start $unit" start_unit start "$unit"
    fi
}

start_unit() {
    systemctl "$1" "$2" || warn "$2 did not start: journalctl -u ${2%.service} shows why"
}

ensure_office_services() {
    if ! systemd_running; then
        note "systemd is not running here (chroot or image build): units are enabled, and start at boot"
    fi
    ensure_service "$CUSTODIAN"
    ensure_service "$REVIEW"
    ensure_service "$RETENTION_TIMER"
    ensure_service "$RECEIVER"
}

# --- uninstall --------------------------------------------------------------------------------

office_uninstall() {
    section "Services"
    local unit removed=0 link path user
    for unit in "$REVIEW" "$RECEIVER" "$RETENTION_TIMER" "$RETENTION" "$CUSTODIAN"; do
        [[ -f $UNIT_DIR/$unit ]] || continue
        if systemd_running; then
            change "stop and disable $unit" systemctl disable --now --quiet "$unit"
        else
            change "disable $unit" systemctl disable --quiet "$unit"
        fi
        change "remove unit $UNIT_DIR/$unit and its drop-ins" rm -rf "$UNIT_DIR/$unit" "$UNIT_DIR/$unit.d"
        removed=1
    done
    if ((removed)) && systemd_running; then
        change "reload systemd's unit files" systemctl daemon-reload
    fi
    ((removed)) || ok "no back-office units installed"
    section "Software"
    for link in "$OFFICE_CLI_LINK" "$CLI_LINK"; do
        if [[ -L $link ]]; then change "remove $link" rm -f "$link"; fi
    done
    if [[ -d $PREFIX ]]; then
        change "remove $PREFIX (virtual environment and documentation)" rm -rf "$PREFIX"
    else
        ok "no $PREFIX"
    fi
    if ((PURGE)); then
        section "Secrets and users"
        for path in "$CUSTODIAN_DIR" "$REVIEW_SECRET" "$OFFICE_KEY" "$OFFICE_RECEIPT_KEY" "$MQTT_DIR" \
            "$OFFICE_ENV_FILE" "$RECEIVER_CONFIG"; do
            if [[ -e $path ]]; then change "remove $path" rm -rf "$path"; fi
        done
        for user in "$REVIEW_USER" "$CUSTODIAN_USER"; do
            if id -u "$user" >/dev/null 2>&1; then change "remove user $user" userdel "$user"; fi
        done
        if getent group "$CUSTODIAN_USER" >/dev/null; then
            change "remove group $CUSTODIAN_USER" groupdel "$CUSTODIAN_USER"
        fi
    fi
    section "Kept"
    say "  The evidence store $STORE_ROOT, the catalog and the signed audit log in $OFFICE_DATA (with"
    say "  office.pub, which verifies it), the enrolled devices $DEVICES_DIR, $OFFICE_RECEIPT_PUB and the user"
    say "  $RECEIVER_USER that owns them: install-office.sh never deletes evidence or its records."
    if ((!PURGE)); then
        say "  Also kept: keys, secrets, config and users; run install-office.sh again to reinstall with them,"
        say "  or --uninstall --purge to remove the secrets and the custodian's and review app's users."
    fi
}

# --- summary ----------------------------------------------------------------------------------

office_next_steps() {
    local n=1 devices=("$DEVICES_DIR"/*.pub)
    section "Back office"
    [[ -n $RECIPIENT ]] && say "  The custodian decrypts recordings sealed to: $RECIPIENT"
    [[ -f $OFFICE_RECEIPT_PUB ]] && say "  Receipt key for the devices ($OFFICE_RECEIPT_PUB): $(<"$OFFICE_RECEIPT_PUB")"
    [[ -f $OFFICE_PUB ]] && say "  Office audit log key ($OFFICE_PUB): $(<"$OFFICE_PUB")"
    section "Next steps"
    say "  $n. Devices: each needs this receipt key and the evidence.pub of the recipient above:"
    say "     sudo ./install.sh --receipt-key receipt.pub --recipients evidence.pub"
    n=$((n + 1))
    if ((${#devices[@]} == 0)); then
        say "  $n. Enrol the devices: copy each device's device.pub into $DEVICES_DIR/ (e.g. cam-0042.pub)."
        n=$((n + 1))
    fi
    if [[ -n ${NOT_READY[$RECEIVER]:-} || -n ${NOT_READY[$CUSTODIAN]:-} ]]; then
        say "  $n. Receiver and custodian start once their checks pass: put the broker's host into [mqtt] of"
        say "     $RECEIVER_CONFIG and the receiver's CA, certificate and key into $MQTT_DIR/, enrol a"
        say "     device, then run install-office.sh again (it enables and starts them)."
        n=$((n + 1))
    fi
    say "  $n. People: sudo runuser -u $RECEIVER_USER -- bodycam-office user NAME --role ROLE --password (roles"
    say "     officer, reviewer, supervisor, data-protection, admin; docs/REVIEW.md; with PostgreSQL give it"
    say "     DATABASE_URL from $OFFICE_ENV_FILE)."
    n=$((n + 1))
    say "  $n. The review app listens on $REVIEW_URL only. Put nginx with the city's TLS certificate in"
    say "     front of it (example in $PREFIX/docs/REVIEW.md, \"Behind nginx with TLS\") and name the host"
    say "     in $OFFICE_ENV_FILE (mode 0600): BODYCAM_REVIEW_HOSTS=sichtung.stadt.example, then"
    say "     systemctl restart $REVIEW. PostgreSQL: DATABASE_URL=postgresql://... in the same file."
    n=$((n + 1))
    say "  $n. Check: systemctl status bodycam-receiver bodycam-custodian bodycam-review; the audit log:"
    say "     bodycam-office audit verify --pub $OFFICE_PUB"
}

office_install() {
    say "bodycam install-office.sh: back office, source $SOURCE_DIR$( ((DRY_RUN)) && printf ' (dry run: nothing is changed)')"
    section "Debian packages"
    ensure_debian_packages "${OFFICE_PACKAGES[@]}"
    section "Users"
    ensure_office_users
    section "Software"
    ensure_office_software
    section "Directories"
    ensure_office_dirs
    load_office_env "$OFFICE_ENV_FILE"
    section "Keys and secrets"
    ensure_office_keys
    section "Receiver config and catalog"
    ensure_receiver_config
    ensure_catalog
    ensure_admin
    section "Services"
    ensure_office_units
    ensure_office_services
    office_next_steps
}

office_main() {
    parse_office_args "$@"
    office_preflight
    trap 'on_error "$LINENO" "$BASH_COMMAND"' ERR
    set -E
    cd /
    if ((UNINSTALL)); then
        say "bodycam install-office.sh: uninstall$( ((PURGE)) && printf ' and purge')$( ((DRY_RUN)) && printf ' (dry run: nothing is changed)')"
        office_uninstall
    else
        office_install
    fi
    summary
}

# Sourcing the file (tests) defines the functions without running anything.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    office_main "$@"
fi

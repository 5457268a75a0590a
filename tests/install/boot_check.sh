#!/bin/sh
# Runs inside the installed system booted with systemd-nspawn (test_chroot.py), as a oneshot unit.
# 1. Starts the real bodycam-agent.service as installed: waits for READY=1 (Type=notify), reads
#    the status file and 'bodycam status', reloads (SIGHUP), stops (SIGTERM).
# 2. Starts the same unit with sandbox_probe.py as ExecStart, which runs the whole evidence chain
#    (bodycam demo) under the unit's hardening.
# Results go to /boot-check/ for the test to read; then the container powers off.
set -u
out=/boot-check
mkdir -p "$out"
unit=bodycam-agent.service
py=/opt/bodycam/venv/bin/python

record() { printf '%s=%s\n' "$1" "$2" >>"$out/result"; }

systemctl start "$unit"
record real_start $?
record real_state "$(systemctl show -p ActiveState --value "$unit")"
record real_user "$(systemctl show -p User --value "$unit")"
sleep 3
cp /run/bodycam/status.json "$out/status.json" 2>/dev/null
"$py" -c 'import argparse, sys; from agent import doctor_cli
sys.exit(doctor_cli.cmd_status(argparse.Namespace(config="/etc/bodycam/agent.toml", file=None, json=False)))' \
    >"$out/status.txt" 2>&1
record status_rc $?
systemctl reload "$unit"
record reload $?
sleep 1
record after_reload "$(systemctl show -p ActiveState --value "$unit")"
systemctl stop "$unit"
record real_stop $?
record real_result "$(systemctl show -p Result --value "$unit")"
journalctl -u "$unit" --no-pager -o cat >"$out/journal-real"

mkdir -p "/etc/systemd/system/$unit.d"
cat >"/etc/systemd/system/$unit.d/zz-probe.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/opt/bodycam/venv/bin/python /usr/local/lib/bodycam-sandbox-probe.py
TimeoutStartSec=300
EOF
systemctl daemon-reload
systemctl start "$unit"
record probe_start $?
cp /var/lib/bodycam/probe.json "$out/probe.json" 2>/dev/null
systemctl stop "$unit"
record probe_stop $?
journalctl -u "$unit" --no-pager -o cat >"$out/journal-probe"
rm -f "/etc/systemd/system/$unit.d/zz-probe.conf" /var/lib/bodycam/probe.json
rm -rf /var/lib/bodycam/demo
systemctl poweroff --no-block

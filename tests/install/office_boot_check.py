"""Runs inside the back office installed by install-office.sh and booted with systemd-nspawn
(test_office_install.py), as a oneshot unit after the office's services started at boot.

It looks at the running services from outside, as IT would: the units' states, the custodian's socket
(owner, group, mode; who may connect), the evidence key (the custodian's credential, no user may read the
file), the review app on 127.0.0.1 (its login page, a sign-in by the admin install-office.sh created), a
request the custodian refuses, the retention job, and `bodycam-office audit verify` over the lines these
services wrote. Results go to /boot-check/result.json for the test; then the container powers off.
"""

from __future__ import annotations

import grp
import hashlib
import http.client
import json
import os
import pwd
import re
import stat
import subprocess
import sys
import time
import traceback
from pathlib import Path

OUT = Path("/boot-check")
PY = "/opt/bodycam/venv/bin/python"
OFFICE = "/opt/bodycam/venv/bin/bodycam-office"
SOCKET = "/run/bodycam-custodian/custodian.sock"
EVIDENCE_KEY = "/etc/bodycam/custodian/evidence.key"
UNITS = ("bodycam-custodian.service", "bodycam-review.service", "bodycam-receiver.service",
         "bodycam-office-retention.timer")
ADMIN, PASSWORD = sys.argv[1], sys.argv[2]


def run(*cmd: str, user: str | None = None, timeout: float = 120) -> dict:
    if user:  # the user's own groups from /etc/group, as a login would have them
        cmd = ("setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}", "--init-groups", *cmd)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return {"rc": out.returncode, "out": (out.stdout + out.stderr)[-3000:]}


def unit_state(unit: str) -> dict:
    out = run("systemctl", "show", "-p", "ActiveState", "-p", "SubState", "-p", "Result", "-p", "UnitFileState",
              unit)["out"]
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_for_units(timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(unit_state(u).get("ActiveState") == "active" for u in UNITS) and os.path.exists(SOCKET):
            return
        time.sleep(1)


def owner(path: str) -> dict:
    st = os.stat(path)
    return {"mode": oct(stat.S_IMODE(st.st_mode)), "user": pwd.getpwuid(st.st_uid).pw_name,
            "group": grp.getgrgid(st.st_gid).gr_name}


CONNECT = f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({SOCKET!r}); print('connected')"
READ_KEY = f"print(len(open({EVIDENCE_KEY!r}).read()))"
REFUSED = f"""
from backoffice.custody.client import CustodianClient, CustodianRefused
try:
    CustodianClient({SOCKET!r}).open_segment(b"not a ticket", "cam-0042-0000000001")
except CustodianRefused as exc:
    print("refused", exc.code)
"""


def socket_access() -> dict:
    found = {user: run(PY, "-c", CONNECT, user=user) for user in ("bodycam-review", "bodycam-receiver")}
    # as the review unit runs: in a user namespace of its own (PrivateUsers=), where only its uid is mapped and
    # the custodian's group appears unmapped (nogroup)
    found["review-unit-sandbox"] = run("unshare", "--user", "--map-current-user", PY, "-c", CONNECT,
                                       user="bodycam-review")
    return found


def evidence_key() -> dict:
    """Who can read the key: its file, its copy in the custodian's credentials, the review app's credentials."""
    creds = Path("/run/credentials")
    digest = hashlib.sha256(Path(EVIDENCE_KEY).read_bytes()).hexdigest()
    custodian = creds / "bodycam-custodian.service"
    return {"file": owner(EVIDENCE_KEY), "dir": owner(os.path.dirname(EVIDENCE_KEY)),
            "custodian_credentials": sorted(p.name for p in custodian.iterdir()),
            "credential_matches": hashlib.sha256((custodian / "evidence.key").read_bytes()).hexdigest() == digest,
            "review_credentials": sorted(p.name for p in (creds / "bodycam-review.service").iterdir()),
            "read_as": {user: run(PY, "-c", READ_KEY, user=user)
                        for user in ("bodycam-custodian", "bodycam-review", "bodycam-receiver")}}


def request(method: str, path: str, body: str = "", headers: dict | None = None) -> tuple[int, dict, str]:
    """One request to the review app as nginx would pass it on (HTTPS ended in front, the unit sets BEHIND_TLS)."""
    conn = http.client.HTTPConnection("127.0.0.1", 8470, timeout=30)
    conn.request(method, path, body=body.encode(), headers={"X-Forwarded-Proto": "https", **(headers or {})})
    response = conn.getresponse()
    text = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, text


def review_app() -> dict:
    status, headers, page = request("GET", "/login/")
    cookie = re.search(r"csrftoken=([^;]+)", headers.get("set-cookie", ""))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    result = {"login_status": status, "login_title": title.group(1).strip() if title else "",
              "csp": headers.get("content-security-policy", ""), "cookie_secure": "Secure" in headers.get("set-cookie", "")}
    if not (cookie and token):
        return result | {"page": page[-2000:]}
    from urllib.parse import urlencode

    form = urlencode({"csrfmiddlewaretoken": token[1], "username": ADMIN, "password": PASSWORD, "next": "/"})
    status, headers, page = request("POST", "/login/", form, {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie[1]}",
        "Origin": "https://127.0.0.1:8470", "Referer": "https://127.0.0.1:8470/login/"})
    other_host, _, _ = request("GET", "/login/", headers={"Host": "evil.example"})
    return result | {"signin_status": status, "signin_location": headers.get("location", ""),
                     "other_host_status": other_host,
                     "session_cookie": "sessionid=" in headers.get("set-cookie", ""),
                     "signin_page": page[-1500:] if status != 302 else ""}


def retention() -> dict:
    started = run("systemctl", "start", "bodycam-office-retention.service", timeout=300)
    return started | unit_state("bodycam-office-retention.service")


def audit() -> dict:
    log = Path("/var/lib/bodycam-office/audit/office-audit.jsonl")
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    events = [line["event"] for line in lines]
    peers = [line["fields"].get("peer") for line in lines if line["event"] == "decryption_refused"]
    verify = run("env", "BODYCAM_OFFICE_DATA=/var/lib/bodycam-office", OFFICE, "audit", "verify", "--pub",
                 "/var/lib/bodycam-office/keys/office.pub")
    review_uid = pwd.getpwnam("bodycam-review").pw_uid
    return {"events": events, "verify": verify, "log": owner(str(log)), "lock": owner(f"{log}.lock"),
            "refusal_peers": peers, "review_uid": review_uid}


def step(fn):
    try:
        return fn()
    except Exception:  # recorded for the test to show
        return {"error": traceback.format_exc()[-2000:]}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    started = time.monotonic()
    wait_for_units()
    results = {"waited_s": round(time.monotonic() - started, 1),
               "units": {u: unit_state(u) for u in UNITS},
               "socket": step(lambda: owner(SOCKET) | {"dir": owner(os.path.dirname(SOCKET))}),
               "socket_access": step(socket_access),
               "evidence_key": step(evidence_key),
               "review": step(review_app),
               "refused": step(lambda: run(PY, "-c", REFUSED, user="bodycam-review")),
               "retention": step(retention)}
    results["audit"] = step(audit)
    results["journal"] = {u: run("journalctl", "-u", u, "--no-pager", "-o", "cat", "-n", "40")["out"]
                          for u in (*UNITS, "bodycam-office-retention.service")}
    (OUT / "result.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    try:
        main()
    finally:
        subprocess.run(["systemctl", "poweroff", "--no-block"])

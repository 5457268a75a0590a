"""`bodycam verify-audit`: a device's audit log checked with its enrolled public key, and against a published
head, which is what catches lines cut off its end."""

import json

from evidence import audit
from evidence.audit import AuditLog
from agent.cli import main
from evidence.keys import load_signing_key


def write_log(env, lines=10):
    path = env.root / "audit.jsonl"
    with AuditLog(path, load_signing_key(env.device / "device.key").private) as log:
        for i in range(lines):
            log.append(audit.SEGMENT_SEALED, stem=f"kod-07-{i + 1:010d}", seq=i + 1)
        return path, log.head


def verify_audit(capsys, *args):
    code = main(["verify-audit", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_truncated_audit_log_is_caught_against_its_published_head(env, capsys, tmp_path):
    path, head = write_log(env)
    code, out = verify_audit(capsys, path, "--devices", env.device, "--head", f"{head.seq}:{head.hash}")
    assert code == 0 and f"OK, {head.seq + 1} lines" in out

    data = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(data[:-3]))  # the last three lines cut off: the file alone still verifies
    code, out = verify_audit(capsys, path, "--devices", env.device)
    assert code == 0
    code, out = verify_audit(capsys, path, "--devices", env.device, "--head", f"{head.seq}:{head.hash}")
    assert code == 1 and "cut off the end" in out
    telemetry = tmp_path / "telemetry.json"
    telemetry.write_text(json.dumps({"device": "kod-07", "audit_head": head.as_dict()}))
    code, out = verify_audit(capsys, path, "--devices", env.device / "device.pub", "--head", telemetry)
    assert code == 1 and "cut off the end" in out


def test_an_altered_line_fails_and_bad_input_exits_2(env, capsys, tmp_path):
    path, _ = write_log(env, 3)
    path.write_bytes(path.read_bytes().replace(b"kod-07-0000000002", b"kod-07-0000000009"))
    code, out = verify_audit(capsys, path, "--devices", env.device)
    assert code == 1 and "BAD at line 3" in out and "altered" in out
    code, out = verify_audit(capsys, tmp_path / "nope.jsonl", "--devices", env.device)
    assert code == 2 and out.startswith("bodycam: ") and "Traceback" not in out
    code, out = verify_audit(capsys, path, "--devices", env.device, "--head", "x:y")
    assert code == 2 and "--head" in out

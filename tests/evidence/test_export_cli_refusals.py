"""`bodycam export` refusals: the root cause of a broken manifest is shown, stderr has no stray lines, and an
incident of which nothing verifies is a failed verification (exit 1), not bad usage (exit 2)."""

import json
import subprocess
import sys

from .conftest import cut


def export(env, out, *extra):
    return subprocess.run([sys.executable, "-m", "agent.cli", "export", "--identity", str(env.identity),
                           "--out", str(out), "--devices", str(env.device), *map(str, extra), str(env.spool)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_broken_manifest_is_named_with_its_root_cause(env, frames_60, tmp_path):
    sealed = env.seal_all(cut(frames_60, "inc-1"))
    path = env.spool / sealed[2].manifest_name
    doc = json.loads(path.read_bytes())
    doc["frame_count"] += 1  # an edit after signing: the signature no longer holds
    path.write_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    proc = export(env, tmp_path / "x.mp4")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == f"BAD  {sealed[2].stem}: manifest lists a different number of frame times than frame_count"
    assert "" not in lines  # no stray empty line
    assert lines[-1].startswith("bodycam: incident inc-1 of device kod-07 did not verify completely")


def test_an_incident_of_which_nothing_verifies_exits_1(env, frames_60, tmp_path):
    sealed = env.seal_all(cut(frames_60[:20], "inc-1"))
    for s in sealed:  # every manifest altered after signing
        path = env.spool / s.manifest_name
        path.write_bytes(path.read_bytes().replace(b'"site":"duisburg"', b'"site":"dortmund"'))
    proc = export(env, tmp_path / "x.mp4", "--allow-gaps")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert "" not in lines
    assert f"BAD  {sealed[0].stem}: manifest signature does not verify (manifest altered or not signed by this " \
           "device)" in lines
    assert lines[-1] == "bodycam: no segment in the given paths verified; nothing to export"


def test_a_failure_after_the_progress_bar_leaves_no_empty_line(env, frames_60, tmp_path):
    env.seal_all(cut(frames_60, "inc-1"))
    proc = export(env, tmp_path / "x.mp4", "--identity", env.escrow / "evidence.key")  # the wrong key
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert "" not in lines, proc.stderr
    assert lines == ["[..............................] 0/6 segments",
                     "bodycam: the evidence key does not match any recipient of this segment (wrong evidence.key)"]

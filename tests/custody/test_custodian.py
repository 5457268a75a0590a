"""The key custodian as a separate process on a Unix socket: it decrypts exactly what stock age decrypts, for a
valid ticket only, logs every decryption with its purpose before the first byte leaves, and answers every bad
request with a clear refusal (logged too) that changes nothing else."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import threading
from datetime import timedelta

import pytest

from tests.evidence.conftest import AGE

from .conftest import CustodianProcess


def _log(world) -> list[tuple[str, dict]]:
    return [(d["event"], d["fields"]) for d in map(json.loads, world.log_path.read_text().splitlines())]


def _grant(world, sealed_frames, *, kind="playback", purpose="Anzeige 12/2025", stems=None, user=None):
    from backoffice.catalog.models import Access, Incident
    from backoffice.custody.ticket import issue_ticket

    inc = Incident.objects.get(incident_id="inc-1")
    user = user or world.user("rita", "reviewer")
    access = Access.open(world.office, user=user, incident=inc, kind=kind, purpose=purpose)
    return access, issue_ticket(world.office, access, stems=stems)


@pytest.fixture
def incident(world, frames_30):
    sealed = world.record_incident("inc-1", frames_30)
    world.ingest()
    return sealed


def _age_decrypt(world, sealed) -> bytes:
    path = world.store / "duisburg" / "kod-07" / "inc-1" / f"{sealed.stem}.age"
    return subprocess.run([AGE, "-d", "-i", str(world.env.identity), str(path)], check=True,
                          capture_output=True).stdout


def _store_state(world) -> dict:
    return {str(p.relative_to(world.store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(world.store.rglob("*")) if p.is_file()}


def test_it_streams_what_stock_age_decrypts_and_logs_each_decryption_with_its_purpose(world, incident, custodian):
    from backoffice.custody.client import CustodianClient
    from evidence.audit import verify_log

    access, ticket = _grant(world, incident)
    client = CustodianClient(custodian.socket)
    for sealed in incident:
        with client.open_segment(ticket, sealed.stem) as stream:
            assert stream.format == "bodycam-segment/1"
            chunks = list(stream)
        assert stream.complete and b"".join(chunks) == _age_decrypt(world, sealed)
    decrypted = [f for e, f in _log(world) if e == "segment_decrypted"]
    assert [(f["stem"], f["access"], f["by"], f["purpose"], f["kind"], f["incident"]) for f in decrypted] == [
        (s.stem, access.pk, "rita", "Anzeige 12/2025", "playback", "kod-07/inc-1") for s in incident]
    assert [f["bytes"] for f in decrypted] == [len(_age_decrypt(world, s)) for s in incident]
    assert all(f["peer"].startswith("uid=") for f in decrypted)
    # the custodian and this process wrote one chain, signed with the office key
    assert verify_log(world.log_path, world.office.signer.public.key).ok


def test_every_bad_request_is_refused_clearly_logged_and_changes_nothing_else(world, incident, custodian, tmp_path):
    from backoffice.custody.client import CustodianClient, CustodianRefused
    from backoffice.custody.ticket import sign_ticket
    from evidence.keys import generate_office_key, load_office_signing_key

    access, ticket = _grant(world, incident, stems=[incident[0].stem])
    now = world.clock.now
    generate_office_key(tmp_path)
    stranger = load_office_signing_key(tmp_path / "office.key")
    fields = dict(access=access.pk, user="rita", kind="playback", purpose="Anzeige 12/2025", site="duisburg",
                  device_id="kod-07", incident_id="inc-1", stems=[s.stem for s in incident])
    edited = json.loads(ticket)
    edited["stems"] = fields["stems"]
    client = CustodianClient(custodian.socket)
    cases = [
        (json.dumps(edited), incident[1].stem, "signature"),
        (sign_ticket(stranger, **fields, issued_at=now, expires_at=now + timedelta(minutes=10)), incident[1].stem,
         "signature"),
        (sign_ticket(world.office.signer, **fields, issued_at=now - timedelta(minutes=11),
                     expires_at=now - timedelta(minutes=1)), incident[0].stem, "expired"),
        (ticket, incident[1].stem, "not_granted"),
        (ticket, "../../../etc/passwd", "not_granted"),
        ("{}", incident[0].stem, "malformed"),
    ]
    before = _store_state(world)
    lines_before = len(_log(world))
    for data, stem, code in cases:
        with pytest.raises(CustodianRefused) as refused:
            client.open_segment(data, stem)
        assert refused.value.code == code, str(refused.value)
        assert "refused" in str(refused.value)
    # a request that is not one at all
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(custodian.socket))
        raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := raw.recv(4096):
            reply += chunk
    assert reply[:1] == b"E" and b"bad_request" in reply
    assert _store_state(world) == before
    new = _log(world)[lines_before:]
    assert [e for e, _ in new] == ["decryption_refused"] * (len(cases) + 1)
    assert [f["code"] for _, f in new] == [c for _, _, c in cases] + ["bad_request"]
    # a verified ticket names who asked and why; a forged one is not believed
    assert new[3][1]["by"] == "rita" and new[3][1]["access"] == access.pk and new[3][1]["purpose"] == "Anzeige 12/2025"
    assert "by" not in new[0][1] and "access" not in new[1][1]
    # and the custodian still serves the granted segment
    with client.open_segment(ticket, incident[0].stem) as stream:
        assert stream.read() == _age_decrypt(world, incident[0])


def test_a_deleted_or_tampered_segment_is_refused_before_anything_is_decrypted(world, incident, custodian):
    from backoffice.custody.client import CustodianClient, CustodianRefused

    _, ticket = _grant(world, incident)
    folder = world.store / "duisburg" / "kod-07" / "inc-1"
    (folder / f"{incident[0].stem}.age").unlink()
    damaged = folder / f"{incident[1].stem}.age"
    data = bytearray(damaged.read_bytes())
    data[-20] ^= 0x01
    damaged.write_bytes(bytes(data))
    client = CustodianClient(custodian.socket)
    for stem, code, words in ((incident[0].stem, "unknown_segment", "not in the store"),
                              (incident[1].stem, "verification_failed", "SHA-256 does not match the manifest")):
        with pytest.raises(CustodianRefused, match=words) as refused:
            client.open_segment(ticket, stem)
        assert refused.value.code == code
    assert [e for e, _ in _log(world)].count("segment_decrypted") == 0


def test_several_viewers_at_once_each_get_their_segment_beyond_the_connection_limit(world, incident, socket_dir):
    from datetime import datetime, timezone

    from backoffice.custody.client import CustodianClient

    world.clock.now = datetime.now(timezone.utc)
    proc = CustodianProcess(world, socket_dir)
    proc.start("--max-clients", "2")
    try:
        _, ticket = _grant(world, incident)
        client = CustodianClient(proc.socket)
        expected = {s.stem: _age_decrypt(world, s) for s in incident}
        results, errors = {}, []
        start = threading.Barrier(9)

        def viewer(n):
            stem = incident[n % 3].stem
            try:
                start.wait(10)
                with client.open_segment(ticket, stem) as stream:
                    results[n] = (stem, stream.read())
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=viewer, args=(n,), name=f"Viewer-{n}") for n in range(9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors and len(results) == 9
        assert all(data == expected[stem] for stem, data in results.values())
    finally:
        assert proc.stop() == 0
    assert not proc.socket.exists()  # removed at a clean stop


@pytest.fixture
def in_process(world, socket_dir):
    """The custodian's server in this process (on the world's clock), bound but not yet serving: ``serve()``
    starts it, so a test can queue connections first."""
    from backoffice.custody.custodian import Custodian, CustodianServer
    from evidence.keys import load_evidence_identities

    server = CustodianServer(Custodian(world.office, load_evidence_identities(world.env.identity), world.env.devices),
                             socket_dir / "c.sock")
    server.bind()
    stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(stop,), name="TestCustodianServer")
    server.serve = thread.start
    yield server
    stop.set()
    if thread.is_alive():
        thread.join(10)
    server.close()


def _request(ticket: bytes, stem: str) -> bytes:
    payload = json.dumps({"ticket": ticket.decode(), "stem": stem}).encode()
    return b"Q" + len(payload).to_bytes(4, "big") + payload


def test_a_client_gone_before_the_plaintext_is_logged_as_an_interrupted_decryption(world, incident, in_process):
    from tests.support import wait_until

    access, ticket = _grant(world, incident)
    with socket.socket(socket.AF_UNIX) as gone:
        gone.connect(str(in_process.path))
        gone.sendall(_request(ticket, incident[0].stem))
    in_process.serve()
    wait_until(lambda: any(e == "decryption_interrupted" for e, _ in _log(world)), 10, what="the interruption line")
    events = [(e, f) for e, f in _log(world) if e in ("segment_decrypted", "decryption_interrupted")]
    assert [e for e, _ in events] == ["segment_decrypted", "decryption_interrupted"]
    assert events[1][1] == {"access": access.pk, "by": "rita", "incident": "kod-07/inc-1", "stem": incident[0].stem,
                            "sent": 0, "reason": "the client closed the connection"}


def _damaged(data: bytes, identity) -> bytes:
    out = bytearray(data)
    out[-5] ^= 0x01  # inside the last chunk: age refuses it when it gets there
    return bytes(out)


def _encrypted_again(data: bytes, identity) -> bytes:
    """Another valid age file of the same plaintext: only the hash can tell."""
    import pyrage

    from evidence.keys import load_evidence_identities

    ids = load_evidence_identities(identity)
    return pyrage.encrypt(pyrage.decrypt(data, ids), [ids[0].to_public()])


@pytest.mark.parametrize("swap,reason", [(_damaged, "damaged"), (_encrypted_again, "SHA-256 no longer matches")])
def test_a_ciphertext_changed_after_its_check_breaks_the_stream_off_and_the_client_knows(world, incident, in_process,
                                                                                          monkeypatch, swap, reason):
    """The hash is taken again on the very bytes decrypted: a file swapped between the check and the read is caught."""
    from backoffice.custody import custodian as module
    from backoffice.custody.client import CustodianClient, CustodianError

    real = module.verify_paths

    def check_then_swap(paths, devices):
        report = real(paths, devices)
        age = next(p for p in paths if p.name.endswith(".age"))
        age.write_bytes(swap(age.read_bytes(), world.env.identity))
        return report

    monkeypatch.setattr(module, "verify_paths", check_then_swap)
    _, ticket = _grant(world, incident)
    in_process.serve()
    with pytest.raises(CustodianError, match="broke off"):
        CustodianClient(in_process.path).open_segment(ticket, incident[0].stem).read()
    interrupted = [f for e, f in _log(world) if e == "decryption_interrupted"]
    assert len(interrupted) == 1 and reason in interrupted[0]["reason"]


def test_a_connection_that_asks_nothing_is_no_request_and_not_logged(world, incident):
    """A health probe (connect, close) is not a refusal: the audit log records requests, not knocks."""
    from backoffice.custody.custodian import Custodian
    from evidence.keys import load_evidence_identities

    custodian = Custodian(world.office, load_evidence_identities(world.env.identity), world.env.devices)
    before = world.log_path.read_bytes()
    ours, theirs = socket.socketpair()
    theirs.close()
    with ours:
        custodian.serve(ours, "probe")
    assert world.log_path.read_bytes() == before
    ours, theirs = socket.socketpair()  # half a frame is a bad request, and logged
    theirs.sendall(b"Q\x00\x00")
    theirs.close()
    with ours:
        custodian.serve(ours, "probe")
    assert [e for e, _ in _log(world)][-1] == "decryption_refused"

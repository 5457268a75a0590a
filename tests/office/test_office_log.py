"""The office audit log is written by several processes (the receiver, the retention timer, commands):
their lines must form one chain."""

from __future__ import annotations

from evidence.audit import verify_log
from evidence.keys import generate_office_key, load_office_public_key


def test_two_writers_on_one_log_keep_one_unbroken_chain(tmp_path):
    from backoffice.catalog.office import open_office

    generate_office_key(tmp_path)
    log = tmp_path / "audit" / "office-audit.jsonl"
    receiver = open_office(tmp_path / "store", tmp_path / "office.key", log)
    timer = open_office(tmp_path / "store", tmp_path / "office.key", log)
    for i in range(3):
        receiver.record("segment_cataloged", n=i)
        timer.record("retention_run", n=i)
    receiver.close()
    timer.close()
    report = verify_log(log, load_office_public_key(tmp_path / "office.pub").key)
    assert report.ok, report.summary()
    assert report.lines == 7 and report.head.seq == 6  # log_created + six events


def test_under_the_services_umask_the_log_is_writable_by_their_group(tmp_path):
    """The review app runs as its own user in the receiver's group (systemd/bodycam-review.service)."""
    import os
    import stat

    from backoffice.catalog.office import open_office

    generate_office_key(tmp_path)
    log = tmp_path / "audit" / "office-audit.jsonl"
    old = os.umask(0o007)
    try:
        open_office(tmp_path / "store", tmp_path / "office.key", log).close()
    finally:
        os.umask(old)
    for path in (log, log.with_name(log.name + ".lock")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o660, path

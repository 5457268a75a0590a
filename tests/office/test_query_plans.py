"""Every query of the incident list, the reports, the receiver's recording and the retention run is an index
look-up on SQLite, never a full scan of a table that grows with the city's year.

A large city's year is 1 M incidents, 10 M segments and millions of accesses (bench/bench_catalog.py): a
full scan of one of them costs seconds. SQLite plans without statistics here (the catalog never runs
ANALYZE), so the plan chosen on this small catalog is the plan on a large one.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

#: Tables small enough to scan: sites, devices, people, roles.
SMALL = re.compile(r"^(catalog_site|catalog_device|auth_\w+|django_\w+)$")
SCAN = re.compile(r"\bSCAN (\S+)")


def _plans(queries) -> list[tuple[str, list[str]]]:
    """(sql, plan lines) for each captured statement that reads a table."""
    from django.db import connection

    out = []
    with connection.cursor() as cur:
        for q in queries:
            sql = q["sql"]
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                continue
            out.append((sql, [row[-1] for row in cur.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]))
    return out


def _full_scans(queries) -> list[str]:
    """Plan lines that scan a table other than the small ones (aliases resolved from the SQL)."""
    bad = []
    for sql, plan in _plans(queries):
        aliases = dict(re.findall(r'"(\w+)" (U\d+|T\d+)\b', sql))
        tables = {alias: table for table, alias in aliases.items()}
        for line in plan:
            scanned = SCAN.search(line)
            if scanned and scanned.group(1) != "CONSTANT" and not SMALL.match(tables.get(scanned.group(1),
                                                                                          scanned.group(1))):
                bad.append(f"{line}\n    in {sql}")
    return bad


@pytest.fixture
def catalog(world, frames_30):
    """Two incidents with accesses, one held."""
    from backoffice.catalog.models import Access, Incident

    for name in ("inc-1", "inc-2"):
        world.record_incident(name, frames_30)
    world.ingest()
    reviewer = world.user("rita", "reviewer")
    for inc in Incident.objects.all():
        Access.open(world.office, user=reviewer, incident=inc, kind=Access.PLAYBACK, purpose="Anzeige")
    Incident.objects.get(incident_id="inc-2").place_hold(world.office, by=reviewer, case_reference="Az. 1",
                                                         reason="evidence")
    return world


def test_the_incident_lists_and_reports_use_indexes(catalog):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from backoffice.catalog import reports
    from backoffice.catalog.models import Device, Incident, Site
    from backoffice.catalog.queries import incident_list

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's plans (PostgreSQL chooses by statistics)")
    inc = Incident.objects.get(incident_id="inc-1")
    site, device, day, now = Site.objects.get(), Device.objects.get(), inc.start.date(), catalog.clock.now
    with CaptureQueriesContext(connection) as captured:
        for listed in (incident_list(site=site, day=day), incident_list(device=device, day=day),
                       incident_list(officer="olga"), incident_list(officer="olga").reverse(),
                       incident_list(site=site, state=Incident.ACTIVE, held=True),
                       incident_list(site=site, day=day, held=False), incident_list(device=device)):
            list(listed[:50])
            listed.count()
        assert [r["incident"] for r in reports.expiring(now, now + timedelta(days=30), limit=50)] == [
            "kod-07/inc-1", "kod-07/inc-2"]
        reports.expiring(now, now + timedelta(days=30), limit=None)
        assert [r["kind"] for r in reports.access_report(inc)] == ["playback"]
        reports.deletions(now - timedelta(days=1), now)
    assert len(captured.captured_queries) > 15
    assert _full_scans(captured.captured_queries) == []


def test_the_retention_run_and_the_receivers_recording_use_indexes(catalog, frames_30):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from backoffice.catalog.models import Incident
    from backoffice.catalog.retention import run_retention

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's plans (PostgreSQL chooses by statistics)")
    catalog.clock.now = Incident.objects.get(incident_id="inc-1").expires_at
    with CaptureQueriesContext(connection) as captured:
        catalog.record_incident("inc-3", frames_30)
        catalog.ingest()  # the reconciliation and record_segment, as the receiver calls it
        report = run_retention(catalog.office)
    assert report.deleted == ["kod-07/inc-1", "kod-07/inc-3"] and report.held == ["kod-07/inc-2"]
    assert _full_scans(captured.captured_queries) == []


def test_a_full_scan_is_seen(catalog):
    """The check itself: a query that must scan is reported."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from backoffice.catalog.models import Segment

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's plans")
    with CaptureQueriesContext(connection) as captured:
        list(Segment.objects.filter(ciphertext_bytes__gt=0)[:5])
    assert len(_full_scans(captured.captured_queries)) == 1

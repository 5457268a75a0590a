"""Migrations that compute something from the rows already there do it right on an existing catalog."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

BEFORE = [("catalog", "0004_indexes_for_a_large_catalog")]
AFTER = [("catalog", "0005_site_longest_incident")]


def test_each_sites_longest_incident_is_measured_from_the_incidents_already_cataloged(db):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    site, device, incident = (old.get_model("catalog", name) for name in ("Site", "Device", "Incident"))
    t0 = datetime(2025, 6, 15, 8, tzinfo=timezone.utc)
    for code, minutes in (("duisburg", (10, 95.5, 3)), ("essen", (1,)), ("moers", ())):
        place = site.objects.create(code=code)
        kod = device.objects.create(device_id=f"kod-{code}", site=place)
        for i, length in enumerate(minutes):
            incident.objects.create(site=place, device=kod, incident_id=f"inc-{i}", start=t0,
                                    end=t0 + timedelta(minutes=length), store_path="x", expires_at=t0)
    executor = MigrationExecutor(connection)  # the graph as it is now, with 0004 applied
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps.get_model("catalog", "Site")
    assert dict(new.objects.values_list("code", "longest_incident_s")) == {"duisburg": 5730, "essen": 60,
                                                                         "moers": 0}

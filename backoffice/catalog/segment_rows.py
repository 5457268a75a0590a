"""The receiver's catalog statements, in SQL built once from the models.

Every stored segment is recorded before its receipt goes out, on the receiver's acknowledging thread, which
shares the interpreter with the threads that take in the chunks: what it spends in Python is taken from
them. The ORM compiled these statements anew for every batch, about half of the catalog's CPU a segment
(docs/BENCHMARKS.md, "Catalog at a large city's scale"). They never change, so they are built here once,
from the models' ``_meta`` (tables, columns, and each value prepared by its field, as the ORM would), and
the ORM keeps everything else: the first segment of an incident, the rules, the reports.
"""

from __future__ import annotations

import math
from functools import cache

from django.db import connection

from .models import Device, Incident, Segment, Site

#: What a new segment changes in its incident's row.
GROWING_FIELDS = ("start", "end", "frame_count", "pre_event_frames", "expires_at", "officer", "state")

#: A locked incident is read with its site and its device (for its rule and its name), in one row.
_READ = (Incident, Site, Device)


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


@cache
def _locking_select(vendor: str, incidents: int) -> str:
    """``incidents`` incidents by (device id, incident id), with their sites and devices, locked (where the
    database locks rows: SQLite has one writer anyway), in primary-key order so that two receivers locking
    the same incidents cannot deadlock."""
    i, s, d = (_quote(m._meta.db_table) for m in _READ)
    columns = [f"{_quote(m._meta.db_table)}.{_quote(f.column)}" for m in _READ for f in m._meta.concrete_fields]
    incident_id = f"{i}.{_quote(Incident._meta.get_field('incident_id').column)}"
    device_id = f"{d}.{_quote(Device._meta.get_field('device_id').column)}"
    match = " OR ".join([f"({device_id} = %s AND {incident_id} = %s)"] * incidents)
    lock = ""
    if connection.features.has_select_for_update_of:
        lock = f" FOR UPDATE OF {i}"
    elif connection.features.has_select_for_update:
        lock = " FOR UPDATE"
    return (f"SELECT {', '.join(columns)} FROM {i} "
            f"JOIN {s} ON {s}.{_quote(Site._meta.pk.column)} = {i}.{_quote(Incident._meta.get_field('site').column)} "
            f"JOIN {d} ON {d}.{_quote(Device._meta.pk.column)} = {i}.{_quote(Incident._meta.get_field('device').column)} "
            f"WHERE {match} ORDER BY {i}.{_quote(Incident._meta.pk.column)}{lock}")


@cache
def _readers(vendor: str) -> list[tuple[type, list[str], list[tuple]]]:
    """Per model of :data:`_READ`: its field names, and for each field the converters the ORM applies to what
    the database returns (SQLite's timestamps become aware datetimes, say), with the column they need."""
    readers = []
    for model in _READ:
        fields = model._meta.concrete_fields
        converters = []
        for field in fields:
            column = field.get_col(model._meta.db_table)
            converters.append((connection.ops.get_db_converters(column) + field.get_db_converters(connection), column))
        readers.append((model, [f.attname for f in fields], converters))
    return readers


def _loaded(row) -> Incident:
    """A row of :func:`_locking_select` as the ORM would load it: the incident with its site and device."""
    loaded, at = [], 0
    for model, names, converters in _readers(connection.vendor):
        values = list(row[at:at + len(names)])
        at += len(names)
        for index, (functions, column) in enumerate(converters):
            for function in functions:
                values[index] = function(values[index], column, connection)
        loaded.append(model.from_db(connection.alias, names, values))
    incident, incident.site, incident.device = loaded
    return incident


def locked_incidents(keys: list[tuple[str, str]]) -> dict[tuple[str, str], Incident]:
    """The incidents of ``keys`` (device id, incident id) the catalog holds, locked for this transaction."""
    keys = sorted(set(keys))
    with connection.cursor() as cursor:
        cursor.execute(_locking_select(connection.vendor, len(keys)), [value for key in keys for value in key])
        found = [_loaded(row) for row in cursor.fetchall()]
    return {(i.device.device_id, i.incident_id): i for i in found}


def cover(incident: Incident) -> None:
    """Make its site's :attr:`~.models.Site.longest_incident_s` at least ``incident``'s length (an UPDATE only
    when it grows)."""
    site = incident.site
    length = math.ceil((incident.end - incident.start).total_seconds())
    if length > site.longest_incident_s:
        with connection.cursor() as cursor:
            cursor.execute(_lengthen(connection.vendor), [length, site.pk, length])
        site.longest_incident_s = length


@cache
def _lengthen(vendor: str) -> str:
    longest = _quote(Site._meta.get_field("longest_incident_s").column)
    return (f"UPDATE {_quote(Site._meta.db_table)} SET {longest} = %s "
            f"WHERE {_quote(Site._meta.pk.column)} = %s AND {longest} < %s")


@cache
def _insert(vendor: str, rows: int) -> str:
    table = _quote(Segment._meta.db_table)
    fields = _inserted_fields()
    values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * rows)
    stem = _quote(Segment._meta.get_field("stem").column)
    return (f"INSERT INTO {table} ({', '.join(_quote(f.column) for f in fields)}) VALUES {values} "
            f"ON CONFLICT ({stem}) DO NOTHING RETURNING {stem}")


@cache
def _inserted_fields() -> tuple:
    return tuple(f for f in Segment._meta.concrete_fields if not f.primary_key)


def insert_new(segments: list[Segment]) -> set[str]:
    """Insert those of ``segments`` (distinct stems) the catalog does not hold yet; their stems.

    One statement: a segment offered again after a lost receipt is skipped by the stem's unique index, so
    no look-up goes first."""
    if not segments:
        return set()
    fields = _inserted_fields()
    params = [f.get_db_prep_save(getattr(segment, f.attname), connection) for segment in segments for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_insert(connection.vendor, len(segments)), params)
        return {stem for (stem,) in cursor.fetchall()}


@cache
def _update(vendor: str) -> str:
    fields = [Incident._meta.get_field(name) for name in GROWING_FIELDS]
    return (f"UPDATE {_quote(Incident._meta.db_table)} SET {', '.join(f'{_quote(f.column)} = %s' for f in fields)} "
            f"WHERE {_quote(Incident._meta.pk.column)} = %s")


def save_grown(incident: Incident) -> None:
    """Write what new segments changed in ``incident`` (:data:`GROWING_FIELDS`)."""
    fields = [Incident._meta.get_field(name) for name in GROWING_FIELDS]
    params = [f.get_db_prep_save(getattr(incident, f.attname), connection) for f in fields] + [incident.pk]
    with connection.cursor() as cursor:
        cursor.execute(_update(connection.vendor), params)

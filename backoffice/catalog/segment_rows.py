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
from functools import cache, lru_cache

from django.db import connection

from .models import Device, Incident, Segment, Site

#: What a new segment changes in its incident's row.
GROWING_FIELDS = ("start", "end", "frame_count", "pre_event_frames", "expires_at", "officer", "state")

#: A locked incident is read with its site and its device (for its rule and its name), in one row.
_READ = (Incident, Site, Device)

#: Statements whose text depends on a batch's size are kept for this many sizes (the receiver's batches are
#: a few segments; a reconciliation's are hundreds).
_SIZES_KEPT = 16


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _table(model) -> str:
    return _quote(model._meta.db_table)


def _column(model, name: str, *, qualified: bool = True) -> str:
    """A field's column (``pk`` for the primary key's), quoted, and by default with its table."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    return f"{_table(model)}.{_quote(field.column)}" if qualified else _quote(field.column)


@lru_cache(maxsize=_SIZES_KEPT)
def _locking_select(vendor: str, incidents: int) -> str:
    """``incidents`` incidents by (device id, incident id), with their sites and devices, locked (where the
    database locks rows: SQLite has one writer anyway), in primary-key order so that two receivers locking
    the same incidents cannot deadlock."""
    columns = [f"{_table(m)}.{_quote(f.column)}" for m in _READ for f in m._meta.concrete_fields]
    match = f"({_column(Device, 'device_id')} = %s AND {_column(Incident, 'incident_id')} = %s)"
    lock = ""
    if connection.features.has_select_for_update_of:
        lock = f" FOR UPDATE OF {_table(Incident)}"
    elif connection.features.has_select_for_update:
        lock = " FOR UPDATE"
    return (f"SELECT {', '.join(columns)} FROM {_table(Incident)} "
            f"JOIN {_table(Site)} ON {_column(Site, 'pk')} = {_column(Incident, 'site')} "
            f"JOIN {_table(Device)} ON {_column(Device, 'pk')} = {_column(Incident, 'device')} "
            f"WHERE {' OR '.join([match] * incidents)} ORDER BY {_column(Incident, 'pk')}{lock}")


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
    longest = _column(Site, "longest_incident_s", qualified=False)
    return (f"UPDATE {_table(Site)} SET {longest} = %s "
            f"WHERE {_column(Site, 'pk', qualified=False)} = %s AND {longest} < %s")


@lru_cache(maxsize=_SIZES_KEPT)
def _insert(vendor: str, rows: int) -> str:
    fields = _inserted_fields()
    values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * rows)
    stem = _column(Segment, "stem", qualified=False)
    return (f"INSERT INTO {_table(Segment)} ({', '.join(_quote(f.column) for f in fields)}) VALUES {values} "
            f"ON CONFLICT ({stem}) DO NOTHING RETURNING {stem}")


@cache
def _inserted_fields() -> tuple:
    return tuple(f for f in Segment._meta.concrete_fields if not f.primary_key)


def insert_new(segments: list[Segment]) -> set[str]:
    """Insert those of ``segments`` (distinct stems) the catalog does not hold yet; their stems.

    One statement: a segment offered again after a lost receipt is skipped by the stem's unique index, so
    no look-up goes first (SQLite has RETURNING since 3.35: :data:`~backoffice.office.dburl.SQLITE_NEEDED`)."""
    if not segments:
        return set()
    fields = _inserted_fields()
    params = [f.get_db_prep_save(getattr(segment, f.attname), connection) for segment in segments for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_insert(connection.vendor, len(segments)), params)
        return {stem for (stem,) in cursor.fetchall()}


@cache
def _update(vendor: str) -> str:
    changed = ", ".join(f"{_column(Incident, name, qualified=False)} = %s" for name in GROWING_FIELDS)
    return f"UPDATE {_table(Incident)} SET {changed} WHERE {_column(Incident, 'pk', qualified=False)} = %s"


def save_grown(incident: Incident) -> None:
    """Write what new segments changed in ``incident`` (:data:`GROWING_FIELDS`)."""
    fields = [Incident._meta.get_field(name) for name in GROWING_FIELDS]
    params = [f.get_db_prep_save(getattr(incident, f.attname), connection) for f in fields] + [incident.pk]
    with connection.cursor() as cursor:
        cursor.execute(_update(connection.vendor), params)

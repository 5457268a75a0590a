"""Template filters for the review pages."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def isotime(text: str):
    """An ISO 8601 string from a report row as a local datetime (then formatted with ``|date``)."""
    try:
        return timezone.localtime(datetime.fromisoformat(text))
    except (TypeError, ValueError):
        return text


@register.filter
def seconds(value) -> str:
    """A duration as ``m:ss`` (or ``h:mm:ss``)."""
    if value is None:
        return ""
    total = round(value.total_seconds() if isinstance(value, timedelta) else float(value))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def short_hash(value: str) -> str:
    return f"{value[:12]}…" if value and len(value) > 12 else value


@register.filter
def span(value):
    """How long something with ``start`` and ``end`` lasted."""
    return value.end - value.start

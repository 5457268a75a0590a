"""Everything the catalog knows about one incident, as plain JSON values: the record a chain-of-custody
report is built from (who recorded, the segments and their checks, holds, decisions, every access)."""

from __future__ import annotations

from .models import Incident


def _t(value) -> str | None:
    return value.isoformat() if value is not None else None


def _name(user) -> str | None:
    return user.username if user is not None else None


def incident_record(incident: Incident) -> dict:
    inc = Incident.objects.select_related("site", "device").get(pk=incident.pk)
    tombstone = getattr(inc, "tombstone", None) if inc.state != Incident.ACTIVE else None
    return {
        "site": inc.site.code, "site_rule": inc.site.rule(), "device_id": inc.device.device_id,
        "incident_id": inc.incident_id, "officer": inc.officer, "start": _t(inc.start), "end": _t(inc.end),
        "pre_event_frames": inc.pre_event_frames, "frame_count": inc.frame_count, "state": inc.state,
        "expires_at": _t(inc.expires_at), "store_path": inc.store_path,
        "segments": [{"stem": s.stem, "seq": s.seq, "segment_index": s.segment_index, "final": s.final,
                      "end_marker": s.end_marker, "start": _t(s.start), "end": _t(s.end), "frame_count": s.frame_count,
                      "pre_event_frames": s.pre_event_frames, "ciphertext_sha256": s.ciphertext_sha256,
                      "ciphertext_bytes": s.ciphertext_bytes, "manifest_sha256": s.manifest_sha256,
                      "verification": s.verification}
                     for s in inc.segments.order_by("seq")],
        "holds": [{"hold": h.pk, "case_reference": h.case_reference, "reason": h.reason, "placed_by": _name(h.placed_by),
                   "placed_at": _t(h.placed_at), "lifted_by": _name(h.lifted_by), "lifted_at": _t(h.lifted_at)}
                  for h in inc.holds.select_related("placed_by", "lifted_by").order_by("placed_at", "pk")],
        "decisions": [{"decision": d.pk, "kind": d.kind, "reason": d.reason, "state": d.state,
                       "proposed_by": _name(d.proposed_by), "proposed_at": _t(d.proposed_at),
                       "approved_by": _name(d.approved_by), "approved_at": _t(d.approved_at), "hold": d.hold_id}
                      for d in inc.decisions.select_related("proposed_by", "approved_by").order_by("proposed_at", "pk")],
        "accesses": [{"access": a.pk, "user": a.user.username, "kind": a.kind, "purpose": a.purpose, "at": _t(a.at),
                      "via": a.via}
                     for a in inc.accesses.select_related("user").order_by("at", "pk")],
        "tombstone": None if tombstone is None else {"tombstone": tombstone.pk, "rule": tombstone.rule,
                                                      "decided_by": tombstone.decided_by,
                                                      "created_at": _t(tombstone.created_at),
                                                      "completed_at": _t(tombstone.completed_at)},
    }

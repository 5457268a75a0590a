"""A refused step (:class:`~backoffice.catalog.models.RuleError`) said in the reader's language.

The catalog refuses in English, the language its audit log and refusal rows keep; each refusal names its
rule (``code``) and the values in it (``params``), and this module holds the page's words for each rule. A
refusal without a text here is shown as the catalog wrote it, so a new rule is never silent, only untranslated
(tests/web/test_refusals.py checks that every rule the catalog raises has its text here).
"""

from __future__ import annotations

from django.utils.translation import gettext, gettext_lazy as _

from ..catalog.models import RuleError
from .context import ROLE_NAMES, STATE_NAMES

TEXTS = {
    "needs_role": _("%(user)s may not do this (needs the role: %(roles)s)."),
    "shift_hours": _("A shift lasts 1 to 24 hours."),
    "hold_needs_reason": _("A hold needs a case reference and a reason."),
    "not_active": _("Incident %(incident)s is %(state)s."),
    "held": _("Incident %(incident)s is held; the hold must be lifted first."),
    "needs_reason": _("A proposal needs a reason."),
    "decided": _("Decision %(decision)s has been decided already."),
    "self_approval": _("Nobody may approve their own proposal: the approver must be another person."),
    "hold_lifted": _("Hold %(hold)s is lifted already."),
    "window_order": _("The time window's start lies after its end."),
    "unknown_site": _("There is no site %(site)s in the catalog."),
    "access_kind": _("Unknown kind of access: %(kind)s."),
    "needs_purpose": _("Watching or exporting needs a stated purpose."),
    "video_gone": _("Incident %(incident)s is %(state)s; its video is gone."),
    "may_not_see": _("%(user)s may not see incident %(incident)s."),
}

def refusal_text(exc: RuleError) -> str:
    """The refusal in the active language (the catalog's English reason where no text is known)."""
    text = TEXTS.get(exc.code)
    if text is None:
        return str(exc)
    params = dict(exc.params)
    if "roles" in params:
        params["roles"] = gettext(" or ").join(str(ROLE_NAMES.get(r, r)) for r in params["roles"])
    if "state" in params:
        params["state"] = STATE_NAMES.get(params["state"], params["state"])
    return str(text) % params


def refused_message(exc: RuleError) -> str:
    """"Refused: ..." as the review app's messages say it."""
    return gettext("Refused: %(reason)s") % {"reason": refusal_text(exc)}

"""The review app's forms: what a person may type, validated before any rule runs."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ..catalog.models import Site
from .context import STATE_NAMES


class LoginForm(forms.Form):
    username = forms.CharField(label=_("User name"), max_length=150,
                               widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}))
    password = forms.CharField(label=_("Password"), max_length=4096, strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class IncidentFilterForm(forms.Form):
    """The incident list's filters (all optional; GET, so a filtered list can be bookmarked)."""

    HELD_CHOICES = [("", _("any")), ("yes", _("held")), ("no", _("not held"))]

    day = forms.DateField(label=_("Day"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    site = forms.ChoiceField(label=_("Site"), required=False)
    device = forms.CharField(label=_("Device"), required=False, max_length=64)
    officer = forms.CharField(label=_("Officer"), required=False, max_length=150)
    state = forms.ChoiceField(label=_("State"), required=False,
                              choices=[("", _("any")), *STATE_NAMES.items()])
    held = forms.ChoiceField(label=_("Hold"), required=False, choices=HELD_CHOICES)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("any"))] + [(c, c) for c in
                                                          Site.objects.order_by("code").values_list("code", flat=True)]

    def filters(self) -> dict:
        """The keyword arguments for :func:`backoffice.catalog.queries.incident_list`."""
        data = self.cleaned_data
        held = {"yes": True, "no": False}.get(data.get("held") or "")
        return {"site": data.get("site") or None, "day": data.get("day"), "device": data.get("device") or None,
                "officer": data.get("officer") or None, "state": data.get("state") or None, "held": held}


class HoldForm(forms.Form):
    case_reference = forms.CharField(label=_("Case reference"), max_length=128)
    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class PurposeForm(forms.Form):
    """Watching or exporting needs a stated purpose; it goes into the access log."""

    purpose = forms.CharField(label=_("Purpose"), max_length=500,
                              help_text=_("e.g. the case reference, or 'complaint 12/2025'"))


class AccessFilterForm(forms.Form):
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("Until (inclusive)"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    user = forms.CharField(label=_("Person"), required=False, max_length=150)


class DaysForm(forms.Form):
    days = forms.IntegerField(label=_("Days"), min_value=0, max_value=3650, required=False)


class SubjectForm(forms.Form):
    """A GDPR Art. 15 request: which recordings may show a person at a place in a time window."""

    site = forms.ChoiceField(label=_("Site"))
    since = forms.DateTimeField(label=_("From"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(label=_("Until"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [(c, c) for c in Site.objects.order_by("code").values_list("code", flat=True)]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            raise forms.ValidationError(_("The end of the window must come after its start."))
        return data

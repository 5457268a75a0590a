"""Every refusal the catalog raises can be said in the review app's languages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CATALOG = Path(__file__).resolve().parents[2] / "backoffice" / "catalog"


def _rule_errors() -> list[tuple[str, int, ast.Call]]:
    calls = []
    for path in sorted(CATALOG.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "RuleError":
                calls.append((path.name, node.lineno, node))
    return calls


def test_every_refusal_the_catalog_raises_names_a_rule_the_review_app_can_say(review):
    from backoffice.web.refusals import TEXTS

    calls = _rule_errors()
    assert len(calls) >= 15  # the scan found the catalog's refusals
    for name, line, call in calls:
        assert len(call.args) >= 2, f"{name}:{line}: a RuleError without a code is shown untranslated"
        code = call.args[1]
        if isinstance(code, ast.Constant):
            assert code.value in TEXTS, f"{name}:{line}: no text for {code.value!r} in backoffice/web/refusals.py"


@pytest.mark.parametrize("language, expected", [
    ("de", "Abgelehnt: olga darf das nicht (dafür nötig: Rolle Sachbearbeitung oder Vorgesetzte/r)."),
    ("en", "Refused: olga may not do this (needs the role: reviewer or supervisor)."),
])
def test_a_refusal_names_roles_and_states_in_the_readers_language(review, language, expected):
    from django.utils import translation

    from backoffice.catalog.models import Incident, RuleError
    from backoffice.web.refusals import refusal_text, refused_message

    with translation.override(language):
        assert refused_message(RuleError("olga may not do this", "needs_role", user="olga",
                                         roles=("reviewer", "supervisor"))) == expected
        gone = refusal_text(RuleError("incident x is deleted", "video_gone", incident="kod-07/inc-1",
                                      state=Incident.DELETED))
    assert gone == {"de": "Vorfall kod-07/inc-1 ist gelöscht; sein Video gibt es nicht mehr.",
                    "en": "Incident kod-07/inc-1 is deleted; its video is gone."}[language]


def test_a_refusal_of_a_rule_without_a_text_is_shown_as_the_catalog_wrote_it(review):
    from backoffice.catalog.models import RuleError
    from backoffice.web.refusals import refusal_text

    assert refusal_text(RuleError("something new was refused", "a_rule_added_later")) == "something new was refused"

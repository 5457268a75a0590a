"""Every word the display shows, in German and English, in one place.

Labels the citizen reads from a distance are short capitals; alert hints address the officer and say
what to do. Screens look strings up with :func:`strings`; a missing translation is a KeyError at
start-up (and in the tests), never a blank on the display.
"""

from __future__ import annotations

from types import MappingProxyType

from .settings import LANGUAGES

DEFAULT_LANGUAGE = "de"

_TEXT = {
    # -- the three states ---------------------------------------------------------------------------
    "ready": {"de": "BEREIT", "en": "READY"},
    "mirror": {"de": "VIDEO", "en": "VIDEO"},
    "recording": {"de": "AUFNAHME", "en": "REC"},
    # the pre-event ring is filling (recording.pre_event_mode): kept in RAM, stored only if a recording starts
    "pre_recording": {"de": "VORAUFNAHME", "en": "PRE-REC"},
    # the back office's identify command: which device in the drawer is this one
    "identify": {"de": "DIESES GERÄT", "en": "THIS DEVICE"},
    "no_picture": {"de": "kein Bild", "en": "no picture"},
    # -- officer check-out, in standby --------------------------------------------------------------
    "unassigned": {"de": "nicht zugeordnet", "en": "not assigned"},
    "badge_unknown": {"de": "Ausweis unbekannt", "en": "unknown badge"},
    # -- alerts (codes of agent.alerts): a title in capitals, a hint for the officer -----------------
    "alert.camera_fault": {"de": "KAMERAFEHLER", "en": "CAMERA FAULT"},
    "alert.camera_fault.hint": {"de": "Gerät neu starten", "en": "Restart the device"},
    "alert.system_fault": {"de": "SYSTEMFEHLER", "en": "SYSTEM FAULT"},
    "alert.system_fault.hint": {"de": "IT informieren", "en": "Inform IT"},
    "alert.storage_full": {"de": "SPEICHER VOLL", "en": "STORAGE FULL"},
    "alert.storage_full.hint": {"de": "Gerät andocken", "en": "Dock the device"},
    "alert.storage_low": {"de": "SPEICHER KNAPP", "en": "STORAGE LOW"},
    "alert.storage_low.hint": {"de": "Bald andocken", "en": "Dock soon"},
    "alert.frames_dropped": {"de": "BILDVERLUST", "en": "FRAMES LOST"},
    "alert.frames_dropped.hint": {"de": "Lücke wird vermerkt", "en": "Gap is logged"},
    "alert.recording_refused": {"de": "KEINE AUFNAHME", "en": "CANNOT RECORD"},
    "alert.recording_refused.hint": {"de": "IT informieren", "en": "Inform IT"},
    "alert.upload_failing": {"de": "UPLOAD GESTÖRT", "en": "UPLOAD FAILING"},
    "alert.upload_failing.hint": {"de": "Daten bleiben sicher", "en": "Data stays safe"},
    "alert.overheating": {"de": "ÜBERHITZT", "en": "OVERHEATING"},
    "alert.overheating.hint": {"de": "Abkühlen lassen", "en": "Let it cool down"},
    "alert.under_voltage": {"de": "UNTERSPANNUNG", "en": "UNDER-VOLTAGE"},
    "alert.under_voltage.hint": {"de": "Akku/Kabel prüfen", "en": "Check battery/cable"},
    "alert.low_battery": {"de": "AKKU SCHWACH", "en": "BATTERY LOW"},
    "alert.low_battery.hint": {"de": "Bald laden", "en": "Charge soon"},
    "alert.audio_fault": {"de": "KEIN TON", "en": "NO SOUND"},
    "alert.audio_fault.hint": {"de": "Bild läuft weiter", "en": "Video continues"},
    "alert.display_fault": {"de": "ANZEIGEFEHLER", "en": "DISPLAY FAULT"},
    "alert.display_fault.hint": {"de": "Aufnahme möglich", "en": "Recording works"},
    "alert.checkout_fault": {"de": "ANMELDEFEHLER", "en": "CHECK-OUT FAULT"},
    "alert.checkout_fault.hint": {"de": "IT informieren", "en": "Inform IT"},
    "alert.other": {"de": "STÖRUNG", "en": "FAULT"},
    # "+2" more alerts behind the one shown
    "alert.more": {"de": "+{n} weitere", "en": "+{n} more"},
}


#: Alert codes that share one text; a code not listed here nor in the table shows "alert.other".
_ALERT_ALIASES = {"recorder_fault": "system_fault", "sealer_fault": "system_fault",
                  "storage_monitor_fault": "system_fault", "audit_log_failing": "system_fault",
                  "homeassistant_refused": "system_fault"}


def _table(language: str) -> MappingProxyType:
    return MappingProxyType({key: texts[language] for key, texts in _TEXT.items()})


_TABLES = {language: _table(language) for language in LANGUAGES}


def strings(language: str = DEFAULT_LANGUAGE) -> MappingProxyType:
    """The read-only key → text table for ``language`` (``de`` or ``en``)."""
    try:
        return _TABLES[language]
    except KeyError:
        raise ValueError(f"no display texts for language {language!r} (have: {', '.join(LANGUAGES)})") from None


def alert_text(code: str, language: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """(title, hint) for an alert code of :mod:`agent.alerts`; an unknown code shows its own name."""
    table = strings(language)
    key = f"alert.{_ALERT_ALIASES.get(code, code)}"
    if key in table:
        return table[key], table[f"{key}.hint"]
    return table["alert.other"], code.replace("_", " ")


def all_texts() -> list[str]:
    """Every string in every language (the tests check each one renders with real glyphs)."""
    return [text for texts in _TEXT.values() for text in texts.values()]

"""The court package's README: how an expert re-checks it with ``bodycam verify``, stock ``age`` and
``sha256sum`` (German by default, English selectable), and the one ``bodycam verify`` command line."""

from __future__ import annotations

import shlex


def verify_command(device_keys, first_seq: int, with_receipt_key: bool) -> list[str]:
    """``bodycam verify`` for the package's originals, run from the package's folder."""
    argv = ["bodycam", "verify", "--devices", "keys/devices", "--first-seq", str(first_seq)]
    if with_receipt_key:
        argv += ["--receipt-key", "keys/receipt.pub"]
    return argv + ["originals"]


_TEXT = {
    "de": """\
Beweismittelpaket: Vorfall {incident} (Standort {site})
Löschregel des Standorts: {rule}
Erstellt am {created} für {by} (Zugriff Nr. {access}), Zweck: {purpose}

Inhalt dieses Ordners
  incident.mp4            Die Aufnahme als eine MP4-Datei mit Bild und Ton. Die Bild- und Tondaten
                          sind die des Geräts, nur neu verpackt (nicht neu kodiert).
  originals/              Die versiegelten Originale, so wie der Empfangsserver sie gespeichert hat:
                          je Abschnitt <stem>.age (mit age verschlüsselt) und <stem>.manifest.json
                          (vom Gerät mit Ed25519 signiert: Zeiten, Bildzahlen, SHA-256 der Datei).
  originals/receipts/     Die signierten Empfangsbestätigungen des Servers.
  keys/devices/           Der öffentliche Schlüssel des aufnehmenden Geräts.
  keys/office.pub         Der öffentliche Schlüssel der Verwaltung (prüft das Audit-Protokoll).
{receipt_key_de}  chain-of-custody.pdf    Der Bericht zur Beweismittelkette in Worten; .json mit allen Werten.
  SHA256SUMS              Prüfsummen aller Dateien dieses Ordners.

So prüfen Sie das Paket (in diesem Ordner):

1. Vollständigkeit:        sha256sum -c SHA256SUMS
2. Echtheit der Originale (ohne geheimen Schlüssel; Software: https://pypi.org/project/bodycam/,
   quelloffen):
       {command}
   Erwartet: Exit-Code 0 und "OK: {segments} of {segments} segment(s) verified". Geprüft werden die
   Signatur jedes Manifests mit dem Geräteschlüssel, der SHA-256 jeder .age-Datei, die lückenlose
   Hash-Kette der Abschnitte, die Vollständigkeit des Vorfalls und die Empfangsbestätigungen.
   --first-seq {first_seq}: der Vorfall beginnt beim Abschnitt Nr. {first_seq} der Kette des Geräts.
3. Entschlüsseln mit dem Standardwerkzeug age (https://age-encryption.org) -- nur mit dem
   Beweismittelschlüssel der Kommune (evidence.key), den dieses Paket nicht enthält:
       age -d -i evidence.key originals/<stem>.age > <stem>.{{h264|mp4}}
       sha256sum <stem>.*
   Der Wert muss in chain-of-custody.json bei diesem Abschnitt unter "plaintext_sha256" stehen.
   Format bodycam-segment/1 ist H.264 (Annex B), bodycam-segment/2 ein MP4 mit Bild und Ton.
4. Die MP4 dekodiert fehlerfrei:   ffmpeg -v error -xerror -i incident.mp4 -enc_time_base:v 1/1000000 -f null -
   Erwartet: keine Ausgabe. Die Bilder tragen ihre gemessenen Aufnahmezeiten, kein starres Raster von
   30 Bildern je Sekunde; ohne -enc_time_base rundet ffmpeg sie für seine eigene Ausgabe auf 1/30 s
   und meldet dann "non monotonically increasing dts" -- über seine Ausgabe, nicht über diese Datei.
   SHA-256 der MP4: {mp4_sha256}
5. Audit-Protokoll: die Zeilen im Bericht tragen Hash und Signatur. Gegen das vollständige Protokoll
   der Verwaltung prüfen:  bodycam-office audit verify --pub keys/office.pub --log office-audit.jsonl
""",
    "en": """\
Evidence package: incident {incident} (site {site})
The site's deletion rule: {rule}
Made on {created} for {by} (access no. {access}), purpose: {purpose}

What this folder holds
  incident.mp4            The recording as one MP4 file with picture and sound. The picture and sound
                          data are the device's, only repackaged (not re-encoded).
  originals/              The sealed originals as the receiving server stored them: per segment
                          <stem>.age (age-encrypted) and <stem>.manifest.json (signed by the device
                          with Ed25519: times, frame counts, the file's SHA-256).
  originals/receipts/     The server's signed receipts.
  keys/devices/           The recording device's public key.
  keys/office.pub         The back office's public key (checks the audit log).
{receipt_key_en}  chain-of-custody.pdf    The chain-of-custody report in words; .json with every value.
  SHA256SUMS              Checksums of every file in this folder.

How to check the package (in this folder):

1. Completeness:          sha256sum -c SHA256SUMS
2. The originals are genuine (no secret key needed; software: https://pypi.org/project/bodycam/,
   open source):
       {command}
   Expected: exit code 0 and "OK: {segments} of {segments} segment(s) verified". It checks each
   manifest's signature with the device key, each .age file's SHA-256, the unbroken hash chain of the
   segments, that the incident is complete, and the receipts.
   --first-seq {first_seq}: the incident starts at segment no. {first_seq} of the device's chain.
3. Decrypt with the stock age tool (https://age-encryption.org) -- only with the municipality's
   evidence key (evidence.key), which this package does not contain:
       age -d -i evidence.key originals/<stem>.age > <stem>.{{h264|mp4}}
       sha256sum <stem>.*
   The value must be the segment's "plaintext_sha256" in chain-of-custody.json. Format
   bodycam-segment/1 is H.264 (Annex B), bodycam-segment/2 an MP4 with picture and sound.
4. The MP4 decodes cleanly:   ffmpeg -v error -xerror -i incident.mp4 -enc_time_base:v 1/1000000 -f null -
   Expected: no output. The pictures carry their measured capture times, not a rigid grid of 30 per
   second; without -enc_time_base ffmpeg rounds them to 1/30 s for its own output and then reports
   "non monotonically increasing dts" -- about its output, not about this file.
   SHA-256 of the MP4: {mp4_sha256}
5. Audit log: the lines in the report carry their hash and signature. Check them against the back
   office's whole log:  bodycam-office audit verify --pub keys/office.pub --log office-audit.jsonl
""",
}

_RECEIPT_KEY = {"de": "  keys/receipt.pub        Der öffentliche Schlüssel des Empfangsservers (prüft die Bestätigungen).\n",
                "en": "  keys/receipt.pub        The receiving server's public key (checks the receipts).\n"}


def text(doc: dict, lang: str) -> str:
    """The README for the report ``doc`` (:func:`.custody_report.build_report`)."""
    inc, export, verification = doc["incident"], doc["export"], doc["verification"]
    segments = sum(1 for s in doc["segments"] if s["stem"])
    receipt = verification["receipt_key"] is not None
    return _TEXT[lang].format(
        incident=f"{inc['device_id']}/{inc['incident_id']}", site=inc["site"], rule=inc["site_rule"],
        created=doc["created"], by=export["by"], access=export["access"], purpose=export["purpose"],
        command=shlex.join(verification["command"]), segments=segments,
        first_seq=verification["command"][verification["command"].index("--first-seq") + 1],
        mp4_sha256=doc["mp4"]["sha256"], receipt_key_de=_RECEIPT_KEY["de"] if receipt else "",
        receipt_key_en=_RECEIPT_KEY["en"] if receipt else "")

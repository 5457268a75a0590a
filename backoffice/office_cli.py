"""The evidence lifecycle's commands: migrate, user, ingest, retention, hold, release, propose, approve, audit.

Django is imported only when one of them runs, so the receiver's commands work where the ``office`` extra
is not installed. Settings come from the environment (see :mod:`backoffice.office.settings`).

The commands name the acting person with ``--by``, who must be a known, active user; the operating-system
account that really ran the command (IT, cron) is written beside it into every audit line they cause
(``via: "cli:<account>"``). The review app (``bodycam-office web``) authenticates people itself; ``user --password`` sets
the password they sign in with.
"""

from __future__ import annotations

import os
import pwd
import sys

from base.errors import BodycamError
from evidence.tombstone import deciders

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def register(subparsers) -> None:
    p = subparsers.add_parser("migrate", help="create or update the catalog database (SQLite or DATABASE_URL)")
    p.set_defaults(func=cmd_migrate)

    p = subparsers.add_parser("user", help="add a person with roles, set a password, or disable a person")
    p.add_argument("username")
    p.add_argument("--role", action="append", default=[],
                   choices=["officer", "reviewer", "supervisor", "data-protection", "admin"])
    p.add_argument("--password", action="store_true",
                   help="set the review app's password: asked twice on a terminal, else one line from stdin")
    p.add_argument("--disable", action="store_true",
                   help="the person may no longer sign in or act (kept, since the records name them)")
    p.set_defaults(func=cmd_user)

    p = subparsers.add_parser("ingest", help="catalog every stored segment the catalog lacks (reconciliation)")
    p.add_argument("--devices", action="append", default=[], metavar="DIR_OR_FILE",
                   help="enrolled device.pub files: signatures are checked and the result recorded")
    p.set_defaults(func=cmd_ingest)

    p = subparsers.add_parser("retention", help="delete expired incidents that carry no hold (the timer's job)")
    p.add_argument("action", choices=["run"])
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted; change nothing")
    p.set_defaults(func=cmd_retention)

    p = subparsers.add_parser("hold", help="mark an incident as needed as evidence (it then never expires)")
    p.add_argument("incident", metavar="DEVICE/INCIDENT")
    p.add_argument("--case", required=True, help="case reference (Aktenzeichen)")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", required=True, metavar="USER")
    p.set_defaults(func=cmd_hold)

    p = subparsers.add_parser("release", help="propose lifting a hold (a supervisor approves it with 'approve')")
    p.add_argument("hold", type=int, metavar="HOLD_ID")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", required=True, metavar="USER")
    p.set_defaults(func=cmd_release)

    p = subparsers.add_parser("propose", help="propose deleting an incident before its rule expires")
    p.add_argument("incident", metavar="DEVICE/INCIDENT")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", required=True, metavar="USER")
    p.set_defaults(func=cmd_propose)

    p = subparsers.add_parser("approve", help="approve another person's proposal (supervisor role)")
    p.add_argument("decision", type=int, metavar="DECISION_ID")
    p.add_argument("--by", required=True, metavar="USER")
    p.set_defaults(func=cmd_approve)

    p = subparsers.add_parser("site", help="show or change a site's retention rule (admin role)")
    p.add_argument("site", metavar="SITE")
    p.add_argument("--profile", help="a state profile: NW, BW, BY, HE (docs/BACKOFFICE.md)")
    p.add_argument("--period", help="the site's own period ('<n>d', '<n>mo', 'shift'); '' returns to the profile's")
    p.add_argument("--shift-hours", type=int, help="shift length for the 'shift' period")
    p.add_argument("--by", metavar="USER", help="the admin making the change (needed to change anything)")
    p.set_defaults(func=cmd_site)

    p = subparsers.add_parser("report", help="reports for the data-protection officer (each reading is recorded)")
    p.add_argument("kind", choices=["expiring", "deletions", "access", "subject"],
                   help="expiring: what the rules delete soon; deletions: what was deleted; access: everything done "
                        "with one incident; subject: the incidents of a place and time (GDPR Art. 15)")
    p.add_argument("incident", nargs="?", metavar="DEVICE/INCIDENT", help="access: the incident")
    p.add_argument("--days", type=int, help="expiring: within this many days from now (default 7); "
                                            "deletions: in the last this many days (default 7)")
    p.add_argument("--site", help="subject: the site (place) where the person was filmed")
    p.add_argument("--from", dest="since", metavar="ISO", help="subject: start of the window, with its time zone "
                                                               "(2025-06-15T14:00+02:00 or ...Z)")
    p.add_argument("--to", dest="until", metavar="ISO", help="subject: end of the window, with its time zone")
    p.add_argument("--by", required=True, metavar="USER",
                   help="who reads it (data-protection, supervisor or admin role); recorded in the audit log")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser("audit", help="check the office audit log's signatures and hash chain")
    p.add_argument("action", choices=["verify"])
    p.add_argument("--log", help="the log file (default: <data>/audit/office-audit.jsonl)")
    p.add_argument("--pub", required=True, metavar="office.pub", help="the office's public key")
    p.add_argument("--head", metavar="SEQ:SHA256", help="a head noted earlier: detects a truncated or replaced log")
    p.set_defaults(func=cmd_audit_verify)


def _django():
    from .office.bootstrap import setup_django

    setup_django()
    from django.conf import settings

    return settings


def os_account() -> str:
    """The operating-system account running this command, from the kernel's real uid (not ``$USER``,
    which whoever starts the command sets)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"


def cli_via() -> str:
    """Where the commands' steps come from, as Access.via names it: ``cli:<OS account>``."""
    return f"cli:{os_account()}"


def _office():
    settings = _django()
    from .catalog.office import open_office

    return open_office(settings.BODYCAM_STORE_DIR, settings.BODYCAM_OFFICE_KEY, settings.BODYCAM_AUDIT_LOG,
                       via=cli_via())


def _user(name: str):
    """The person ``--by`` names: a known user whose account is active."""
    from django.contrib.auth import get_user_model

    try:
        user = get_user_model().objects.get(username=name)
    except get_user_model().DoesNotExist:
        raise BodycamError(f"no user {name!r} (add one with 'bodycam-office user')") from None
    if not user.is_active:
        raise BodycamError(f"user {name!r} is deactivated and may not act; an admin reactivates the account "
                           "if that is a mistake")
    return user


def _incident(ref: str):
    from .catalog.models import Incident

    device, sep, incident_id = ref.partition("/")
    found = Incident.objects.filter(device__device_id=device, incident_id=incident_id).first() if sep else None
    if found is None:
        raise BodycamError(f"no incident {ref!r} in the catalog (name it DEVICE/INCIDENT)")
    return found


def _refusable(action) -> int:
    from .catalog.models import RuleError

    try:
        action()
    except RuleError as exc:
        print(f"bodycam-office: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def cmd_migrate(args) -> int:
    _django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1 if args.verbose else 0)
    print("catalog database is up to date")
    return EXIT_OK


def cmd_user(args) -> int:
    if not (args.role or args.password or args.disable):
        raise BodycamError("say what to do: --role ROLE, --password or --disable")
    # The log opens first: without it (no office key) nothing is changed, as nothing could be traced.
    office = _office()
    try:
        _change_user(office, args)
    finally:
        office.close()
    return EXIT_OK


def _change_user(office, args) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction

    from .catalog import office as events

    with transaction.atomic():  # a refused password leaves no half-made person behind
        user, created = get_user_model().objects.get_or_create(username=args.username)
        if created:
            user.set_unusable_password()
            user.save()
        if args.password:
            set_password(user)
        user.groups.add(*Group.objects.filter(name__in=args.role))
        if args.disable:
            user.is_active = False
            user.save(update_fields=["is_active"])
    roles = sorted(g.name for g in user.groups.all())
    # who may do what is itself a decision to trace: the change and who typed it (via) go to the signed log
    office.record(events.USER_CHANGED, user=user.username, created=created, roles_added=sorted(args.role),
                  roles=roles, password_set=bool(args.password), disabled=bool(args.disable), active=user.is_active)
    state = "" if user.is_active else " (disabled)"
    print(f"{args.username}: {', '.join(roles)}{state}")


def set_password(user) -> None:
    """Read a new password (twice on a terminal, once from a pipe), check it against the settings'
    validators (length, common passwords ...) and store its argon2 hash."""
    import getpass

    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    if sys.stdin.isatty():
        password = getpass.getpass(f"new password for {user.username}: ")
        if getpass.getpass("again: ") != password:
            raise BodycamError("the two passwords differ; nothing changed")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise BodycamError(f"password refused: {' '.join(exc.messages)}") from None
    user.set_password(password)
    user.save(update_fields=["password"])


def cmd_ingest(args) -> int:
    office = _office()
    from evidence.keys import load_device_public_keys

    from .catalog.ingest import reconcile

    with office.log:
        report = reconcile(office, load_device_public_keys(args.devices) if args.devices else None)
    print(report.summary())
    for problem in report.problems:
        print(f"  {problem}")
    return EXIT_REFUSED if report.problems else EXIT_OK


def cmd_retention(args) -> int:
    office = _office()
    from .catalog.retention import run_retention

    with office.log:
        report = run_retention(office, dry_run=args.dry_run)
    print(report.summary())
    for name in report.deleted:
        print(f"  {'would delete' if args.dry_run else 'deleted'} {name}")
    for name in report.held:
        print(f"  held: {name}")
    return EXIT_OK


def cmd_hold(args) -> int:
    office = _office()
    with office.log:
        def act():
            hold = _incident(args.incident).place_hold(office, by=_user(args.by), case_reference=args.case,
                                                       reason=args.reason)
            print(f"hold {hold.pk} placed on {args.incident}")
        return _refusable(act)


def cmd_release(args) -> int:
    office = _office()
    from .catalog.models import Hold

    with office.log:
        def act():
            hold = Hold.objects.filter(pk=args.hold).first()
            if hold is None:
                raise BodycamError(f"no hold {args.hold}")
            decision = hold.propose_release(office, by=_user(args.by), reason=args.reason)
            print(f"decision {decision.pk} proposed: release hold {hold.pk}; a supervisor approves it with "
                  f"'bodycam-office approve {decision.pk} --by NAME'")
        return _refusable(act)


def cmd_propose(args) -> int:
    office = _office()
    with office.log:
        def act():
            decision = _incident(args.incident).propose_deletion(office, by=_user(args.by), reason=args.reason)
            print(f"decision {decision.pk} proposed: delete {args.incident}; a supervisor approves it with "
                  f"'bodycam-office approve {decision.pk} --by NAME'")
        return _refusable(act)


def cmd_approve(args) -> int:
    office = _office()
    from .catalog.models import Decision

    with office.log:
        def act():
            decision = Decision.objects.filter(pk=args.decision).first()
            if decision is None:
                raise BodycamError(f"no decision {args.decision}")
            decision.approve(office, by=_user(args.by))
            print(f"decision {decision.pk} approved and carried out ({decision.kind})")
        return _refusable(act)


def cmd_site(args) -> int:
    office = _office()
    from .catalog.models import Site

    with office.log:
        def act():
            site, _ = Site.objects.get_or_create(code=args.site)
            if any(v is not None for v in (args.profile, args.period, args.shift_hours)):
                if not args.by:
                    raise BodycamError("changing a site's rule needs --by ADMIN")
                moved = site.set_policy(office, by=_user(args.by), profile_code=args.profile, period=args.period,
                                        shift_hours=args.shift_hours)
                print(f"{moved} active incident(s) now expire by the new rule")
            print(f"{site.code}: {site.rule()} (shift {site.shift_hours} h)")
        return _refusable(act)


def _instant(text: str | None, option: str):
    """An ISO 8601 time with its time zone, as a UTC datetime (a filmed person names local time: a time
    without a zone is refused, not guessed)."""
    from datetime import datetime, timezone

    from base.utctime import parse_iso_utc

    if not text:
        raise BodycamError(f"report subject needs {option} ISO-TIME")
    try:
        return datetime.fromtimestamp(parse_iso_utc(text), timezone.utc)
    except ValueError as exc:
        raise BodycamError(f"{option}: {exc}; write an ISO 8601 time with its time zone, e.g. "
                           "2025-06-15T14:00+02:00 (German summer time) or 2025-06-15T12:00Z") from None


def _report_request(args) -> dict:
    """The report's parameters (as recorded in the audit log); refuses options that do not belong to it."""
    subject = {"--site": args.site, "--from": args.since, "--to": args.until}
    if args.kind == "subject":
        if not args.site:
            raise BodycamError("report subject needs --site SITE")
        since, until = _instant(args.since, "--from"), _instant(args.until, "--to")
        request = {"site": args.site, "from": since.isoformat(), "to": until.isoformat()}
    elif args.kind == "access":
        if not args.incident:
            raise BodycamError("report access needs the incident: DEVICE/INCIDENT")
        request = {"incident": args.incident}
    else:
        if args.days is not None and args.days < 0:
            raise BodycamError("--days must be 0 or more")
        request = {"days": 7 if args.days is None else args.days}
    stray = [name for name, value in subject.items() if value is not None and args.kind != "subject"]
    stray += ["DEVICE/INCIDENT"] if args.incident and args.kind != "access" else []
    stray += ["--days"] if args.days is not None and args.kind in ("access", "subject") else []
    if stray:
        raise BodycamError(f"report {args.kind} does not take {', '.join(stray)}")
    return request


def cmd_report(args) -> int:
    import json
    from datetime import datetime, timedelta

    request = _report_request(args)
    office = _office()
    from .catalog import reports

    with office.log:
        def act():
            by = _user(args.by)
            incident = _incident(args.incident) if args.kind == "access" else None
            reports.record_read(office, kind=args.kind, parameters=request, by=by)
            now = office.now()
            if args.kind == "expiring":
                rows = reports.expiring(now, now + timedelta(days=request["days"]), limit=None)
                lines = [f"{r['expires_at']}  {r['incident']:<40} "
                         f"{'HELD ' + ', '.join(r['held']) if r['held'] else 'overdue' if r['overdue'] else ''}"
                         for r in rows]
            elif args.kind == "deletions":
                rows = reports.deletions(now - timedelta(days=request["days"]), now)
                lines = [f"{r['deleted_at']}  {r['incident']:<40} {r['segments']} segment(s), {r['bytes']} bytes, "
                         f"rule {r['rule']!r}, {deciders(r['decided_by'])}" for r in rows]
            elif args.kind == "access":
                rows = reports.access_report(incident)
                lines = [_incident_line(incident)] + ([_access_line(r) for r in rows] or
                                                      ["  no access, hold, decision or deletion recorded"])
            else:
                rows = reports.subject_report(request["site"], datetime.fromisoformat(request["from"]),
                                              datetime.fromisoformat(request["to"]))
                lines = [line for r in rows for line in _subject_lines(r)]
            if args.json:
                print(json.dumps(rows, indent=1, ensure_ascii=False))
            elif rows or args.kind == "access":
                print("\n".join(lines))
            else:
                print(f"no {args.kind} entries for {request}")
        return _refusable(act)


def _incident_line(incident) -> str:
    return (f"incident {incident} at {incident.site.code}, officer {incident.officer or 'unknown'}, "
            f"{incident.start.isoformat()} to {incident.end.isoformat()}, {incident.state}")


def _access_line(row: dict) -> str:
    via = f" via {row['via']}" if row["via"] else ""
    purpose = f" {row['purpose']!r}" if row["purpose"] else ""
    note = f" ({row['note']})" if row["note"] else ""
    return f"  {row['at']}  {row['event']:<17} {row['by']:<16} {row['kind']:<14}{purpose}{via}{note}"


def _subject_lines(row: dict) -> list[str]:
    lines = [f"{row['incident']}  officer {row['officer'] or 'unknown'}  {row['start']} to {row['end']}  "
             f"{row['state']}" + (f" (expires {row['expires_at']})" if row["state"] == "active" else "")]
    for h in row["holds"]:
        lifted = f", lifted by {h['lifted_by']} at {h['lifted_at']}" if h["lifted_at"] else ", in force"
        lines.append(f"  hold {h['hold']}: {h['case_reference']} {h['reason']!r}, placed by {h['placed_by']} at "
                     f"{h['placed_at']}{lifted}")
    if row["deletion"]:
        d = row["deletion"]
        lines.append(f"  deleted on {d['deleted_at']} under rule {d['rule']!r}, {deciders(d['decided_by'])}")
    for a in row["accesses"]:
        purpose = f" {a['purpose']!r}" if a["purpose"] else ""
        lines.append(f"  {a['at']}  {a['kind']:<9} by {a['by']}{purpose} via {a['via']}")
    if not row["accesses"]:
        lines.append("  no access recorded")
    return lines


def cmd_audit_verify(args) -> int:
    from evidence.audit import AuditHead, verify_log
    from evidence.keys import load_office_public_key

    log = args.log or _django().BODYCAM_AUDIT_LOG
    head = None
    if args.head:
        seq, sep, digest = args.head.partition(":")
        if not (sep and seq.isdigit() and len(digest) == 64):
            raise BodycamError(f"--head {args.head!r} must be SEQ:SHA256 (64 hex digits)")
        head = AuditHead(int(seq), digest)
    report = verify_log(log, load_office_public_key(args.pub).key, expected_head=head)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_REFUSED

"""The evidence lifecycle's commands: migrate, user, ingest, retention, hold, release, propose, approve, audit.

Django is imported only when one of them runs, so the receiver's commands work where the ``office`` extra
is not installed. Settings come from the environment (see :mod:`backoffice.office.settings`).

The commands name the acting person with ``--by``; they trust the operating-system account that runs them
(IT, cron). The web app that comes next authenticates people itself.
"""

from __future__ import annotations

import sys

from base.errors import BodycamError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def register(subparsers) -> None:
    p = subparsers.add_parser("migrate", help="create or update the catalog database (SQLite or DATABASE_URL)")
    p.set_defaults(func=cmd_migrate)

    p = subparsers.add_parser("user", help="add a person with one or more roles")
    p.add_argument("username")
    p.add_argument("--role", action="append", required=True,
                   choices=["officer", "reviewer", "supervisor", "data-protection", "admin"])
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

    p = subparsers.add_parser("report", help="reports for the data-protection officer")
    p.add_argument("kind", choices=["expiring", "deletions"])
    p.add_argument("--days", type=int, default=7, help="expiring: within this many days from now (default 7); "
                                                       "deletions: in the last this many days")
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


def _office():
    settings = _django()
    from .catalog.office import open_office

    return open_office(settings.BODYCAM_STORE_DIR, settings.BODYCAM_OFFICE_KEY, settings.BODYCAM_AUDIT_LOG)


def _user(name: str):
    from django.contrib.auth import get_user_model

    try:
        return get_user_model().objects.get(username=name)
    except get_user_model().DoesNotExist:
        raise BodycamError(f"no user {name!r} (add one with 'bodycam-office user')") from None


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
    _django()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user, created = get_user_model().objects.get_or_create(username=args.username)
    if created:
        user.set_unusable_password()
        user.save()
    user.groups.add(*Group.objects.filter(name__in=args.role))
    print(f"{args.username}: {', '.join(sorted(g.name for g in user.groups.all()))}")
    return EXIT_OK


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


def cmd_report(args) -> int:
    import json
    from datetime import timedelta

    office = _office()
    from .catalog import reports

    office.close()  # reading only
    if args.days < 0:
        raise BodycamError("--days must be 0 or more")
    now = office.now()
    if args.kind == "expiring":
        rows = reports.expiring(now, now + timedelta(days=args.days), limit=None)
        lines = [f"{r['expires_at']}  {r['incident']:<40} "
                 f"{'HELD ' + ', '.join(r['held']) if r['held'] else 'overdue' if r['overdue'] else ''}"
                 for r in rows]
    else:
        rows = reports.deletions(now - timedelta(days=args.days), now)
        lines = [f"{r['deleted_at']}  {r['incident']:<40} {r['segments']} segment(s), {r['bytes']} bytes, "
                 f"rule {r['rule']!r}, decided by {' and '.join(r['decided_by'])}" for r in rows]
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
    else:
        print("\n".join(lines) if lines else f"no {args.kind} incidents in that window")
    return EXIT_OK


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

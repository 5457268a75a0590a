"""The `bodycam-office` command: the back office's receiver, fleet view, signed commands, the evidence
lifecycle (catalog, retention, holds, four-eyes decisions, office audit log; :mod:`.office_cli`), the key
custodian and court packages (:mod:`.custody.cli`), the review web app (:mod:`.review_cli`), and the shared
keys/verify/export subcommands. Thin: parse arguments, configure logging, call one function, return a code.

Exit codes: 0 success, 1 the job ran and found a problem, 2 bad input (config, arguments, key files).
"""

from __future__ import annotations

import argparse
import sys

from base import __version__
from base.cli import run_command
from evidence import cli as evidence_cli

from . import control_cli, office_cli, receiver_cli, review_cli
from .custody import cli as custody_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bodycam-office",
                                     description="Back office: receive, keep and check body-cam recordings.")
    parser.add_argument("--version", action="version", version=f"bodycam-office {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    receiver_cli.register(sub)
    control_cli.register(sub)
    office_cli.register(sub)
    custody_cli.register(sub)
    review_cli.register(sub)
    evidence_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, services=("receiver", "custodian", "web"))


if __name__ == "__main__":
    sys.exit(main())

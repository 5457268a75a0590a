"""The `bodycam-office` command: the back office's receiver, fleet view, signed commands, and the shared
keys/verify/export subcommands. Thin: parse arguments, configure logging, call one function, return a code.

Exit codes: 0 success, 1 the job ran and found a problem, 2 bad input (config, arguments, key files).
"""

from __future__ import annotations

import argparse
import logging
import sys

from base import __version__
from base.errors import BodycamError
from evidence import cli as evidence_cli

from . import control_cli, receiver_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bodycam-office",
                                     description="Back office: receive, keep and check body-cam recordings.")
    parser.add_argument("--version", action="version", version=f"bodycam-office {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    receiver_cli.register(sub)
    control_cli.register(sub)
    evidence_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The receiver is a service: its log is its journal, at INFO. The one-shot commands say only what fails.
    default_level = logging.INFO if args.command == "receiver" else logging.WARNING
    logging.basicConfig(level=logging.DEBUG if args.verbose else default_level,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except BodycamError as exc:
        print(f"bodycam-office: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

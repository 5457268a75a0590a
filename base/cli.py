"""How both programs' commands end: logging set up once, errors as one sentence, exit codes.

Exit codes: 0 success, 1 the job ran and found a problem, 2 bad input (config, arguments, key files),
130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import BodycamError


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None, services: tuple[str, ...]) -> int:
    """Parse ``argv`` and run the chosen subcommand's ``func``.

    Services (``services``: the subcommands systemd runs) log at INFO, since their journal is their
    record; one-shot commands only warn. journald adds time and unit, so a level and the module are all
    a line needs. Secrets never reach the log: keys are logged by id and path only.
    """
    args = parser.parse_args(argv)
    default_level = logging.INFO if args.command in services else logging.WARNING
    logging.basicConfig(level=logging.DEBUG if args.verbose else default_level,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except BodycamError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

"""Run the checks in report order and decide the exit code."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .check import Check, Level, fail, skip
from .checkout import check_checkout
from .context import Context
from .hardware import check_camera, check_display, check_encoder, check_gpio, check_microphone
from .local import check_agent, check_clock, check_config, check_keys, check_recipients
from .network import check_broker
from .storage import check_backlog, check_spool

logger = logging.getLogger(__name__)

#: In report order; all but those in NEEDS_NO_CONFIG need a valid config.
CHECKS: tuple[Callable[[Context], Check], ...] = (
    check_config, check_recipients, check_keys, check_agent, check_camera, check_encoder, check_microphone,
    check_display, check_gpio, check_checkout, check_clock, check_broker, check_spool, check_backlog)
NEEDS_NO_CONFIG = frozenset({check_config, check_agent, check_clock})


def run_checks(ctx: Context, checks=CHECKS) -> list[Check]:
    """Every check's result; a check that crashes is reported as a FAIL naming the error."""
    results = []
    for check in checks:
        name = check.__name__.removeprefix("check_")
        if ctx.config is None and check not in NEEDS_NO_CONFIG:
            results.append(skip(name, "needs a valid config (see the config line)"))
            continue
        try:
            results.append(check(ctx))
        except Exception as exc:  # the report must go on; the error is shown, not hidden
            logger.debug("check %s crashed", name, exc_info=True)
            results.append(fail(name, f"the check itself failed: {type(exc).__name__}: {exc}",
                                "run 'bodycam -v doctor' and report the output to the developers"))
    return results


def exit_code(results: list[Check]) -> int:
    """1 when anything FAILs (the device is not fit for duty), else 0."""
    return 1 if any(r.level is Level.FAIL for r in results) else 0

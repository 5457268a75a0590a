"""``bodycam doctor``: check one device from camera to broker and say, for each part, what to do.

Each check is a small function ``check_…(ctx) -> Check``: a level, one line saying what was found,
and, unless all is well, one sentence saying how to fix it. The doctor only looks: it never writes to
the spool, never opens the camera for capture and never changes a setting, so it is safe to run
beside the running agent and on a device that holds evidence.

By concern: :mod:`.local` (config, recipients, keys, the running agent, clock), :mod:`.hardware`
(camera, encoder, display, GPIO), :mod:`.network` (broker, through comms.probe), :mod:`.storage`
(spool, backlog); :mod:`.context` is what they look at, :mod:`.runner` runs them in report order.
"""

from .check import Check, Level
from .context import DEFAULT_CONFIG, Context
from .runner import CHECKS, exit_code, run_checks

__all__ = ["CHECKS", "DEFAULT_CONFIG", "Check", "Context", "Level", "exit_code", "run_checks"]

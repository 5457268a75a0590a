"""The `bodycam` command. Thin: parse arguments, configure logging, call one function, return a code.

Exit codes: 0 success, 1 the job ran and found a problem, 2 bad input (config, arguments, key files).
"""

from __future__ import annotations

import argparse
import logging
import sys

from base import __version__
from base.cli import run_command
from base.errors import BodycamError
from evidence import cli as evidence_cli
from ui.settings import DRIVER_SIZES

from . import config, doctor_cli

logger = logging.getLogger("bodycam")


def _cmd_config(args) -> int:
    if args.example:
        sys.stdout.write(config.example_path().read_text(encoding="utf-8"))
        return 0
    loaded = config.load(args.file)
    print(f"{args.file}: OK (device {loaded.device.site}/{loaded.device.id}, camera {loaded.camera.backend}, "
          f"pre-event {loaded.recording.pre_event_seconds:g} s)")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    cfg = config.load(args.config)
    if args.pre_event is not None:
        cfg = config.replace(cfg, "recording", pre_event_seconds=args.pre_event)
    if args.width or args.height:
        cfg = config.replace(cfg, "camera", width=args.width or cfg.camera.width,
                             height=args.height or cfg.camera.height)
    if args.panel:
        width, height = DRIVER_SIZES[args.panel][0]
        cfg = config.replace(cfg, "display", driver=args.panel, width=width, height=height)
    standby = args.standby if args.standby is not None else min(cfg.recording.pre_event_seconds, 30) + 1
    return run_demo(cfg, standby, args.seconds, args.workdir)


def _cmd_run(args) -> int:
    cfg = config.load(args.config)
    if args.validate_config:
        print(f"{args.config or '<embedded defaults>'}: OK")
        return 0
    from .runtime import run_agent

    return run_agent(cfg, args.config)


def _cmd_display_off(args) -> int:
    from ui.display import switch_off

    from .instancelock import AlreadyRunningError, InstanceLock

    cfg = config.load(args.config)
    try:
        lock = InstanceLock.acquire(cfg.evidence.state_dir)
    except AlreadyRunningError as exc:
        print(f"bodycam: display left on: an agent is running (PID {exc.holder}) and drives it", file=sys.stderr)
        return 1
    except BodycamError as exc:  # an unwritable state directory must not keep a stale picture on the panel
        logger.warning("%s; switching the display off anyway", exc)
        lock = None
    try:
        switch_off(cfg.display)
    finally:
        if lock is not None:
            lock.release()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bodycam", description="Body-cam edge agent for municipal enforcement.")
    parser.add_argument("--version", action="version", version=f"bodycam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the agent (what the systemd service starts)")
    p.add_argument("--config", metavar="FILE", help="config file (default: embedded defaults)")
    p.add_argument("--validate-config", action="store_true", help="check the config file and exit")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("config", help="check a config file, or print the documented example")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--check", dest="file", metavar="FILE", help="validate FILE and exit")
    group.add_argument("--example", action="store_true", help="print the example config with every key")
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("demo", help="run the capture chain with the synthetic camera, in real time")
    p.add_argument("--config", metavar="FILE", help="config file (default: embedded defaults)")
    p.add_argument("--workdir", default="bodycam-demo", help="where keys, spool and export go (default ./bodycam-demo)")
    p.add_argument("--seconds", type=float, default=12.0, help="length of the recording (default 12)")
    p.add_argument("--standby", type=float, help="seconds in standby before the trigger (default: window + 1)")
    p.add_argument("--pre-event", type=float, help="override recording.pre_event_seconds")
    p.add_argument("--width", type=int, help="override camera.width")
    p.add_argument("--height", type=int, help="override camera.height")
    p.add_argument("--panel", choices=list(DRIVER_SIZES), help="emulate this display driver's panel (default: the "
                                                                "config's display; e.g. st7789 for the colour TFT)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("display-off", help="clear and switch off the front display (the service runs this "
                                           "after the agent ends, also after a crash)")
    p.add_argument("--config", metavar="FILE", help="config file (default: embedded defaults)")
    p.set_defaults(func=_cmd_display_off)

    evidence_cli.register(sub)
    doctor_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, services=("run",))


if __name__ == "__main__":
    sys.exit(main())

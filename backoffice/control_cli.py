"""The control room's commands: `bodycam-office fleet` (live table) and `bodycam-office command` (signed
commands). The command key itself is made by `bodycam keys command` (:mod:`evidence.keys`).

Both connect with a control-room config file holding one ``[mqtt]`` section (the same keys as the
device's; the certificate's CN must be the broker user that may read status/telemetry and write
``cmd``, see docs/BROKER.md).
"""

from __future__ import annotations

import json
import queue
import sys
import time
import tomllib
from pathlib import Path

from base.errors import ConfigError
from base.config import parse_section
from evidence.keys import load_signing_key

from comms.commands import sign_command
from .fleet import FleetView
from comms.mqtt import Connected, Message, MqttLink
from comms.settings import MqttSettings



def load_control_config(path: str) -> MqttSettings:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"mqtt"}
    if unknown or not isinstance(data.get("mqtt"), dict):
        raise ConfigError(f"{path}: a control-room config holds exactly one [mqtt] section")
    settings = parse_section(MqttSettings, data["mqtt"], "mqtt", path)
    return settings


def _connect(settings: MqttSettings, client_id: str, filters: tuple[str, ...]) -> tuple[MqttLink, queue.Queue]:
    inbox: queue.Queue = queue.Queue()
    link = MqttLink(settings, settings.client_id or client_id)
    link.add_listener(inbox, filters)
    link.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if isinstance(inbox.get(timeout=0.5), Connected):
                link.subscribe([(f, 1) for f in filters])
                return link, inbox
        except queue.Empty:
            pass
    link.stop()
    raise ConfigError(f"cannot connect to the broker {settings.host}:{settings.port} within 15 s")


def cmd_command(args) -> int:
    settings = load_control_config(args.config)
    key = load_signing_key(args.key)
    cmd_args = {"officer": args.officer} if args.officer is not None else {}
    for item in args.arg or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--arg {item!r} must look like name=value")
        try:
            cmd_args[name] = json.loads(value)
        except ValueError:
            cmd_args[name] = value
    base = f"bodycam/{args.site}/{args.device}"
    link, inbox = _connect(settings, "control-room", (f"{base}/cmd/result",))
    try:
        payload = sign_command(key.private, args.device, args.name, cmd_args)
        command_id = json.loads(payload)["id"]
        link.publish(f"{base}/cmd", payload, qos=1)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            try:
                item = inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(item, Message) and json.loads(item.payload).get("id") == command_id:
                result = json.loads(item.payload)
                print(json.dumps(result, indent=1) if args.json else
                      f"{args.device}: {'OK' if result['ok'] else 'REJECTED'} ({result['code']}) {result['reason']}")
                return 0 if result["ok"] else 1
        print(f"{args.device}: no answer within {args.timeout:g} s (offline? the broker keeps the command "
              "for its session)", file=sys.stderr)
        return 1
    finally:
        link.stop()


def cmd_fleet(args) -> int:
    settings = load_control_config(args.config)
    link, inbox = _connect(settings, "fleet-view", ("bodycam/+/+/status", "bodycam/+/+/telemetry"))
    view = FleetView()
    try:
        end = time.monotonic() + args.once if args.once else None
        next_draw = 0.0
        while end is None or time.monotonic() < end:
            try:
                item = inbox.get(timeout=0.2)
                if isinstance(item, Message):
                    view.apply(item.topic, item.payload)
            except queue.Empty:
                pass
            if end is None and time.monotonic() >= next_draw:
                next_draw = time.monotonic() + 1.0
                sys.stdout.write("\x1b[H\x1b[2J" + view.render() + "\n")
                sys.stdout.flush()
        print(view.render())
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        link.stop()


def register(subparsers) -> None:
    p = subparsers.add_parser("fleet", help="control room: live table of every device (status and telemetry)")
    p.add_argument("--config", required=True, metavar="FILE", help="control-room config with an [mqtt] section")
    p.add_argument("--once", type=float, metavar="SECONDS", help="collect this long, print the table once, exit")
    p.set_defaults(func=cmd_fleet)

    p = subparsers.add_parser("command", help="control room: send a signed command to a device, print its answer")
    p.add_argument("--config", required=True, metavar="FILE", help="control-room config with an [mqtt] section")
    p.add_argument("--key", required=True, metavar="command.key", help="the back office's command key")
    p.add_argument("--site", required=True)
    p.add_argument("--device", required=True)
    p.add_argument("name", choices=["start", "stop", "identify", "mirror", "request-telemetry", "set", "assign",
                                    "unassign"])
    p.add_argument("--arg", action="append", metavar="NAME=VALUE",
                   help="command argument (JSON value), e.g. --arg on=true, --arg key=display.language --arg value=en")
    p.add_argument("--officer", metavar="ID", help="assign: the officer's pseudonymous id (always sent as text), "
                                                   "e.g. --officer ko-17")
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_command)

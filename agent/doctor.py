"""``bodycam doctor``: check one device from camera to broker and say, for each part, what to do.

Each check is a small function ``check_…(ctx) -> Check``: a level, one line saying what was found,
and, unless all is well, one sentence saying how to fix it. The doctor only looks: it never writes to
the spool, never opens the camera for capture and never changes a setting, so it is safe to run
beside the running agent and on a device that holds evidence.

Levels: OK; WARN (works, but something needs attention); FAIL (this part does not work; the command
exits 1); SKIP (does not apply here, e.g. a config section this version or this device does not have).

Hardware is injected through :class:`Context` (a picamera2 namespace, an I2C bus, a gpiozero pin
factory, the clock reading), as luma and gpiozero do, so every check runs in tests off the Pi. Checks
for parts that are configured in sections other packages add later ([display], [controls], [mqtt])
read them with ``getattr`` and report SKIP while the section does not exist.
"""

from __future__ import annotations

import calendar
import ctypes
import enum
import logging
import os
import pwd
import shutil
import socket
import ssl
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import config as config_mod
from base.errors import BodycamError
from .statusfile import StatusFileError, read_status, status_path

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "/etc/bodycam/agent.toml"
SERVICE_USER = "bodycam"
SERVICE = "bodycam-agent.service"
#: A segment waiting longer than this for its receipt means the device has not been online.
BACKLOG_WARN_AGE_S = 24 * 3600
#: Any clock before this is wrong (a Pi without network time starts at its last shutdown or 1970).
CLOCK_FLOOR = calendar.timegm((2025, 1, 1, 0, 0, 0))
BROKER_TIMEOUT_S = 5.0
#: luma drivers that draw into memory or a window instead of a panel on I2C.
EMULATED_DISPLAYS = frozenset({"dummy", "emulator", "none", "pygame", "capture", "gifanim", "asciiart",
                               "asciiblock"})
#: A no-operation command of the SSD1306/SH1106/SSD1309 controllers: a write the panel must ACK.
DISPLAY_NOP = 0xE3
SIMULATION_FIX = "nothing to do in a simulation; on the device install.sh selects the real hardware"


class Level(str, enum.Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, what was found, and how to fix it."""

    name: str
    level: Level
    title: str
    fix: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "level": self.level.value, "title": self.title, "fix": self.fix}


def ok(name: str, title: str) -> Check:
    return Check(name, Level.OK, title)


def warn(name: str, title: str, fix: str) -> Check:
    return Check(name, Level.WARN, title, fix)


def fail(name: str, title: str, fix: str) -> Check:
    return Check(name, Level.FAIL, title, fix)


def skip(name: str, title: str, fix: str = "") -> Check:
    return Check(name, Level.SKIP, title, fix)


@dataclass
class Context:
    """What the checks look at; every piece of hardware can be replaced for tests."""

    config_path: str
    config: config_mod.Config | None = None
    config_error: str | None = None
    service_user: str = SERVICE_USER
    #: The runtime's status file; None: the config's runtime.status_file.
    status_path: str | None = None
    #: A namespace with Picamera2 and H264Encoder (as camera.picam.load_picamera2); None imports it.
    picamera2: object | None = None
    #: An smbus2-like bus handed to luma's i2c interface; None opens /dev/i2c-N.
    i2c_bus: object | None = None
    #: A gpiozero pin factory; None uses gpiozero's default (GPIOZERO_PIN_FACTORY or lgpio).
    pin_factory: object | None = None
    #: True/False when the kernel says whether the clock is NTP-synchronised, None when unknown.
    clock_synchronised: Callable[[], bool | None] = field(default=lambda: kernel_clock_synchronised())
    #: "active", "inactive", "failed", … from systemd, or None when there is no such service here.
    service_state: Callable[[], str | None] = field(default=lambda: systemd_service_state(SERVICE))
    pi_model: str | None = field(default_factory=lambda: raspberry_pi_model())
    now: Callable[[], float] = time.time
    euid: int = field(default_factory=os.geteuid)

    @classmethod
    def load(cls, config_path: str = DEFAULT_CONFIG, **overrides) -> Context:
        """Read the config once; a bad config becomes the first FAIL, not an exception."""
        ctx = cls(config_path, **overrides)
        try:
            ctx.config = config_mod.load(config_path)
        except BodycamError as exc:
            ctx.config_error = str(exc)
        if ctx.status_path is None:
            ctx.status_path = status_path(ctx.config)
        return ctx

    @property
    def simulation(self) -> bool:
        return self.pi_model is None

    def agent_running(self) -> bool:
        """True when the service runs (systemd says so, or a fresh status file does)."""
        if self.service_state() == "active":
            return True
        try:
            status = read_status(self.status_path, now=self.now())
        except StatusFileError:
            return False
        return status is not None and status.running


# --- the machine ------------------------------------------------------------------------------

def raspberry_pi_model(path: str = "/proc/device-tree/model") -> str | None:
    """'Raspberry Pi 5 Model B Rev 1.0', or None off a Pi (the same test install.sh makes)."""
    try:
        model = Path(path).read_bytes().rstrip(b"\0").decode("ascii", "replace")
    except OSError:
        return None
    return model if "Raspberry Pi" in model else None


_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


def kernel_clock_synchronised() -> bool | None:
    """Ask the kernel (adjtimex, read-only) whether NTP has synchronised the clock, as timedatectl does."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex (~208 bytes); modes = 0 only reads
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return None
    return None if state < 0 else state != _TIME_ERROR


def systemd_service_state(unit: str) -> str | None:
    """``systemctl is-active``'s answer, or None where systemd is not running or the unit is unknown."""
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return None
    try:
        out = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    state = out.stdout.strip()
    return None if state in ("", "unknown") else state


def service_uid(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


# --- config, recipients, keys -----------------------------------------------------------------

def check_config(ctx: Context) -> Check:
    if ctx.config is None:
        if not Path(ctx.config_path).exists():
            return fail("config", f"{ctx.config_path} not found",
                        "run install.sh, which writes it from the documented example, or give --config FILE")
        return fail("config", ctx.config_error or "config not readable",
                    f"correct the named key in {ctx.config_path}; 'bodycam config --example' shows every key")
    c = ctx.config
    return ok("config", f"{ctx.config_path} is valid: device {c.device.site}/{c.device.id}, "
                        f"camera {c.camera.backend}, pre-event {c.recording.pre_event_seconds:g} s")


def check_recipients(ctx: Context) -> Check:
    from evidence.keys import load_recipients

    sources = ctx.config.evidence.recipients
    if not sources:
        return fail("recipients", "no evidence recipients configured: the agent will not record",
                    "install the municipality's public key with 'sudo install.sh --recipients evidence.pub' "
                    "or list it in evidence.recipients")
    try:
        recipients = load_recipients(sources)
    except BodycamError as exc:
        return fail("recipients", str(exc), "give the municipality's evidence.pub file (age1… recipient) "
                                            "in evidence.recipients")
    return ok("recipients", f"segments are encrypted to {len(recipients)} recipient(s)")


def check_keys(ctx: Context) -> Check:
    from evidence.keys import load_signing_key, parse_device_public_key

    path = Path(ctx.config.evidence.device_key)
    create = (f"create it with 'sudo install.sh' (or, as user {ctx.service_user}: "
              f"bodycam keys device --out {path.parent} --device-id {ctx.config.device.id})")
    try:
        st = path.stat()
    except FileNotFoundError:
        return fail("keys", f"device signing key {path} not found", create)
    except PermissionError:
        return warn("keys", f"cannot look at {path} as this user", "run the doctor as root: sudo bodycam doctor")
    owner_problem = _owner_problem(ctx, path, st)
    if owner_problem:
        return owner_problem
    try:
        key = load_signing_key(path, device_id=ctx.config.device.id)
    except BodycamError as exc:
        if isinstance(exc.__context__, PermissionError) or "Permission denied" in str(exc):
            return warn("keys", f"cannot read {path} as this user", "run the doctor as root: sudo bodycam doctor")
        return fail("keys", str(exc), f"fix the file, or move it aside and {create}")
    pub = path.with_name("device.pub")
    try:
        enrolled = parse_device_public_key(pub.read_text(encoding="ascii").strip(), str(pub))
    except (OSError, UnicodeDecodeError, BodycamError) as exc:
        return warn("keys", f"device key {key.key_id} present, but {pub} is unusable ({exc})",
                    "the back office needs device.pub to enrol the device; restore it from the enrolment record")
    if enrolled.key_id != key.key_id:
        return fail("keys", f"{pub} (key {enrolled.key_id}) does not belong to {path} (key {key.key_id})",
                    "enrol the key the device really has: ask the back office which key id it enrolled")
    if enrolled.device_id not in (None, ctx.config.device.id):
        return warn("keys", f"{pub} names device {enrolled.device_id!r}, the config says {ctx.config.device.id!r}",
                    "make device.id in the config match the enrolment, or enrol the key under the new id")
    return ok("keys", f"device signing key {key.key_id} ({path}, mode 0600) matches {pub.name}")


def _owner_problem(ctx: Context, path: Path, st: os.stat_result) -> Check | None:
    """A FAIL when the service user could not read ``path`` although root can."""
    if st.st_mode & 0o077:
        return fail("keys", f"{path} has mode {stat.filemode(st.st_mode)}: other users can read the private key",
                    f"run 'sudo chmod 600 {path}'")
    uid = service_uid(ctx.service_user)
    if uid is not None and st.st_uid != uid:
        owner = _user_name(st.st_uid)
        return fail("keys", f"{path} belongs to {owner}; the agent runs as {ctx.service_user} and cannot read it",
                    f"run 'sudo chown {ctx.service_user}:{ctx.service_user} {path}'")
    return None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


# --- the running agent ------------------------------------------------------------------------

def check_agent(ctx: Context) -> Check:
    state = ctx.service_state()
    try:
        status = read_status(ctx.status_path, now=ctx.now())
    except StatusFileError as exc:
        return warn("agent", str(exc), "restart the agent: sudo systemctl restart bodycam-agent")
    if status is not None and status.running:
        doc = status.doc
        faults = doc.get("faults") or {}
        if faults:
            return warn("agent", f"running, state {doc.get('state', '?')}, but faulty: "
                                 + "; ".join(f"{k}: {v}" for k, v in faults.items()),
                        "look at 'journalctl -u bodycam-agent -b'; the lines above may name the part")
        return ok("agent", f"running, state {doc.get('state', '?')}")
    if status is not None and status.stopped and state != "active":
        return warn("agent", f"the agent stopped {format_duration(status.age_s)} ago "
                             f"(exit code {status.doc.get('exit_code', '?')})",
                    "start it with 'sudo systemctl start bodycam-agent'; 'journalctl -u bodycam-agent -b' says why "
                    "it stopped")
    if status is not None and not status.stopped:
        return fail("agent", f"the agent stopped reporting {status.age_s:.0f} s ago (hung?)",
                    "restart it with 'sudo systemctl restart bodycam-agent' and look at "
                    "'journalctl -u bodycam-agent -b' for the reason")
    if state == "active":
        return ok("agent", "service bodycam-agent is active")
    if state is None:
        return skip("agent", "no bodycam-agent service on this machine",
                    "install it with install.sh to run the agent as a service")
    return warn("agent", f"service bodycam-agent is {state}",
                "start it with 'sudo systemctl start bodycam-agent'; 'journalctl -u bodycam-agent -b' says "
                "why it stopped")


# --- camera and encoder -----------------------------------------------------------------------

def _backend(ctx: Context) -> str:
    backend = ctx.config.camera.backend
    if backend != "auto":
        return backend
    if ctx.picamera2 is not None:
        return "picamera2"
    from camera.source import picamera2_available

    return "picamera2" if picamera2_available() else "synthetic"


def _picamera2(ctx: Context):
    if ctx.picamera2 is not None:
        return ctx.picamera2
    from camera.picam import load_picamera2

    return load_picamera2()


def check_camera(ctx: Context) -> Check:
    backend = _backend(ctx)
    if backend == "synthetic":
        if ctx.simulation:
            return ok("camera", "synthetic test pattern (simulation)")
        return warn("camera", f"this {ctx.pi_model} records a synthetic test pattern, not its camera",
                    "set camera.backend = \"auto\" in the config and restart the agent")
    try:
        cameras = _picamera2(ctx).Picamera2.global_camera_info()
    except BodycamError as exc:
        return fail("camera", str(exc), "install Raspberry Pi OS's camera stack: sudo apt install python3-picamera2")
    if not cameras:
        from camera.picam import NO_CAMERA

        return fail("camera", "no camera detected", NO_CAMERA[len("no camera detected: "):])
    first = cameras[0]
    return ok("camera", f"camera {first.get('Model', '?')} detected" +
              (f" (and {len(cameras) - 1} more)" if len(cameras) > 1 else ""))


def check_encoder(ctx: Context) -> Check:
    if _backend(ctx) == "synthetic":
        return _check_synthetic_encoder()
    try:
        encoder_class = _picamera2(ctx).H264Encoder
    except BodycamError as exc:
        return fail("encoder", str(exc), "install Raspberry Pi OS's camera stack: sudo apt install python3-picamera2")
    name = getattr(encoder_class, "__name__", str(encoder_class))
    if "Libav" not in name:
        return ok("encoder", "hardware H.264 encoder (/dev/video11) available")
    if ctx.pi_model and "Raspberry Pi 5" in ctx.pi_model:
        return ok("encoder", "software H.264 encoder (libav): the Pi 5 has no hardware encoder")
    return warn("encoder", "the hardware H.264 encoder /dev/video11 is not usable; picamera2 falls back to "
                           "software encoding, which may drop frames",
                "check that /dev/video11 exists and belongs to group video, and that the user is in group video")


def _check_synthetic_encoder() -> Check:
    """Encode two tiny frames with libx264, the same encoder the simulation records with."""
    from camera.synthetic import SyntheticSource

    try:
        frames = list(SyntheticSource(160, 120, 30.0, 200_000, gop_frames=30, realtime=False).frames(count=2))
    except BodycamError as exc:
        return fail("encoder", str(exc), "reinstall with 'sudo install.sh', which installs PyAV in simulation mode")
    if not frames or not frames[0].keyframe:
        return fail("encoder", "libx264 produced no keyframe", "reinstall PyAV: sudo install.sh")
    return ok("encoder", f"libx264 encodes ({sum(len(f.data) for f in frames)} bytes for 2 test frames)")


# --- display (I2C) and controls (GPIO) --------------------------------------------------------

def _first(section, *names, default=None):
    """The first attribute of ``section`` that exists: the keys of sections not yet built may vary."""
    for name in names:
        if hasattr(section, name):
            return getattr(section, name)
    return default


def check_display(ctx: Context) -> Check:
    display = getattr(ctx.config, "display", None)
    if display is None:
        return skip("display", "not configured (this version has no [display] section)")
    driver = str(_first(display, "driver", "device", "type", default="") or "").lower()
    if (driver in EMULATED_DISPLAYS or not driver) and not ctx.simulation:
        return warn("display", f"display.driver = {driver or 'none'!r} on a {ctx.pi_model}: the officer sees no state",
                    "set display.driver to the fitted panel (ssd1306, sh1106 or ssd1309) and restart the agent")
    if driver in EMULATED_DISPLAYS or not driver:
        return ok("display", f"emulated display ({driver or 'none'})")
    port = int(_first(display, "i2c_port", "port", "bus", default=1))
    try:
        address = int(str(_first(display, "i2c_address", "address", default=0x3C)), 0)
    except ValueError:
        return fail("display", f"display address {_first(display, 'i2c_address', 'address')!r} is not a number",
                    "write the address as in i2cdetect's table, e.g. 0x3C")
    return _probe_display(ctx, driver, port, address)


def _probe_display(ctx: Context, driver: str, port: int, address: int) -> Check:
    """Send one no-op command: the panel must acknowledge its address (as i2cdetect probes it)."""
    from luma.core.error import DeviceAddressError, DeviceNotFoundError, DevicePermissionError
    from luma.core.interface.serial import i2c

    where = f"{driver} at 0x{address:02X} on I2C bus {port}"
    try:
        serial = i2c(bus=ctx.i2c_bus, port=port, address=address)
    except DevicePermissionError:
        return fail("display", f"no permission to open /dev/i2c-{port}",
                    f"the user needs group i2c ({ctx.service_user} has it; run the doctor with sudo)")
    except (DeviceNotFoundError, FileNotFoundError):
        return fail("display", f"I2C bus /dev/i2c-{port} does not exist",
                    "enable I2C with 'sudo raspi-config nonint do_i2c 0' (install.sh does this) and reboot")
    except DeviceAddressError as exc:
        return fail("display", str(exc), "write the address as in i2cdetect's table, e.g. 0x3C")
    try:
        serial.command(DISPLAY_NOP)
    except (DeviceNotFoundError, OSError):
        return fail("display", f"no display answers: {where}",
                    f"check the wiring (SDA pin 3, SCL pin 5, 3.3 V, GND) and the address with 'i2cdetect -y {port}'")
    finally:
        _cleanup(serial)
    return ok("display", f"display answers: {where}")


def _cleanup(serial) -> None:
    try:
        serial.cleanup()
    except OSError as exc:
        logger.debug("closing the I2C bus failed: %s", exc)


def _configured_pins(controls) -> dict[str, object]:
    """The pins [controls] uses: its ``pin_keys()``, else every ``…_pin`` key; 0 or empty means none."""
    if hasattr(controls, "pin_keys"):
        names = controls.pin_keys()
    else:
        names = [n for n in (getattr(controls, "__dataclass_fields__", None) or vars(controls)) if n.endswith("_pin")]
    pins = {}
    for name in names:
        value = getattr(controls, name, None)
        if value not in (None, "", 0, -1) and not isinstance(value, bool):
            pins[name] = value
    return pins


def check_gpio(ctx: Context) -> Check:
    controls = getattr(ctx.config, "controls", None)
    if controls is None:
        return skip("gpio", "not configured (this version has no [controls] section)")
    pins = _configured_pins(controls)
    if not pins:
        return skip("gpio", "no GPIO pins configured in [controls]")
    listed = ", ".join(f"{k}={v}" for k, v in pins.items())
    if ctx.agent_running():
        return ok("gpio", f"pins {listed} are held by the running agent (stop it to test them alone)")
    try:
        factory = _pin_factory(ctx, controls)
    except Exception as exc:  # gpiozero raises BadPinFactory, ImportError, lgpio.error … here
        return fail("gpio", f"no GPIO access: {exc}",
                    "the user needs group gpio (run the doctor with sudo); off the Pi set GPIOZERO_PIN_FACTORY=mock")
    if type(factory).__name__ == "MockFactory" and ctx.simulation:
        return ok("gpio", f"mock GPIO (simulation): {listed}")
    busy = [f"{name}={pin} ({reason})" for name, pin in pins.items() if (reason := _pin_busy(factory, pin))]
    if busy:
        return fail("gpio", f"GPIO pins in use by another program: {', '.join(busy)}",
                    "stop the other program ('sudo gpioinfo' names the line's user) or choose free pins in [controls]")
    return ok("gpio", f"GPIO pins free: {listed}")


def _pin_factory(ctx: Context, controls):
    """The factory the agent would use: the injected one, else as controls.pin_factory chooses (ui.gpio)."""
    if ctx.pin_factory is not None:
        return ctx.pin_factory
    from gpiozero import Device

    choose = _ui_pin_factory()
    factory = choose(str(getattr(controls, "pin_factory", "auto"))) if choose else None
    if factory is not None:
        return factory
    Device.ensure_pin_factory()
    return Device.pin_factory


def _ui_pin_factory():
    """ui.gpio's pin_factory(name), or None where the ui package is not installed."""
    try:
        from ui.gpio import pin_factory
    except ImportError:
        return None
    return pin_factory


class _PinProbe:
    """Stands for the doctor in gpiozero's pin reservations (which keep weak references)."""


def _pin_busy(factory, pin) -> str | None:
    """Why ``pin`` cannot be claimed (in this process or by another one), or None when it is free."""
    owner = _PinProbe()
    try:
        factory.reserve_pins(owner, pin)
        factory.pin(pin).close()  # lgpio claims the line here: 'GPIO busy' when another process holds it
    except Exception as exc:  # GPIOPinInUse, PinInvalidPin, lgpio.error: all mean "not usable"
        return str(exc) or type(exc).__name__
    finally:
        factory.release_all(owner)
    return None


# --- clock --------------------------------------------------------------------------------------

def check_clock(ctx: Context) -> Check:
    now = ctx.now()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    if now < CLOCK_FLOOR:
        return fail("clock", f"the clock says {stamp}: segments would carry a wrong time",
                    "connect the device to a network with NTP ('sudo timedatectl set-ntp true'); the Pi has "
                    "no battery-backed clock")
    synced = ctx.clock_synchronised()
    if synced:
        return ok("clock", f"synchronised ({stamp})")
    if synced is None:
        return warn("clock", f"cannot tell whether the clock is synchronised ({stamp})",
                    "check 'timedatectl' shows 'System clock synchronized: yes'")
    return warn("clock", f"not synchronised by NTP ({stamp}); segment times may drift",
                "enable network time with 'sudo timedatectl set-ntp true' and let the device reach an NTP server")


# --- broker ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    ca: str
    cert: str
    key: str
    username: str | None = None
    password: str | None = None


def broker_settings(mqtt) -> BrokerSettings:
    """The [mqtt] keys the check needs (comms.settings.MqttSettings: host, port, ca_file, cert_file, key_file)."""
    def path(*names) -> str:
        for name in names:
            if hasattr(mqtt, name):
                return str(mqtt.resolved(name) if hasattr(mqtt, "resolved") else getattr(mqtt, name))
        return ""

    return BrokerSettings(
        host=str(_first(mqtt, "host", default="") or ""),
        port=int(_first(mqtt, "port", default=8883)),
        ca=path("ca_file", "ca"), cert=path("cert_file", "cert"), key=path("key_file", "key"),
        username=_first(mqtt, "username", default=None) or None,
        password=_first(mqtt, "password", default=None) or None)


def check_broker(ctx: Context) -> Check:
    mqtt = getattr(ctx.config, "mqtt", None)
    if mqtt is None:
        return skip("broker", "not configured (this version has no [mqtt] section)")
    s = broker_settings(mqtt)
    if not s.host:
        return warn("broker", "no broker configured: segments stay on the card",
                    "enter the municipality's broker (host, port, ca_file, cert_file, key_file) in the [mqtt] section")
    problem = _tls_files_problem(ctx, s)
    if problem:
        return problem
    try:
        context = tls_context(s)
    except ssl.SSLError as exc:
        return fail("broker", f"client certificate {s.cert} and key {s.key} do not fit together ({exc.reason})",
                    "install the certificate the CA issued for this device's client.csr")
    except PermissionError:
        return warn("broker", f"cannot read {s.key} as this user", "run the doctor as root: sudo bodycam doctor")
    return probe_broker(s, context, client_id=ctx.config.device.id)


def _tls_files_problem(ctx: Context, s: BrokerSettings) -> Check | None:
    csr = Path(s.key).with_name("client.csr")
    for what, path, fix in (
            ("CA certificate", s.ca, "copy the municipality CA's certificate there (see docs/INSTALL.md, enrolment)"),
            ("client certificate", s.cert, f"have the CA sign {csr} and install the certificate there"),
            ("client key", s.key, "run 'sudo install.sh', which creates the key and its certificate request")):
        if not path:
            return fail("broker", f"no {what} configured in [mqtt]", f"set it; {fix}")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return fail("broker", f"{what} {path} not found", fix)
        except PermissionError:
            return warn("broker", f"cannot look at {path} as this user", "run the doctor as root: sudo bodycam doctor")
        if what == "client key" and st.st_mode & 0o077:
            return fail("broker", f"{path} has mode {stat.filemode(st.st_mode)}: other users can read the key",
                        f"run 'sudo chmod 600 {path}'")
    return None


def tls_context(s: BrokerSettings) -> ssl.SSLContext:
    """Verify the broker against the municipality's CA only, and present the device's certificate."""
    context = ssl.create_default_context(cafile=s.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(s.cert, s.key)
    return context


def probe_broker(s: BrokerSettings, context: ssl.SSLContext, client_id: str,
                 timeout: float = BROKER_TIMEOUT_S) -> Check:
    """Connect, complete TLS and an MQTT CONNECT; a client certificate the broker rejects shows up here.

    With TLS 1.3 the server checks the client certificate after the client's handshake is done, so the
    rejection arrives as an alert on the first read: the CONNACK is what proves the certificate was
    accepted. The broker makes the certificate's CN the client id (docs/BROKER.md), so the probe
    connects *as* the device: it asks to keep the session, so the receipts queued for the device stay,
    and a running agent only reconnects.
    """
    where = f"{s.host}:{s.port}"
    try:
        with socket.create_connection((s.host, s.port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=s.host) as tls:
            tls.sendall(mqtt_connect_packet(client_id, s.username, s.password))
            code = read_connack(tls)
            tls.sendall(b"\xe0\x00")  # DISCONNECT
    except socket.gaierror:
        return fail("broker", f"cannot resolve {s.host}", "check the host name in [mqtt] and the device's DNS")
    except ssl.SSLCertVerificationError as exc:
        return fail("broker", f"{where}: the broker's certificate is not trusted ({exc.verify_message})",
                    "check [mqtt] ca is the CA that signed the broker's certificate and the host name matches it")
    except ssl.SSLError as exc:
        return fail("broker", f"{where} rejected the TLS connection ({exc.reason or exc})",
                    "the broker does not accept this device's certificate: check client.crt was signed by the CA "
                    "the broker trusts and has not expired or been revoked")
    except (ConnectionRefusedError, TimeoutError) as exc:
        return fail("broker", f"cannot reach {where} ({exc.strerror or 'timed out'})",
                    "check the network, the host and port in [mqtt], and that the broker runs")
    except (OSError, BrokerProtocolError) as exc:
        return fail("broker", f"{where}: {exc}", "check the host and port in [mqtt] point to an MQTT broker over TLS")
    if code != 0:
        reason = CONNACK_REASONS.get(code, f"refused with code {code}")
        return fail("broker", f"{where} accepted TLS but refused the MQTT connection: {reason}",
                    "ask the broker's administrator to allow this device (its certificate's CN is the device id)")
    return ok("broker", f"{where}: TLS verified, client certificate accepted (MQTT CONNACK 0)")


class BrokerProtocolError(Exception):
    """The peer did not answer like an MQTT broker."""


CONNACK_REASONS = {1: "unacceptable protocol version", 2: "client id rejected", 3: "server unavailable",
                   4: "bad user name or password", 5: "not authorised"}


def mqtt_connect_packet(client_id: str, username: str | None = None, password: str | None = None) -> bytes:
    """An MQTT 3.1.1 CONNECT: keep the session (clean session 0), 10 s keep-alive."""
    flags = 0x00
    payload = _mqtt_string(client_id)
    if username:
        flags |= 0x80
        payload += _mqtt_string(username)
        if password:
            flags |= 0x40
            payload += _mqtt_string(password)
    body = _mqtt_string("MQTT") + bytes([4, flags, 0, 10]) + payload
    return b"\x10" + _remaining_length(len(body)) + body


def _mqtt_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(2, "big") + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_connack(sock) -> int:
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            raise BrokerProtocolError("the broker closed the connection without answering CONNECT")
        data += chunk
    if data[0] != 0x20 or data[1] != 2:
        raise BrokerProtocolError(f"unexpected answer to CONNECT ({data.hex()})")
    return data[3]


# --- spool and backlog ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SpoolScan:
    """A read-only look at the spool directory (the agent's Spool recovers; this only counts)."""

    pending: int
    pending_bytes: int
    oldest_mtime: float | None
    acknowledged: int
    quarantined: int


def scan_spool(directory: str | os.PathLike) -> SpoolScan:
    """Count segments whose manifest has no receipt yet, without touching a file."""
    from evidence.spool import AGE_SUFFIX, MANIFEST_SUFFIX, QUARANTINE_DIR, RECEIPT_SUFFIX

    d = Path(directory)
    names = {e.name: e for e in os.scandir(d) if e.is_file(follow_symlinks=False)}
    pending = acked = size = 0
    oldest = None
    for name, entry in names.items():
        if not name.endswith(MANIFEST_SUFFIX):
            continue
        stem = name[: -len(MANIFEST_SUFFIX)]
        if stem + RECEIPT_SUFFIX in names:
            acked += 1
            continue
        pending += 1
        st = entry.stat()
        age = names.get(stem + AGE_SUFFIX)
        size += st.st_size + (age.stat().st_size if age else 0)
        oldest = st.st_mtime if oldest is None else min(oldest, st.st_mtime)
    quarantine = d / QUARANTINE_DIR
    quarantined = sum(1 for _ in quarantine.iterdir()) if quarantine.is_dir() else 0
    return SpoolScan(pending, size, oldest, acked, quarantined)


def check_spool(ctx: Context) -> Check:
    from .diskspace import DiskPressure, PressureLevel

    storage = ctx.config.storage
    path = Path(storage.spool_dir)
    if not path.is_dir():
        return fail("spool", f"spool directory {path} does not exist",
                    f"run 'sudo install.sh', which creates it for user {ctx.service_user}")
    problem = _writable_problem(ctx, path)
    if problem:
        return problem
    try:
        snap = DiskPressure(path, storage.warn_free_mib, storage.critical_free_mib).measure()
    except BodycamError as exc:
        return fail("spool", str(exc), "check the SD card")
    if snap.level is PressureLevel.CRITICAL:
        return fail("spool", snap.reason, "connect the device so it uploads its backlog, or free space on the card")
    if snap.level is PressureLevel.WARN:
        return warn("spool", snap.reason, "connect the device so it uploads its backlog")
    return ok("spool", f"{path} writable by {ctx.service_user}, {snap.free_mib:.0f} MiB free")


def _writable_problem(ctx: Context, path: Path) -> Check | None:
    """As root, judge by owner and mode (root may write anywhere); otherwise ask the kernel."""
    uid = service_uid(ctx.service_user)
    fix = f"run 'sudo chown -R {ctx.service_user}:{ctx.service_user} {path}' (install.sh sets it up so)"
    if ctx.euid == 0 and uid is not None:
        st = path.stat()
        if st.st_uid != uid or st.st_mode & 0o700 != 0o700:
            return fail("spool", f"{path} ({stat.filemode(st.st_mode)}, owner {_user_name(st.st_uid)}) is not "
                                 f"writable by the agent's user {ctx.service_user}", fix)
        return None
    if not os.access(path, os.W_OK | os.X_OK):
        return fail("spool", f"{path} is not writable by this user", fix)
    return None


def check_backlog(ctx: Context) -> Check:
    path = Path(ctx.config.storage.spool_dir)
    if not path.is_dir():
        return skip("backlog", f"no spool directory {path}")
    try:
        scan = scan_spool(path)
    except PermissionError:
        return warn("backlog", f"cannot read {path} as this user", "run the doctor as root: sudo bodycam doctor")
    if scan.quarantined:
        return warn("backlog", f"{scan.quarantined} file(s) in {path / 'quarantine'} failed verification at start-up",
                    "copy them to the back office for examination; they are evidence and never deleted automatically")
    if not scan.pending:
        return ok("backlog", f"nothing waiting for the back office ({scan.acknowledged} acknowledged on the card)")
    age = ctx.now() - scan.oldest_mtime
    title = (f"{scan.pending} segment(s), {scan.pending_bytes / 2**20:.1f} MiB waiting for the back office's "
             f"receipt, oldest {format_duration(age)}")
    if age > BACKLOG_WARN_AGE_S:
        return warn("backlog", title, "connect the device to the network so it can upload; check the broker line above")
    return ok("backlog", title)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


# --- running them -------------------------------------------------------------------------------

#: In report order; the ones after check_config need a valid config.
CHECKS: tuple[Callable[[Context], Check], ...] = (
    check_config, check_recipients, check_keys, check_agent, check_camera, check_encoder,
    check_display, check_gpio, check_clock, check_broker, check_spool, check_backlog)
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

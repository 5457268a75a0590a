"""What the checks look at: the config, the status file, and the hardware, each replaceable in tests.

Hardware is injected as luma and gpiozero do it (a picamera2 namespace, an I2C bus, a gpiozero pin
factory, the clock reading), so every check runs in tests off the Pi.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from base.errors import BodycamError

from .. import config as config_mod
from ..statusfile import StatusFileError, read_status, status_path
from .machine import kernel_clock_synchronised, raspberry_pi_model, systemd_service_state

DEFAULT_CONFIG = "/etc/bodycam/agent.toml"
SERVICE_USER = "bodycam"
SERVICE = "bodycam-agent.service"


@dataclass
class Context:
    config_path: str
    config: config_mod.Config | None = None
    config_error: str | None = None
    service_user: str = SERVICE_USER
    #: The runtime's status file; None: the config's runtime.status_file.
    status_path: str | None = None
    #: A namespace with Picamera2 and H264Encoder (as camera.picam.load_picamera2); None imports it.
    picamera2: object | None = None
    #: Opens and closes an ALSA capture device by name, raising when it cannot; None uses PyAV.
    open_microphone: Callable[[str], None] | None = None
    #: An smbus2-like bus handed to luma's i2c interface; None opens /dev/i2c-N.
    i2c_bus: object | None = None
    #: Where the SPI displays' /dev/spidevP.D nodes are (a folder of stand-ins in tests).
    dev_dir: str = "/dev"
    #: A gpiozero pin factory; None: the one controls.pin_factory chooses (ui.gpio).
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

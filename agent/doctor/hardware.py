"""Checks of the device's hardware: camera, H.264 encoder, microphone, the front display on I2C or SPI,
and the GPIO pins of button, LEDs and buzzer. Each opens the part only as far as needed to see it answer."""

from __future__ import annotations

import logging
import os

from base.errors import BodycamError
from ui.settings import DRIVER_SIZES, SPI_DRIVERS

from .check import Check, fail, ok, skip, warn
from .context import Context

logger = logging.getLogger(__name__)

#: A no-operation command of the SSD1306/SH1106/SSD1309 controllers: a write the panel must ACK.
DISPLAY_NOP = 0xE3


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


LIST_MICROPHONES = ("'arecord -l' lists the capture devices (card N, device M: set audio.device = \"hw:N,M\"), "
                    "'arecord -L' their names; then restart the agent")


def check_microphone(ctx: Context) -> Check:
    """With sound switched on: the configured ALSA capture device opens (picamera2), or the
    simulation's AAC encoder works (synthetic)."""
    audio = ctx.config.audio
    if not audio.enabled:
        return skip("microphone", "sound is switched off (audio.enabled = false)")
    if _backend(ctx) == "synthetic":
        from camera.synthaudio import SyntheticAudio

        try:
            packets = SyntheticAudio(audio.bitrate).advance(100_000, beep=True)
        except Exception as exc:
            return fail("microphone", f"the simulation's AAC encoder does not work ({exc})",
                        "install the project with its 'sim' extra (PyAV with FFmpeg's AAC encoder)")
        return ok("microphone", f"synthetic test tone, AAC {audio.bitrate // 1000} kbit/s ({len(packets)} packets "
                                "encoded)")
    try:
        (ctx.open_microphone or _open_alsa)(audio.device)
    except Exception as exc:
        return fail("microphone", f"the microphone {audio.device!r} cannot be opened ({exc})", LIST_MICROPHONES)
    return ok("microphone", f"microphone {audio.device!r} opens (ALSA)")


def _open_alsa(device: str) -> None:
    """Open the ALSA capture device as picamera2 will, read one block of sound, close it."""
    from camera.pyav import import_av

    av = import_av()
    with av.open(device, format="alsa") as container:
        next(container.decode(audio=0))


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


def check_display(ctx: Context) -> Check:
    display = ctx.config.display
    if display.driver not in DRIVER_SIZES:  # dummy or emulator: drawn into memory or a file, not a panel
        if not ctx.simulation:
            return warn("display", f"display.driver = {display.driver!r} on a {ctx.pi_model}: the officer sees "
                                   "no state",
                        f"set display.driver to the fitted panel ({', '.join(DRIVER_SIZES)}) and restart the agent")
        return ok("display", f"emulated display ({display.driver})")
    if display.driver in SPI_DRIVERS:
        return _check_spi_bus(ctx, display.driver, display.spi_port, display.spi_device)
    return _probe_display(ctx, display.driver, display.i2c_port, display.i2c_address)


def _check_spi_bus(ctx: Context, driver: str, port: int, device: int) -> Check:
    """An SPI panel cannot answer (the bus has no acknowledge): the bus must exist and open for writing."""
    path = os.path.join(ctx.dev_dir, f"spidev{port}.{device}")
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return fail("display", f"SPI bus {path} does not exist",
                    "enable SPI with 'sudo raspi-config nonint do_spi 0' and reboot; check display.spi_port and "
                    "display.spi_device")
    except PermissionError:
        return fail("display", f"no permission to open {path}",
                    f"the user needs group spi (add {ctx.service_user}: 'sudo usermod -aG spi {ctx.service_user}')")
    os.close(fd)
    return ok("display", f"{driver} on SPI bus {path} (an SPI panel cannot answer: check that it shows the screen)")


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


def check_gpio(ctx: Context) -> Check:
    controls = ctx.config.controls
    pins = {key: getattr(controls, key) for key in controls.pin_keys() if getattr(controls, key)}  # 0: none
    listed = ", ".join(f"{k}={v}" for k, v in pins.items())
    if ctx.agent_running():
        return ok("gpio", f"pins {listed} are held by the running agent (stop it to test them alone)")
    try:
        factory = _pin_factory(ctx, controls.pin_factory)
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


def _pin_factory(ctx: Context, name: str):
    """The factory the agent would use: the injected one, else as controls.pin_factory chooses (ui.gpio)."""
    if ctx.pin_factory is not None:
        return ctx.pin_factory
    from gpiozero import Device

    from ui.gpio import pin_factory

    factory = pin_factory(name)
    if factory is not None:
        return factory
    Device.ensure_pin_factory()
    return Device.pin_factory


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

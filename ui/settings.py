"""The [display], [controls] and [signals] sections of agent.toml, declared with :func:`agent.config.option`.

Per-key limits live in the field metadata (checked by the shared loader, errors name the key); what
involves two keys (a size the chosen driver cannot drive, two functions on one GPIO) is checked in
``__post_init__`` and ``problems()`` and also names the keys. Nothing here touches hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

from base.config import option
from base.errors import ConfigError

#: Display sizes each luma driver accepts (luma raises DeviceDisplayModeError for any other).
DRIVER_SIZES = {
    "ssd1306": ((128, 64), (128, 32), (96, 16), (64, 48), (64, 32)),
    "ssd1309": ((128, 64), (128, 32), (96, 16), (64, 48), (64, 32)),
    "sh1106": ((128, 128), (128, 64), (128, 32)),
    "ssd1322": ((256, 64),),  # 3.12" 16-level grey OLED (luma.oled), SPI
    "ssd1362": ((256, 64),),
    "ssd1351": ((128, 128), (128, 96)),  # 1.5" colour OLED (luma.oled), SPI
    "st7789": ((320, 240), (240, 240)),  # 2.0-2.8" colour TFT (luma.lcd), SPI, landscape
    "ili9341": ((320, 240), (240, 240), (320, 180)),
}
#: What each driver's pixels are; dummy and emulator show what ``display.panel`` names.
DRIVER_PANELS = {"ssd1306": "mono", "ssd1309": "mono", "sh1106": "mono", "ssd1322": "grey", "ssd1362": "grey",
                 "ssd1351": "colour", "st7789": "colour", "ili9341": "colour"}
I2C_DRIVERS = ("ssd1306", "ssd1309", "sh1106")
SPI_DRIVERS = ("ssd1322", "ssd1362", "ssd1351", "st7789", "ili9341")
#: Drivers with a separate LED backlight (the OLEDs light their own pixels).
BACKLIT_DRIVERS = ("st7789", "ili9341")
DRIVERS = ("dummy", "emulator", *DRIVER_SIZES)
PANELS = ("auto", "mono", "grey", "colour")
#: SPI clock rates the Pi's driver (and luma) accept, in MHz.
SPI_SPEEDS_MHZ = (1, 2, 4, 8, 16, 20, 24, 28, 32, 36, 40, 44, 48, 50, 52)
#: SPI0's own pins (CE1, CE0, MISO, MOSI, SCLK): never a display's DC, reset or backlight pin.
SPI0_PINS = (7, 8, 9, 10, 11)
LANGUAGES = ("de", "en")
DITHERS = ("floyd-steinberg", "bayer")
PIN_FACTORIES = ("auto", "lgpio", "rpigpio", "pigpio", "native", "mock")

#: BCM numbers on the 40-pin header. GPIO0/1 belong to the HAT ID EEPROM, so 0 can mean "none".
GPIO_MAX = 27
#: SDA/SCL of I2C port 1, where the front display sits.
I2C_PINS = (2, 3)
#: Shortest reminder interval that is still a reminder rather than a nuisance.
MIN_REMINDER_SECONDS = 10.0
#: A stop needs this much longer a hold than a start, so one long bump cannot be read as both.
MIN_HOLD_GAP_SECONDS = 1.0


@dataclass(frozen=True)
class DisplayConfig:
    driver: str = option("dummy", "ssd1306, sh1106, ssd1309 (I2C OLED), emulator (PNG/GIF) or dummy (none).",
                         choices=DRIVERS)
    i2c_port: int = option(1, "I2C bus number (/dev/i2c-N); 1 on every current Raspberry Pi.", min=0, max=10)
    i2c_address: int = option(0x3C, "I2C address of the display (0x3C or 0x3D).", min=0x03, max=0x77)
    rotation: int = option(0, "Quarter turns clockwise (0-3), to match how the display is mounted.", min=0, max=3)
    contrast: int = option(255, "OLED drive level 0-255; full for daylight.", min=0, max=255)
    width: int = option(128, "Display width in pixels (after rotation: the panel's own width).", min=32, max=320)
    height: int = option(64, "Display height in pixels.", min=16, max=320)
    panel: str = option("auto", "auto (what the driver drives), or for dummy/emulator: mono, grey or colour.",
                        choices=PANELS)
    spi_port: int = option(0, "SPI displays: SPI bus (/dev/spidevPORT.DEVICE); 0 on the 40-pin header.",
                           min=0, max=6)
    spi_device: int = option(0, "SPI displays: chip select, 0 = CE0 (GPIO8), 1 = CE1 (GPIO7).", min=0, max=2)
    spi_speed_mhz: int = option(32, "SPI displays: bus clock in MHz (a 320x240 colour frame is 1.2 Mbit).",
                                min=1, max=52)
    dc_pin: int = option(22, "SPI displays: BCM number of the data/command pin (DC, sometimes RS).",
                         min=1, max=GPIO_MAX)
    reset_pin: int = option(27, "SPI displays: BCM number of the reset pin (RST, RES); 0: not connected.",
                            min=0, max=GPIO_MAX)
    backlight_pin: int = option(18, "TFTs: BCM number of the backlight pin (BL, LED), driven with PWM; 0: none.",
                                min=0, max=GPIO_MAX)
    backlight_percent: int = option(100, "TFTs: backlight brightness; full for daylight.", min=1, max=100)
    backlight_active_high: bool = option(True, "TFTs: true when the backlight lights with its pin high.")
    fps: float = option(10.0, "Display frames per second (the live mirror needs 10).", min=1.0, max=30.0)
    language: str = option("de", "Language of everything on the display: de or en.", choices=LANGUAGES)
    mirror_flip: bool = option(True, "Flip the live picture left-right, so people see themselves as in a mirror.")
    dither: str = option("floyd-steinberg", "floyd-steinberg (detail) or bayer (steadier between frames).",
                         choices=DITHERS)
    emulator_path: str = option("bodycam-display.gif",
                                "driver = emulator only: a .gif collects an animation, a .png one file per frame.")

    def __post_init__(self):
        sizes = DRIVER_SIZES.get(self.driver)
        if sizes is not None and (self.width, self.height) not in sizes:
            allowed = ", ".join(f"{w}x{h}" for w, h in sizes)
            raise ConfigError(f"display.width/display.height = {self.width}x{self.height} is not a size the "
                              f"{self.driver} driver supports (allowed: {allowed})")
        if self.driver == "emulator" and not self.emulator_path.lower().endswith((".gif", ".png")):
            raise ConfigError(f"display.emulator_path = {self.emulator_path!r} must end in .gif (animation) "
                              "or .png (one file per frame)")

    @property
    def pixels(self) -> str:
        """mono, grey or colour: what the panel shows (the driver's, or ``panel`` for dummy/emulator)."""
        if self.panel == "auto":
            return DRIVER_PANELS.get(self.driver, "mono")
        return self.panel

    def problems(self):
        own = DRIVER_PANELS.get(self.driver)
        if own is not None and self.panel not in ("auto", own):
            yield "panel", f"= {self.panel!r}, but a {self.driver} is a {own} panel (leave it at 'auto')"
        if self.spi_speed_mhz not in SPI_SPEEDS_MHZ:
            yield "spi_speed_mhz", (f"= {self.spi_speed_mhz} is not a clock luma's SPI interface takes (one of: "
                                    f"{', '.join(map(str, SPI_SPEEDS_MHZ))})")
        used: dict[int, str] = {}
        for key, pin in self.spi_pins().items():
            if pin in SPI0_PINS and self.spi_port == 0:
                yield key, f"= {pin}: GPIO{pin} is one of SPI0's own pins (7-11), taken by the display's bus"
            elif pin in I2C_PINS:
                yield key, f"= {pin}: GPIO{pin} is I2C SDA/SCL"
            elif pin in used:
                yield key, f"= {pin} is already used by display.{used[pin]}; every signal needs its own GPIO"
            used[pin] = key

    def spi_pins(self) -> dict[str, int]:
        """The GPIOs this display claims besides its bus (key → BCM number), for the controls' check."""
        if self.driver not in SPI_DRIVERS:
            return {}
        pins = {"dc_pin": self.dc_pin, "reset_pin": self.reset_pin}
        if self.driver in BACKLIT_DRIVERS:
            pins["backlight_pin"] = self.backlight_pin
        return {key: pin for key, pin in pins.items() if pin}


@dataclass(frozen=True)
class ControlsConfig:
    pin_factory: str = option("auto", "gpiozero pin library; auto = the Pi's default on a Pi, mock elsewhere.",
                              choices=PIN_FACTORIES)
    button_pin: int = option(17, "BCM number of the record button.", min=1, max=GPIO_MAX)
    button_pull_up: bool = option(True, "true: button connects the pin to GND (internal pull-up).")
    hold_seconds: float = option(1.0, "Hold this long to start recording (a short press toggles the mirror).",
                                 min=0.3, max=5.0)
    long_hold_seconds: float = option(3.0, "Hold this long to stop a recording (at least hold_seconds + 1).",
                                      min=1.3, max=10.0)
    debounce_seconds: float = option(0.03, "Contact bounce shorter than this is ignored.", min=0.005, max=0.2)
    trigger_pin: int = option(0, "BCM number of a generic trigger input, e.g. a holster sensor (0: none). "
                                 "It starts a recording; it never stops one.", min=0, max=GPIO_MAX)
    trigger_pull_up: bool = option(True, "true: the trigger input is active when pulled to GND.")
    led_red_pin: int = option(23, "BCM number of the red LED (0: none).", min=0, max=GPIO_MAX)
    led_green_pin: int = option(24, "BCM number of the green LED (0: none).", min=0, max=GPIO_MAX)
    led_active_high: bool = option(True, "true: the LED lights when its pin is high.")
    buzzer_pin: int = option(25, "BCM number of the buzzer or vibration motor (0: none).", min=0, max=GPIO_MAX)
    buzzer_active_high: bool = option(True, "true: the buzzer runs when its pin is high.")
    tone_pin: int = option(0, "BCM number of the sounder the person in front hears (a piezo buzzer facing out) "
                              "for signals.start_tone (0: none).", min=0, max=GPIO_MAX)
    tone_active_high: bool = option(True, "true: the sounder sounds when its pin is high.")
    reminder_seconds: float = option(120.0, "While recording, a short pulse this often (0: off, else >= 10).",
                                     min=0.0, max=3600.0)
    dock_pin: int = option(0, "BCM number of the dock contact, active while the device sits in its charging dock "
                              "(officer check-out ends the shift there; 0: none).", min=0, max=GPIO_MAX)
    dock_pull_up: bool = option(False, "true: the dock contact pulls the pin to GND; false: the dock's 5 V drives it "
                                       "high (through a divider to 3.3 V).")

    def __post_init__(self):
        if self.long_hold_seconds < self.hold_seconds + MIN_HOLD_GAP_SECONDS:
            raise ConfigError(
                f"controls.long_hold_seconds = {self.long_hold_seconds:g} must be at least controls.hold_seconds "
                f"({self.hold_seconds:g}) + {MIN_HOLD_GAP_SECONDS:g}, so a start and a stop can never be confused")
        if 0 < self.reminder_seconds < MIN_REMINDER_SECONDS:
            raise ConfigError(f"controls.reminder_seconds = {self.reminder_seconds:g} must be 0 (off) or at "
                              f"least {MIN_REMINDER_SECONDS:g}")
        used: dict[int, str] = {}
        for key in self.pin_keys():
            pin = getattr(self, key)
            if pin == 0:
                continue
            if pin in I2C_PINS:
                raise ConfigError(f"controls.{key} = {pin}: GPIO{pin} is I2C SDA/SCL, taken by the front display")
            if pin in used:
                raise ConfigError(f"controls.{key} = {pin} is already used by controls.{used[pin]}; "
                                  "every function needs its own GPIO")
            used[pin] = key

    @staticmethod
    def pin_keys() -> tuple[str, ...]:
        """The keys that name GPIO pins, in the order they are claimed."""
        return ("button_pin", "trigger_pin", "led_red_pin", "led_green_pin", "buzzer_pin", "dock_pin", "tone_pin")


@dataclass(frozen=True)
class SignalsConfig:
    """What tells the person in front of the camera that it records (besides the red LED and the display)."""

    start_tone: bool = option(False, "Sound a short tone on controls.tone_pin when a recording starts and another "
                                     "when it ends, for the person in front (default: policy.profile's).")


def signal_problems(signals: SignalsConfig, controls: ControlsConfig):
    """(signals key, sentence) for a signal asked for without the part that gives it."""
    if signals.start_tone and not controls.tone_pin:
        yield "start_tone", ("= true needs a sounder the person in front can hear: set controls.tone_pin to the BCM "
                             "number of the piezo buzzer, or signals.start_tone = false where the legal profile "
                             "allows it")


def pin_conflicts(display: DisplayConfig, controls: ControlsConfig):
    """(controls key, sentence) for each control on a GPIO an SPI display takes (its bus, DC, reset, backlight)."""
    taken = {pin: f"display.{key}" for key, pin in display.spi_pins().items()}
    if display.driver in SPI_DRIVERS and display.spi_port == 0:
        taken.update({pin: "the display's SPI0 bus (GPIO7-11)" for pin in SPI0_PINS})
    for key in controls.pin_keys():
        pin = getattr(controls, key)
        if pin and pin in taken:
            yield key, f"= {pin} is already used by {taken[pin]}; every function needs its own GPIO"

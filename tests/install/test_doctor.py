"""bodycam doctor: each check against a device laid out in a temporary directory, its real config
(agent.config, changed with config.replace), fake hardware (picamera2 namespace, I2C bus, gpiozero's
MockFactory) and a TLS broker on 127.0.0.1."""

from __future__ import annotations

import argparse
import errno
import json
import os
import time
from types import SimpleNamespace

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from agent import config as config_mod
from agent import doctor, doctor_cli
from agent.doctor import Level
from agent.doctor.check import ok
from agent.doctor.hardware import DISPLAY_NOP, check_camera, check_display, check_encoder, check_gpio, \
    check_microphone
from agent.doctor.checkout import check_checkout
from agent.doctor.local import check_agent, check_clock, check_config, check_keys, check_recipients
from agent.doctor.machine import kernel_clock_synchronised, service_uid
from agent.doctor.network import check_broker
from agent.doctor.storage import check_backlog, check_spool, scan_spool
from agent.status import StatusDocument
from agent.statusfile import write_status
from comms.probe import connect_packet

from .conftest import add_segment, current_user, write_config

PI4 = "Raspberry Pi 4 Model B Rev 1.5"
PI5 = "Raspberry Pi 5 Model B Rev 1.0"


def make_ctx(device, **overrides) -> doctor.Context:
    """The device's config as the doctor reads it; hardware all fake, the service user whoever runs the tests."""
    args = dict(service_user=current_user(), status_path=str(device.root / "status.json"), pi_model=None,
                clock_synchronised=lambda: True, service_state=lambda: None)
    args.update(overrides)
    return doctor.Context.load(str(device.config), **args)


def changed(ctx: doctor.Context, section: str, **keys) -> doctor.Context:
    """The same context with some keys of one config section changed (validated like the file)."""
    ctx.config = config_mod.replace(ctx.config, section, **keys)
    return ctx


def by_name(results) -> dict[str, doctor.Check]:
    return {r.name: r for r in results}


@pytest.fixture
def mock_factory():
    factory = MockFactory()
    yield factory
    factory.close()


# --- the whole report ---------------------------------------------------------------------------

def test_a_healthy_simulated_device_has_no_fail(device, mock_factory):
    ctx = changed(make_ctx(device, pin_factory=mock_factory), "uplink", enabled=False)
    results = by_name(doctor.run_checks(ctx))
    assert [n for n in results] == ["config", "recipients", "keys", "agent", "camera", "encoder", "microphone",
                                    "display", "gpio", "checkout", "clock", "broker", "spool", "backlog"]
    for name in ("config", "recipients", "keys", "camera", "encoder", "display", "gpio", "clock", "spool",
                 "backlog"):
        assert results[name].level is Level.OK, results[name]
    for name in ("agent", "broker", "microphone"):  # no service here; uploading and sound switched off
        assert results[name].level is Level.SKIP, results[name]
    assert doctor.exit_code(list(results.values())) == 0


def test_missing_config_fails_and_skips_what_needs_it(tmp_path):
    ctx = doctor.Context.load(str(tmp_path / "nope.toml"), pi_model=None, clock_synchronised=lambda: True,
                              service_state=lambda: None, status_path=str(tmp_path / "s.json"))
    results = by_name(doctor.run_checks(ctx))
    assert results["config"].level is Level.FAIL and "install.sh" in results["config"].fix
    assert results["camera"].level is Level.SKIP and "valid config" in results["camera"].title
    assert results["clock"].level is Level.OK
    assert doctor.exit_code(list(results.values())) == 1


def test_invalid_config_names_the_key(device):
    device.config.write_text('[camera]\nbackend = "webcam"\n')
    result = check_config(make_ctx(device))
    assert result.level is Level.FAIL and "camera.backend" in result.title


def test_the_config_line_names_the_legal_profile_and_a_breach_is_its_sentence(device):
    text = device.config.read_text()
    assert "legal profile custom" in check_config(make_ctx(device)).title
    device.config.write_text(text + '\n[policy]\nprofile = "nrw"\n')
    result = check_config(make_ctx(device))
    assert result.level is Level.OK and "legal profile nrw (Nordrhein-Westfalen" in result.title
    assert "pre-event 30 s (announced)" in result.title
    device.config.write_text(text + '\n[policy]\nprofile = "nrw"\n[audio]\nenabled = true\n'
                                    '[recording]\npre_event_seconds = 60.0\n')
    result = check_config(make_ctx(device))
    assert result.level is Level.FAIL and "breaks legal profile 'nrw'" in result.title


def test_a_crashing_check_is_reported_not_raised(device):
    def check_boom(ctx):
        raise RuntimeError("boom")

    [result] = doctor.run_checks(make_ctx(device), checks=(check_boom,))
    assert result.level is Level.FAIL and "RuntimeError: boom" in result.title


# --- recipients and keys --------------------------------------------------------------------------

def test_no_recipients_fails(device):
    write_config(device.config, device.root, device.spool, device.key, [])
    result = check_recipients(make_ctx(device))
    assert result.level is Level.FAIL and "--recipients" in result.fix


def test_key_missing(device):
    device.key.unlink()
    result = check_keys(make_ctx(device))
    assert result.level is Level.FAIL and "not found" in result.title and "install.sh" in result.fix


def test_key_readable_by_others(device):
    device.key.chmod(0o644)
    result = check_keys(make_ctx(device))
    assert result.level is Level.FAIL and f"chmod 600 {device.key}" in result.fix


def test_key_owned_by_someone_else_than_the_service_user(device):
    if os.geteuid() == service_uid("nobody"):
        pytest.skip("runs as nobody")
    result = check_keys(make_ctx(device, service_user="nobody"))
    assert result.level is Level.FAIL and "chown nobody:nobody" in result.fix


def test_device_pub_of_another_key(device, tmp_path):
    from evidence.keys import generate_device_key

    other = tmp_path / "other"
    other.mkdir()
    generate_device_key(other, device_id="cam-0042")
    (device.key.parent / "device.pub").write_text((other / "device.pub").read_text())
    result = check_keys(make_ctx(device))
    assert result.level is Level.FAIL and "does not belong" in result.title


def test_device_pub_names_another_device(device):
    pub = device.key.parent / "device.pub"
    pub.write_text(pub.read_text().replace("cam-0042", "cam-9999"))
    result = check_keys(make_ctx(device))
    assert result.level is Level.WARN and "cam-9999" in result.title


# --- camera and encoder ---------------------------------------------------------------------------

def fake_picamera2(cameras, encoder_name="H264Encoder"):
    picamera2 = type("Picamera2", (), {"global_camera_info": staticmethod(lambda: cameras)})
    return SimpleNamespace(Picamera2=picamera2, H264Encoder=type(encoder_name, (), {}))


def picam_ctx(device, **overrides):
    write_config(device.config, device.root, device.spool, device.key, [str(device.recipients)],
                 backend="picamera2")
    return make_ctx(device, pi_model=PI4, **overrides)


def test_camera_detected(device):
    ctx = picam_ctx(device, picamera2=fake_picamera2([{"Model": "imx708"}]))
    assert check_camera(ctx) == ok("camera", "camera imx708 detected")


def test_no_camera_says_check_the_cable(device):
    result = check_camera(picam_ctx(device, picamera2=fake_picamera2([])))
    assert result.level is Level.FAIL and "ribbon cable" in result.fix


def test_test_pattern_on_a_pi_is_a_warning(device):
    result = check_camera(make_ctx(device, pi_model=PI4))
    assert result.level is Level.WARN and 'backend = "auto"' in result.fix


@pytest.mark.parametrize("encoder, model, level", [
    ("H264Encoder", PI4, Level.OK),
    ("LibavH264Encoder", PI5, Level.OK),
    ("LibavH264Encoder", PI4, Level.WARN),
])
def test_encoder_choice(device, encoder, model, level):
    ctx = picam_ctx(device, picamera2=fake_picamera2([{"Model": "imx708"}], encoder))
    ctx.pi_model = model
    assert check_encoder(ctx).level is level


def test_synthetic_encoder_really_encodes(device):
    result = check_encoder(make_ctx(device))
    assert result.level is Level.OK and "libx264" in result.title


# --- display on I2C -------------------------------------------------------------------------------

class FakeBus:
    """An smbus2-like bus; ``answer=False`` plays a display that does not ACK its address."""

    def __init__(self, answer=True):
        self.answer = answer
        self.writes = []

    def write_i2c_block_data(self, address, register, data):
        if not self.answer:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        self.writes.append((address, register, list(data)))

    def close(self):
        pass


def display_ctx(device, bus=None, **display):
    keys = {"driver": "ssd1306", "i2c_port": 1, "i2c_address": 0x3C} | display
    return changed(make_ctx(device, i2c_bus=bus), "display", **keys)


def test_display_answers(device):
    bus = FakeBus()
    result = check_display(display_ctx(device, bus))
    assert result.level is Level.OK and "0x3C" in result.title
    assert bus.writes == [(0x3C, 0x00, [DISPLAY_NOP])]


def test_display_silent(device):
    result = check_display(display_ctx(device, FakeBus(answer=False)))
    assert result.level is Level.FAIL and "i2cdetect -y 1" in result.fix


def test_display_bus_missing(device):
    if os.path.exists("/dev/i2c-9"):
        pytest.skip("this machine has an I2C bus 9")
    result = check_display(display_ctx(device, None, i2c_port=9))
    assert result.level is Level.FAIL and "/dev/i2c-9" in result.title and "do_i2c" in result.fix


@pytest.mark.parametrize("driver", ["dummy", "emulator"])
def test_emulated_display(device, driver):
    assert check_display(display_ctx(device, driver=driver)) == ok("display", f"emulated display ({driver})")


def test_no_display_on_a_pi_is_a_warning(device):
    ctx = display_ctx(device, driver="dummy")
    ctx.pi_model = PI4
    result = check_display(ctx)
    assert result.level is Level.WARN and "ssd1306" in result.fix


def test_spi_display_needs_its_bus(device, tmp_path):
    ctx = display_ctx(device, driver="st7789", width=320, height=240, spi_port=0, spi_device=1)
    ctx.dev_dir = str(tmp_path)
    missing = check_display(ctx)
    assert missing.level is Level.FAIL and "spidev0.1 does not exist" in missing.title and "do_spi" in missing.fix
    (tmp_path / "spidev0.1").write_bytes(b"")
    present = check_display(ctx)
    assert present.level is Level.OK and "st7789 on SPI bus" in present.title


# --- buttons and LEDs on GPIO ----------------------------------------------------------------------

def gpio_ctx(device, factory, **overrides):
    """The default pins ([controls] of agent.example.toml) without a buzzer (0: none)."""
    return changed(make_ctx(device, pin_factory=factory, **overrides), "controls", buzzer_pin=0)


def test_gpio_mock_in_simulation(device, mock_factory):
    result = check_gpio(gpio_ctx(device, mock_factory))
    assert result.level is Level.OK and "mock GPIO" in result.title and "buzzer" not in result.title


def test_gpio_free_on_a_pi(device, mock_factory):
    result = check_gpio(gpio_ctx(device, mock_factory, pi_model=PI4))
    assert result == ok("gpio", "GPIO pins free: button_pin=17, led_red_pin=23, led_green_pin=24")


def test_gpio_pin_in_use(device, mock_factory):
    holder = Button(17, pin_factory=mock_factory)
    try:
        result = check_gpio(gpio_ctx(device, mock_factory, pi_model=PI4))
    finally:
        holder.close()
    assert result.level is Level.FAIL and "button_pin=17" in result.title and "led_red_pin" not in result.title


def test_gpio_the_factory_the_config_names(device):
    """Nothing injected: controls.pin_factory chooses, as in the agent (ui.gpio)."""
    ctx = changed(make_ctx(device, pi_model=PI4), "controls", pin_factory="mock")
    result = check_gpio(ctx)
    assert result.level is Level.OK and result.title.startswith("GPIO pins free: button_pin=17")


def test_gpio_left_alone_while_the_agent_runs(device, mock_factory):
    result = check_gpio(gpio_ctx(device, mock_factory, pi_model=PI4, service_state=lambda: "active"))
    assert result.level is Level.OK and "running agent" in result.title


# --- clock ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("synced, level", [(True, Level.OK), (False, Level.WARN), (None, Level.WARN)])
def test_clock_sync(device, synced, level):
    assert check_clock(make_ctx(device, clock_synchronised=lambda: synced)).level is level


def test_clock_in_1970(device):
    result = check_clock(make_ctx(device, now=lambda: 86400.0))
    assert result.level is Level.FAIL and "1970" in result.title


def test_kernel_clock_reading_does_not_crash():
    assert kernel_clock_synchronised() in (True, False, None)


# --- broker over TLS --------------------------------------------------------------------------------

def mqtt_ctx(device, pki, port, **mqtt):
    keys = {"host": "127.0.0.1", "port": port, "ca_file": str(pki.ca), "cert_file": str(pki.client_cert),
            "key_file": str(pki.client_key)} | mqtt
    return changed(make_ctx(device), "mqtt", **keys)


def test_broker_accepts_the_device(device, pki, broker):
    b = broker()
    result = check_broker(mqtt_ctx(device, pki, b.port))
    assert result.level is Level.OK and "client certificate accepted" in result.title
    assert b.client_ids == ["cam-0042"]


def test_broker_refuses_the_mqtt_connection(device, pki, broker):
    b = broker(return_code=5)
    result = check_broker(mqtt_ctx(device, pki, b.port))
    assert result.level is Level.FAIL and "not authorised" in result.title


def test_broker_rejects_a_certificate_from_another_ca(device, pki, broker):
    b = broker()
    result = check_broker(mqtt_ctx(device, pki, b.port, cert_file=str(pki.other_client_cert),
                                   key_file=str(pki.other_client_key)))
    assert result.level is Level.FAIL and "rejected" in result.title and "client.crt" in result.fix
    assert b.client_ids == []


def test_broker_certificate_not_trusted(device, pki, broker):
    b = broker()
    result = check_broker(mqtt_ctx(device, pki, b.port, ca_file=str(pki.other_ca)))
    assert result.level is Level.FAIL and "not trusted" in result.title


def test_broker_not_listening(device, pki, broker):
    b = broker()
    port = b.port
    b.stop()
    result = check_broker(mqtt_ctx(device, pki, port))
    assert result.level is Level.FAIL and "cannot reach" in result.title


def test_certificate_and_key_mismatch(device, pki):
    result = check_broker(mqtt_ctx(device, pki, 1, key_file=str(pki.other_client_key)))
    assert result.level is Level.FAIL and "do not fit together" in result.title


def test_ca_file_missing(device, pki):
    result = check_broker(mqtt_ctx(device, pki, 1, ca_file=str(device.root / "ca.crt")))
    assert result.level is Level.FAIL and "not found" in result.title


def test_client_key_readable_by_others(device, pki, tmp_path):
    key = tmp_path / "client.key"
    key.write_bytes(pki.client_key.read_bytes())
    key.chmod(0o644)
    result = check_broker(mqtt_ctx(device, pki, 1, key_file=str(key)))
    assert result.level is Level.FAIL and "chmod 600" in result.fix


def test_the_configured_client_id_is_the_one_the_probe_uses(device, pki, broker):
    b = broker()
    assert check_broker(mqtt_ctx(device, pki, b.port, client_id="cam-0042-a")).level is Level.OK
    assert b.client_ids == ["cam-0042-a"]  # as comms.mqtt.MqttLink connects


def test_uploading_switched_off(device, pki):
    result = check_broker(changed(mqtt_ctx(device, pki, 8883), "uplink", enabled=False))
    assert result.level is Level.SKIP and "uplink.enabled = false" in result.title


def test_broker_not_configured(device, pki):
    result = check_broker(mqtt_ctx(device, pki, 8883, host=""))
    assert result.level is Level.WARN and "[mqtt]" in result.fix


def test_connect_packet_matches_mqtt_311():
    packet = connect_packet("cam-0042")
    assert packet[0] == 0x10 and packet[1] == len(packet) - 2
    assert packet[2:10] == b"\x00\x04MQTT\x04" + bytes([0x00])  # no user name or password; clean session 0
    assert packet[12:14] == len("cam-0042").to_bytes(2, "big") and packet[14:] == b"cam-0042"


# --- spool and backlog ----------------------------------------------------------------------------

def test_spool_missing(device):
    device.spool.rmdir()
    result = check_spool(make_ctx(device))
    assert result.level is Level.FAIL and "install.sh" in result.fix


def test_spool_not_writable_by_the_service_user(device):
    if os.geteuid() != 0:
        pytest.skip("the owner check applies when the doctor runs as root")
    result = check_spool(make_ctx(device, service_user="nobody"))
    assert result.level is Level.FAIL and "chown -R nobody:nobody" in result.fix


def test_spool_nearly_full(device):
    ctx = make_ctx(device)  # a 1 TiB minimum: more than any test machine has free
    ctx.config = config_mod.replace(ctx.config, "storage", warn_free_mib=1_048_576.0, critical_free_mib=1_048_576.0)
    result = check_spool(ctx)
    assert result.level is Level.FAIL and "storage critical" in result.title


def test_backlog_counts_segments_without_receipt(device):
    add_segment(device.spool, 1, receipt=True)
    add_segment(device.spool, 2, age_s=600)
    add_segment(device.spool, 3)
    result = check_backlog(make_ctx(device))
    assert result.level is Level.OK and result.title.startswith("2 segment(s)") and "oldest 10 min" in result.title


def test_old_backlog_is_a_warning(device):
    add_segment(device.spool, 1, age_s=3 * 86400)
    result = check_backlog(make_ctx(device))
    assert result.level is Level.WARN and "3 days" in result.title


def test_quarantine_is_a_warning(device):
    (device.spool / "quarantine").mkdir()
    (device.spool / "quarantine" / "cam-0042-0000000001.age").write_bytes(b"?")
    result = check_backlog(make_ctx(device))
    assert result.level is Level.WARN and "never deleted" in result.fix


def test_scan_changes_nothing(device):
    add_segment(device.spool, 1)
    (device.spool / "cam-0042-0000000002.age.tmp").write_bytes(b"partial")
    before = sorted(p.name for p in device.spool.iterdir())
    scan_spool(device.spool)
    assert sorted(p.name for p in device.spool.iterdir()) == before


# --- the running agent ------------------------------------------------------------------------------

def agent_status(state="standby", age_s=1.0, **fields) -> StatusDocument:
    return StatusDocument(time=time.time() - age_s, version="0.1.0", device="cam-0042", site="musterstadt",
                          state=state, **fields)


def test_agent_reporting(device):
    write_status(agent_status(), device.root / "status.json")
    result = check_agent(make_ctx(device))
    assert result == ok("agent", "running, state standby")


def test_agent_with_a_fault(device):
    write_status(agent_status(faults={"camera": "no frames"}), device.root / "status.json")
    result = check_agent(make_ctx(device))
    assert result.level is Level.WARN and "camera: no frames" in result.title


def test_agent_stopped(device):
    write_status(agent_status("stopped", age_s=30, exit_code=2), device.root / "status.json")
    result = check_agent(make_ctx(device, service_state=lambda: "failed"))
    assert result.level is Level.WARN and result.title == "the agent stopped 30 s ago (exit code 2)"


def test_agent_stopped_reporting(device):
    write_status(agent_status(age_s=600), device.root / "status.json")
    result = check_agent(make_ctx(device))
    assert result.level is Level.FAIL and "journalctl" in result.fix


def test_agent_status_file_unreadable(device):
    (device.root / "status.json").write_text('{"time": 1}')
    result = check_agent(make_ctx(device))
    assert result.level is Level.WARN and "not a bodycam status document" in result.title


def test_agent_service_failed(device):
    result = check_agent(make_ctx(device, service_state=lambda: "failed"))
    assert result.level is Level.WARN and "systemctl start" in result.fix


# --- the command ----------------------------------------------------------------------------------

def test_cli_prints_one_line_per_check_and_the_fix(device, mock_factory, capsys):
    write_config(device.config, device.root, device.spool, device.key, [])
    ctx = changed(make_ctx(device, pin_factory=mock_factory), "uplink", enabled=False)
    code = doctor_cli.cmd_doctor(argparse.Namespace(config=str(device.config), json=False), ctx)
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[1].startswith("FAIL  recipients no evidence recipients")
    assert out[2].strip().startswith("fix: install the municipality's public key")
    assert out[-1] == "9 OK, 1 FAIL, 4 SKIP"  # agent, broker, microphone (sound off), checkout (off)


def test_cli_json(device, mock_factory, capsys):
    ctx = changed(make_ctx(device, pin_factory=mock_factory), "uplink", enabled=False)
    code = doctor_cli.cmd_doctor(argparse.Namespace(config=str(device.config), json=True), ctx)
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["ok"] is True
    assert {c["name"]: c["level"] for c in doc["checks"]}["camera"] == "OK"


def test_register_adds_doctor_and_status():
    parser = argparse.ArgumentParser(prog="bodycam")
    doctor_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["doctor", "--config", "x.toml", "--json"])
    assert args.func is doctor_cli.cmd_doctor and args.config == "x.toml" and args.json
    args = parser.parse_args(["status"])
    assert args.func is doctor_cli.cmd_status and args.file is None  # then runtime.status_file


# --- microphone ---------------------------------------------------------------------------------------

def with_sound(ctx: doctor.Context, device: str = "hw:1,0") -> doctor.Context:
    return changed(ctx, "audio", enabled=True, device=device)


def test_microphone_is_skipped_while_sound_is_off(device):
    assert check_microphone(make_ctx(device)).level is Level.SKIP


def test_a_microphone_that_opens_is_ok_and_one_that_does_not_says_how_to_list_them(device):
    opened = []
    ctx = with_sound(picam_ctx(device, picamera2=fake_picamera2([{"Model": "imx708"}]), open_microphone=opened.append))
    assert check_microphone(ctx) == ok("microphone", "microphone 'hw:1,0' opens (ALSA)")
    assert opened == ["hw:1,0"]

    def missing(name):
        raise FileNotFoundError(2, "No such file or directory")

    result = check_microphone(with_sound(picam_ctx(device, open_microphone=missing), "hw:9,0"))
    assert result.level is Level.FAIL and "'hw:9,0'" in result.title
    assert "arecord -l" in result.fix and "audio.device" in result.fix


def test_the_simulations_sound_encoder_is_checked(device):
    result = check_microphone(with_sound(make_ctx(device)))
    assert result.level is Level.OK and "AAC" in result.title


# --- officer check-out ----------------------------------------------------------------------------------

def test_checkout_is_skipped_while_off(device):
    assert check_checkout(make_ctx(device)).level is Level.SKIP


def test_checkout_reads_the_badge_table_and_asks_the_reader_for_its_firmware(device, tmp_path):
    from tests.ui.fake_pn532 import FakePn532Bus

    table = tmp_path / "badges.toml"
    table.write_text('[badges]\n"04a1b2c3d4e5f6" = "ko-17"\n"08:11:22:33" = "ko-23"\n')
    ctx = changed(make_ctx(device), "checkout", enabled=True, badges=str(table))
    assert check_checkout(ctx) == ok("checkout", f"badge table {table}: 2 badge(s); no NFC reader (assignment by "
                                                 "the back office's command only)")
    bus = FakePn532Bus(firmware=(0x32, 0x01, 0x06, 0x07))
    ctx = changed(make_ctx(device, i2c_bus=bus), "checkout", enabled=True, badges=str(table), nfc_reader="pn532")
    result = check_checkout(ctx)
    assert result.level is Level.OK and "PN532 firmware 1.6 on I2C bus 1 at 0x24" in result.title, result
    assert bus.closed  # the agent's reader thread can open it afterwards


def test_checkout_names_a_damaged_table_and_a_silent_reader(device, tmp_path):
    from tests.ui.fake_pn532 import FakePn532Bus

    table = tmp_path / "badges.toml"
    table.write_text('[badges]\n"04a1b2c3d4e5f6" = "Erika Mustermann"\n')
    result = check_checkout(changed(make_ctx(device), "checkout", enabled=True, badges=str(table)))
    assert result.level is Level.FAIL and "pseudonymous id" in result.title and "[badges]" in result.fix
    result = check_checkout(changed(make_ctx(device), "checkout", enabled=True, badges=str(tmp_path / "none.toml")))
    assert result.level is Level.FAIL and "no badge table" in result.title
    table.write_text('[badges]\n"04a1b2c3d4e5f6" = "ko-17"\n')
    ctx = changed(make_ctx(device, i2c_bus=FakePn532Bus(present=False)), "checkout", enabled=True, badges=str(table),
                  nfc_reader="pn532")
    result = check_checkout(ctx)
    assert result.level is Level.FAIL and "does not answer" in result.title and "i2cdetect -y 1" in result.fix

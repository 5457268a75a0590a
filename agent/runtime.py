"""The composition root: `bodycam run` builds the parts from config, starts them in order, watches them,
and stops them in reverse.

Start order follows the data, downstream first, so that nothing produces into a part that is not
there yet: evidence stage (keys, chain, audit log, spool recovery
recorded in it, end marker for an incident a crash cut off) → sealer → recorder → storage monitor
→ camera. Stop order is the reverse: the camera stops, the recorder closes a running incident (its
last segment goes to the sealer), the sealer seals what is queued, then the audit log is closed.

The main thread supervises. It restarts a crashed worker (camera, recorder, sealer, storage monitor)
at most ``runtime.max_restarts`` times, then exits non-zero so systemd restarts the whole service. It
tells systemd READY=1 once frames flow through a live pipeline, and feeds the watchdog only while
that stays true: a hung pipeline gets the service restarted.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from camera.ring import PreEventRing
from camera.source import FrameSource, open_source

from base import __version__
from evidence import audit
from . import config
from .alerts import derive_alerts
from .bridge import command_trigger, recording_event
from .config import Config
from base.errors import BodycamError, ConfigError
from .health import StorageMonitor
from .instancelock import AlreadyRunningError, InstanceLock
from .memory import release_free_heap
from .pipeline import RecorderThread
from .recorder import Recorder, Trigger
from base.sdnotify import Notifier, watchdog_interval
from .sealing import EvidenceStage, SealerThread, clock_sync_state
from .sensors import BatteryMonitor, cpu_temperature_c, throttling, wifi_link
from .status import INTERVAL_S as STATUS_PERIOD_S
from .status import AuditHead, Backlog, ChainHead, DisplayRate, PreEvent, StatusAlert, StatusDocument, Storage
from .statusfile import write_status

logger = logging.getLogger(__name__)

#: After the sealer stopped: how long a recorder that waited on it may take to end.
RECORDER_LATE_JOIN_S = 5.0
#: Keys that a SIGHUP applies to the running agent; any other change needs a restart.
RELOADABLE = {("recording", "pre_event_seconds"), ("recording", "post_event_seconds"),
              ("recording", "pre_event_mode")}
#: Keys that a remote 'set' applies to the running agent (comms.commands says which may be sent at all).
LIVE_SETTINGS = {("recording", "pre_event_seconds"), ("telemetry", "interval_seconds"), ("display", "language")}


@dataclass
class _Worker:
    """One supervised part: how to build and start it, and how many times it was restarted."""

    name: str
    build: Callable[[], object]
    instance: object = None
    restarts: int = 0

    def alive(self) -> bool:
        obj = self.instance
        if isinstance(obj, FrameSource):
            return obj.running and obj.fault is None
        return obj is not None and obj.is_alive()

    def fault(self) -> str | None:
        return describe_fault(getattr(self.instance, "fault", None))


def describe_fault(fault: BaseException | None) -> str | None:
    return f"{type(fault).__name__}: {fault}" if fault is not None else None


class Agent:
    """The device's parts, wired together. Not a thread itself: the caller supervises."""

    def __init__(self, cfg: Config, source_factory: Callable[[object], FrameSource] = open_source,
                 officer_ui: bool = True):
        self.cfg = cfg
        self._source_factory = source_factory
        self._officer_ui = officer_ui
        self.stage = EvidenceStage(cfg)
        self.battery = BatteryMonitor(cfg.battery)
        #: Officer check-out (agent.shift); None unless checkout.enabled.
        self.shift = None
        #: The latest alert list (agent.alerts); replaced as a whole, read by display and telemetry.
        self.alerts: list = []
        self._health = None
        self._readings: dict = {}
        self._status_cache: StatusDocument | None = None
        self.display = self.indicators = self.controls = None
        self.link = self.uplink = self.channel = None
        self.sealer: SealerThread | None = None
        self.recorder_thread: RecorderThread | None = None
        self.source: FrameSource | None = None
        self.monitor: StorageMonitor | None = None
        self._camera_started = False
        self._frames_seen = 0
        self._last_frame_progress = time.monotonic()
        self._workers = [
            _Worker("sealer", self._build_sealer),
            _Worker("recorder", self._build_recorder),
            _Worker("storage monitor", self._build_monitor),
            _Worker("camera", self._build_camera),
        ]

    # -- building ------------------------------------------------------------------------------------
    def _build_sealer(self):
        self.sealer = SealerThread(self.stage)
        self.sealer.start()
        return self.sealer

    def _build_recorder(self):
        rec = self.cfg.recording
        if self.source is None:
            self.source = self._source_factory(self.cfg.camera, self.cfg.audio)  # built, not started: its formats
        source = self.source
        recorder = Recorder(source.info, PreEventRing(rec.pre_event_seconds, int(rec.pre_event_max_mib * 2**20)),
                            rec.segment_seconds, self.sealer.put, rec.post_event_seconds,
                            lambda: self.source.request_keyframe(), self.stage.storage_gate, audio=source.audio,
                            pre_event_mode=rec.pre_event_mode)
        recorder.subscribe(self.stage.record_event)
        recorder.subscribe(self._to_channel)
        per_second = source.info.fps  # frames, and sound packets (about 47 a second) share the queue
        if source.audio is not None:
            per_second += source.audio.sample_rate / source.audio.frame_samples
        self.recorder_thread = RecorderThread(recorder, round(rec.capture_queue_seconds * per_second),
                                              on_status=self._on_status)
        self.recorder_thread.start()
        return self.recorder_thread

    def _build_monitor(self):
        self.monitor = StorageMonitor(self.stage.disk, is_recording=self.is_recording, trigger=self.trigger,
                                      audit_log=self.stage.audit)
        self.monitor.start()
        return self.monitor

    def _build_camera(self):
        if self._camera_started:  # a restart: the old source is spent, open the camera afresh
            self.source.stop()
            self.source = self._source_factory(self.cfg.camera, self.cfg.audio)
        self._camera_started = True
        if self.source.audio is not None:
            self.source.start(self._offer, self._offer_audio)
        else:
            self.source.start(self._offer)
        return self.source

    def _on_status(self, status) -> None:
        """On the recorder thread: wake display and LED on a change of state (they only set events)."""
        if self._wake is not None:
            self._wake(status)

    _wake = None

    def _to_channel(self, event) -> None:
        """On the recorder thread: its state changes reach the broker channel as comms' recording events."""
        change = recording_event(event)
        if change is not None and self.channel is not None:
            self.channel.on_recorder_event(change)

    def _build_shift(self) -> None:
        """Officer check-out: the assignment, the badge reader, the dock contact (its pin claimed now, so a
        bad one is an error at start naming its key); the sealer asks it who carries the device."""
        from ui.gpio import pin_factory

        from .shift import Shift

        pins = self._pins if self._officer_ui else pin_factory(self.cfg.controls.pin_factory)
        ctl = self.cfg.controls
        self.shift = shift = Shift(self.cfg.checkout, self.cfg.evidence.state_dir, self.stage.audit,
                                   dock_pin=ctl.dock_pin, dock_pull_up=ctl.dock_pull_up, pin_factory=pins)
        self.stage.current_officer = lambda: shift.officer
        shift.start()

    def _tend_shift(self) -> None:
        """Main thread: badges presented since the last look, and the dock."""
        if self.shift is None:
            return
        uplink = self.cfg.uplink.enabled
        if self.shift.tend(recording=self.is_recording(),
                           delivered=lambda: not uplink or self.stage.spool.backlog().count == 0):
            if self.display is not None:
                self.display.wake()

    def _build_officer_outputs(self) -> None:
        """LED/buzzer and display exist before the recorder, so its first state change reaches them."""
        from ui.display import build_display_thread, wake_on_state_change
        from ui.gpio import pin_factory
        from ui.indicators import IndicatorThread
        from ui.view import ViewBuilder

        from .officer import alert_codes, officer_status, officer_storage

        self._pins = pin_factory(self.cfg.controls.pin_factory)
        status = lambda: officer_status(self.recorder_thread.status if self.recorder_thread else None)  # noqa: E731
        self._view = builder = ViewBuilder(status, preview=lambda: self.source.preview() if self.source else None,
                              disk=lambda: officer_storage(self.monitor.snapshot if self.monitor else None),
                              health=lambda: self._health, alerts=lambda: alert_codes(self.alerts),
                              identify=self._identifying, language=self.cfg.display.language,
                              assignment=lambda: self.shift.view() if self.shift is not None else None)
        self.indicators = IndicatorThread.from_config(
            self.cfg.controls, status, factory=self._pins, start_tone=self.cfg.signals.start_tone,
            alerting=lambda: (bool(self.alerts) or (self.display is not None and self.display.fault is not None)
                              or time.monotonic() < self._identify_until))
        self.display = build_display_thread(self.cfg.display, builder)
        wake = wake_on_state_change(self.display, self.indicators)
        self._wake = lambda recorder_status: wake(officer_status(recorder_status))
        self.indicators.start()
        self.display.start()

    def _start_controls(self) -> None:
        from ui.controls import ControlsThread

        from .officer import officer_status, trigger_for

        self.controls = ControlsThread.from_config(
            self.cfg.controls, lambda request: self.trigger(trigger_for(request)),
            status=lambda: officer_status(self.recorder_thread.status), factory=self._pins,
            on_gesture=lambda name: self.stage.audit_writer.append(audit.BUTTON_GESTURE, gesture=name))
        self.controls.start()

    def refresh_alerts(self) -> StatusDocument:
        """Gather the side readings and derive the alert list once (not at the display's frame rate);
        the status document with the alerts is what the status file gets."""
        status = self.status()
        battery = self.battery.read()
        display_fault = self.display.fault if self.display is not None else None
        from ui.view import Health

        self._health = Health(battery_percent=round(battery.percent) if battery else None,
                              charging=bool(self.shift is not None and self.shift.docked),
                              link_up=self._link_up(), backlog_segments=status.backlog.segments,
                              sound=status.sound == "on")
        self._readings = {"battery": battery, "cpu_temperature_c": cpu_temperature_c(), "throttling": throttling(),
                          "link": wifi_link(), "display_fault": str(display_fault) if display_fault else None,
                          "upload": status.uplink.as_dict() if status.uplink is not None else None}
        self.alerts = self._derive_alerts(status.as_json())
        status = dataclasses.replace(status, alerts=tuple(StatusAlert(**a.as_dict()) for a in self.alerts))
        self._status_cache = status
        return status

    def _derive_alerts(self, status: dict) -> list:
        """The alert list for ``status`` and the last side readings, most severe first."""
        r = self._readings
        battery = r.get("battery")
        return derive_alerts(status, battery_percent=battery.percent if battery else None,
                             battery_low_percent=self.cfg.battery.low_percent,
                             cpu_temperature_c=r.get("cpu_temperature_c"), throttling=r.get("throttling"),
                             upload=r.get("upload"), display_fault=r.get("display_fault"))

    def _link_up(self) -> bool | None:
        """The sync icon: connected to the broker, not (yet), or no icon when uploading is switched off."""
        if self.uplink is not None:
            return self.uplink.status.link_up
        return False if self.cfg.uplink.enabled else None

    def telemetry(self) -> dict:
        """The telemetry message: the last full status (every 2 s) with the recorder's live state."""
        from comms.telemetry import build_telemetry

        status = (self._status_cache or self.refresh_alerts()).as_json()
        live = self.recorder_thread.status
        status.update(state=live.state.value, incident_id=live.incident_id, recording_since=live.recording_since,
                      frames_lost=live.frames_lost, overrun_alarm=live.overrun_alarm,
                      refused_reason=live.refused_reason)
        r = self._readings
        alerts = [a.as_dict() for a in self._derive_alerts(status)]  # with the live state, not the cached list
        return build_telemetry(status, clock_sync=clock_sync_state(), alerts=alerts, battery=r.get("battery"),
                               cpu_temperature_c=r.get("cpu_temperature_c"), throttling=r.get("throttling"),
                               link=r.get("link"), upload=r.get("upload"))

    _link_fault: str | None = None
    _link_retry_at = 0.0

    def _try_broker_link(self) -> None:
        """Recording never depends on the network: a device not yet enrolled (no certificates, no receipt
        key) records and spools, shows the fault, and tries again every minute."""
        try:
            self._start_broker_link()
            self._link_fault = None
        except BodycamError as exc:
            if self.link is not None:
                self.link.stop()
            self.link = self.uplink = self.channel = None
            if self._link_fault != str(exc):
                logger.error("uplink not started, segments stay in the spool: %s", exc)
            self._link_fault = str(exc)
            self._link_retry_at = time.monotonic() + 60.0

    def _start_broker_link(self) -> None:
        """The one MQTT link, shared by the uplink and the broker channel (status, telemetry, events, cmd)."""
        from comms.device import BrokerChannelThread
        from comms.mqtt import MqttLink
        from comms.openevents import FILE_NAME as OPEN_EVENTS
        from comms.openevents import OpenEventsFile
        from comms.uplink import UplinkThread

        from evidence.keys import load_receipt_public_key

        cfg, dev, site = self.cfg, self.cfg.device.id, self.cfg.device.site
        self.link = MqttLink(cfg.mqtt, dev, window=cfg.uplink.window, will=(f"bodycam/{site}/{dev}/status", b"offline"))
        self.uplink = UplinkThread(self.link, self.stage.spool, site=site, device_id=dev, settings=cfg.uplink,
                                   receipt_key=load_receipt_public_key(cfg.uplink.receipt_key),
                                   purge_policy=cfg.storage.purge_policy, audit_log=self.stage.audit)
        handler = self._command_handler() if cfg.commands.enabled else None
        tel = cfg.telemetry
        open_events = OpenEventsFile(Path(cfg.evidence.state_dir) / OPEN_EVENTS, dev, site)  # survives a crash
        self.channel = BrokerChannelThread(self.link, site=site, device=dev, version=__version__,
                                           telemetry=self.telemetry, interval_s=tel.interval_seconds,
                                           expiry_s=tel.expiry_seconds, commands=handler,
                                           homeassistant_prefix=tel.homeassistant_prefix if tel.homeassistant else None,
                                           open_events=open_events)
        self.uplink.start()
        self.channel.start()
        self.link.start()

    def _command_handler(self):
        """Remote commands: verified with the back office's key, applied by the methods below."""
        from comms.commands import CommandActions, CommandHandler, CommandVerifier
        from evidence.keys import load_command_public_key

        cmds = self.cfg.commands
        verifier = CommandVerifier(self.cfg.device.id, load_command_public_key(cmds.public_key),
                                   pre_event_max_s=cmds.pre_event_max_seconds, max_age_s=cmds.max_age_seconds)
        return CommandHandler(verifier, CommandActions(lambda request, cid: self.trigger(command_trigger(request, cid)),
                                                       self._identify,
                                                       lambda: self.channel.request_telemetry(),
                                                       self._apply_setting,
                                                       self.shift.command if self.shift is not None else None),
                              self.stage.audit)

    _identify_until = 0.0
    _view = None

    def _identify(self, seconds: int) -> None:
        """'Which device is this?': for ``seconds`` the green LED blinks and, unless a recording is running,
        the display shows the device id blinking (the red LED stays reserved for recording)."""
        logger.warning("identify requested by the back office for %d s", seconds)
        self._identify_until = time.monotonic() + seconds
        if self.display is not None:
            self.display.wake()

    def _identifying(self) -> str | None:
        return self.cfg.device.id if time.monotonic() < self._identify_until else None

    def _apply_setting(self, section: str, key: str, value, source: str) -> str | None:
        """A validated remote 'set'; returns a refusal reason or None. A change (not a repeat of the
        current value) is one ``config_changed`` line naming ``source``, the key, its old and new value."""
        if (section, key) not in LIVE_SETTINGS or (section == "display" and self._view is None):
            return f"{section}.{key} cannot change while the agent runs; change the config file and restart"
        new = config.replace(self.cfg, section, **{key: value})
        if section == "telemetry" and self.channel is not None:
            self.channel.interval_s = new.telemetry.interval_seconds
        elif section == "display":
            self._view.language = new.display.language  # read by the display thread at its next frame
        elif section == "recording":
            rec = new.recording
            self.recorder_thread.call(lambda r: r.reconfigure(rec.pre_event_seconds, rec.post_event_seconds))
        before, after = getattr(getattr(self.cfg, section), key), getattr(getattr(new, section), key)
        self.cfg = new
        if before != after:
            name = f"{section}.{key}"
            self.stage.audit.append(audit.CONFIG_CHANGED, source=source, applied=[name],
                                    changes={name: {"old": before, "new": after}})
        return None

    def _offer(self, frame) -> None:
        """Stable camera callback: survives a restart of the recorder thread."""
        self.recorder_thread.offer(frame)

    def _offer_audio(self, packet) -> None:
        self.recorder_thread.offer_audio(packet)

    def _sound(self, rs) -> tuple[str, str | None]:
        """Whether sound is recorded ("off": not configured, "on", "fault") and, at a fault, why."""
        source = self.source
        if source is None or source.audio is None:
            return "off", None
        if source.audio_fault:
            return "fault", source.audio_fault
        if rs.audio_silent:
            return "fault", ("no sound for more than 2 s while the pictures go on: the microphone is unplugged "
                             "or broken; recording pictures without sound")
        return "on", None

    # -- life cycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.stage.audit.append(audit.AGENT_STARTED, version=__version__, config=self.cfg.source,
                                device=self.cfg.device.id, site=self.cfg.device.site,
                                profile=self.cfg.policy.profile, pre_event_mode=self.cfg.recording.pre_event_mode)
        if self._officer_ui:
            self._build_officer_outputs()
        if self.cfg.checkout.enabled:
            self._build_shift()
        for worker in self._workers:
            worker.instance = worker.build()
            logger.info("started %s", worker.name)
        if self._officer_ui:
            self._start_controls()
        if self.cfg.uplink.enabled:
            self._try_broker_link()

    def stop(self) -> None:
        self.stage.audit_writer.append(audit.AGENT_STOPPING)
        for part in (self.controls, self.source, self.shift):
            if part is not None:
                part.stop()
        for thread in (self.recorder_thread, self.monitor, self.sealer, self.display, self.uplink, self.channel):
            if thread is not None:
                thread.stop()
        if self.recorder_thread is not None and self.recorder_thread.is_alive():
            # It was waiting to hand its last segment to a sealer that has now given up (and reported it lost).
            self.recorder_thread.join(RECORDER_LATE_JOIN_S)
        if self.link is not None:
            self.link.stop(final=b"stopped")  # retained: a clean stop, not a lost device
        if self.indicators is not None:
            self.indicators.stop()  # last: the red LED stays on until the recording is sealed
        self.stage.audit_writer.append(audit.AGENT_STOPPED, sealed=self.sealer.sealed if self.sealer else 0,
                                       lost=self.sealer.lost if self.sealer else 0)
        self.stage.close()  # writes the queued audit lines first

    def trigger(self, trigger: Trigger) -> None:
        self.recorder_thread.trigger(trigger)

    def is_recording(self) -> bool:
        thread = self.recorder_thread
        return thread is not None and thread.status.state.recording

    # -- supervision ---------------------------------------------------------------------------------
    def supervise(self) -> str | None:
        """Restart dead workers; returns a reason when one has used up its restarts."""
        self._tend_shift()
        if self._link_fault and time.monotonic() >= self._link_retry_at:
            self._try_broker_link()
        for worker in self._workers:
            if worker.alive():
                continue
            reason = worker.fault() or "stopped unexpectedly"
            if worker.restarts >= self.cfg.runtime.max_restarts:
                return f"{worker.name} failed again after {worker.restarts} restarts ({reason})"
            worker.restarts += 1
            logger.error("%s failed (%s); restart %d of %d", worker.name, reason, worker.restarts,
                         self.cfg.runtime.max_restarts)
            if worker.name == "recorder" and self.sealer is not None:
                self.stage.audit_writer.append(audit.RECORDING_STOPPED, incident_id=None, reason="recorder fault")
            worker.instance = worker.build()
        return None

    def healthy(self) -> tuple[bool, str]:
        """True while every worker lives and camera frames keep arriving (what the watchdog feeds on)."""
        for worker in self._workers:
            if not worker.alive():
                return False, f"{worker.name} is down"
        seen = self.recorder_thread.status.frames_seen
        now = time.monotonic()
        if seen != self._frames_seen:
            self._frames_seen, self._last_frame_progress = seen, now
        elif now - self._last_frame_progress > self.cfg.runtime.stall_seconds:
            return False, f"no camera frame for {now - self._last_frame_progress:.0f} s"
        return (seen > 0, "running" if seen else "waiting for the first camera frame")

    def reload(self, new: Config) -> list[str]:
        """Apply what can change safely; returns the keys that need a restart."""
        needs_restart = []
        for section, _ in config.sections():
            old_sec, new_sec = getattr(self.cfg, section), getattr(new, section)
            for key in old_sec.__dataclass_fields__:
                if getattr(old_sec, key) != getattr(new_sec, key) and (section, key) not in RELOADABLE:
                    needs_restart.append(f"{section}.{key}")
        rec = new.recording
        self.recorder_thread.call(lambda r: r.reconfigure(rec.pre_event_seconds, rec.post_event_seconds,
                                                          rec.pre_event_mode))
        self.stage.audit.append(audit.CONFIG_CHANGED, source=new.source,
                                applied=sorted(f"{s}.{k}" for s, k in RELOADABLE), needs_restart=needs_restart)
        self.cfg = new
        return needs_restart

    def _display_rate(self) -> DisplayRate | None:
        if self.display is None or self.cfg.display.driver == "dummy":
            return None
        return DisplayRate(self.cfg.display.driver, round(self.display.stats().fps, 1), self.cfg.display.fps)

    def status(self) -> StatusDocument:
        """A snapshot for the status file (agent.status), the alerts and telemetry; alerts are added by
        :meth:`refresh_alerts`, which derives them from this."""
        rs = self.recorder_thread.status
        disk = self.monitor.snapshot if self.monitor else None
        backlog = self.stage.spool.backlog()
        faults = {w.name: w.fault() for w in self._workers if w.fault()}
        if self._link_fault:
            faults["uplink"] = self._link_fault
        if self.channel is not None and self.channel.discovery_fault:
            faults["homeassistant"] = self.channel.discovery_fault
        if self.stage.audit_writer.fault is not None:
            faults["audit"] = describe_fault(self.stage.audit_writer.fault)
        if self.shift is not None:
            faults.update(self.shift.faults())
        sound, microphone_fault = self._sound(rs)
        if microphone_fault:
            faults["microphone"] = microphone_fault
        mqtt = self.cfg.mqtt
        return StatusDocument(
            time=time.time(), version=__version__, device=self.cfg.device.id, site=self.cfg.device.site,
            state=rs.state.value, incident_id=rs.incident_id, recording_since=rs.recording_since,
            frames_seen=rs.frames_seen, frames_lost=rs.frames_lost, overrun_alarm=rs.overrun_alarm,
            refused_reason=rs.refused_reason, sound=sound, profile=self.cfg.policy.profile,
            pre_event=PreEvent(rs.ring.seconds_held, rs.ring.memory_bytes, rs.ring.window_seconds,
                               rs.pre_event_mode, rs.pre_recording),
            storage=Storage(**disk.as_dict()) if disk else None,
            backlog=Backlog(backlog.count, backlog.bytes, backlog.oldest_age_s),
            sealed=self.sealer.sealed if self.sealer else 0,
            audit_head=AuditHead(self.stage.audit.head.seq, self.stage.audit.head.hash),
            chain_head=ChainHead(**self.stage.chain_head()),
            faults=faults,
            restarts={w.name: w.restarts for w in self._workers},
            display=self._display_rate(),
            broker=f"{mqtt.host}:{mqtt.port}" if self.cfg.uplink.enabled else None,
            uplink=self.uplink.status if self.uplink is not None else None,
            checkout=self.shift.status() if self.shift is not None else None,
        )


def run_agent(cfg: Config, config_path: str | None = None, stop: threading.Event | None = None,
              source_factory: Callable[[object], FrameSource] = open_source) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); returns the process exit code.

    The state directory's lock (agent.instancelock) is taken before anything is opened: a second
    agent on the same config exits 1 without touching the chain, the spool or the audit log.
    """
    try:
        lock = InstanceLock.acquire(cfg.evidence.state_dir)
    except AlreadyRunningError as exc:
        logger.critical("%s", exc)
        return 1
    stop = stop or threading.Event()
    reload_wanted = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGHUP, lambda *_: reload_wanted.set())
    notifier = Notifier()
    feed_every = watchdog_interval()
    agent = Agent(cfg, source_factory)
    agent.start()
    code, ready, last_feed, last_status = 0, False, 0.0, 0.0
    try:
        while not stop.wait(0.25):
            fatal = agent.supervise()
            if fatal:
                logger.critical("%s; exiting so that systemd restarts the agent", fatal)
                code = 1
                break
            ok, why = agent.healthy()
            now = time.monotonic()
            if ok and not ready:
                notifier.ready(f"running: {cfg.device.site}/{cfg.device.id}")
                logger.info("agent ready")
                ready = True
            if ok and feed_every and now - last_feed >= feed_every:
                notifier.watchdog()
                last_feed = now
            elif not ok and ready:
                logger.warning("pipeline unhealthy (%s): not feeding the watchdog", why)
            if reload_wanted.is_set():
                reload_wanted.clear()
                _reload(agent, config_path)
            if now - last_status >= STATUS_PERIOD_S:
                last_status = now
                _write_status_safely(cfg.runtime.status_file, agent.refresh_alerts())
                release_free_heap()  # sealed and uploaded segments' memory goes back to the system
    finally:
        notifier.stopping()
        agent.stop()
        if agent.sealer is not None and agent.sealer.lost:
            logger.critical("%d segment(s) could not be stored before the agent stopped; see the audit log's "
                            "segment_lost lines", agent.sealer.lost)
            code = code or 1
        _write_status_safely(cfg.runtime.status_file, _stopped_status(cfg, code))
        notifier.close()
        lock.release()
    return code


def _reload(agent: Agent, config_path: str | None) -> None:
    if config_path is None:
        logger.warning("SIGHUP ignored: running on embedded defaults, there is no file to reload")
        return
    try:
        new = config.load(config_path)
    except ConfigError as exc:
        logger.error("reload refused, the running configuration stays: %s", exc)
        agent.stage.audit.append(audit.CONFIG_CHANGED, source=config_path, rejected=str(exc))
        return
    needs_restart = agent.reload(new)
    if needs_restart:
        logger.warning("reloaded; these changes take effect after a restart: %s", ", ".join(needs_restart))
    else:
        logger.info("configuration reloaded")


def _stopped_status(cfg: Config, exit_code: int) -> StatusDocument:
    return StatusDocument(time=time.time(), version=__version__, device=cfg.device.id, site=cfg.device.site,
                          state="stopped", exit_code=exit_code)


def _write_status_safely(path: str, status: StatusDocument) -> None:
    """Mode 0644, replaced atomically (agent.statusfile): any local user may run 'bodycam status'."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_status(status, path)
    except OSError as exc:
        logger.warning("cannot write the status file %s (%s)", path, exc.strerror)

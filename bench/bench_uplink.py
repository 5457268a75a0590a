"""Upload goodput of the evidence transfer (chunks + receipts) against a bare paho QoS 1 publish loop.

Reproduce:  .venv/bin/python bench/bench_uplink.py [--segments 30] [--seconds 10] [--mbit 10] [--repeats 3]
                                                   [--chunk-kib 256] [--window 16] [--segments-ahead N]
                                                   [--dir /var/tmp]

Everything runs on this machine against one local mosquitto with TLS client certificates (the set-up of
docs/BROKER.md, built by tests/comms/mqtt_harness.py). The back office's receiver runs as its own
process (``python -m backoffice receiver``), as it would on its own server.

1. **Goodput.** ``--segments`` sealed segments of ``--seconds`` at ``--mbit`` (default 30 x 10 s at
   10 Mbit/s: a 5-minute backlog, 375 MB) are put in a real spool; the UplinkThread uploads them until
   the last receipt is verified and the segment deleted (storage.purge_policy = on_ack). Baseline, same
   run, alternating: a bare paho QoS 1 publish loop of the same bytes in the same chunk size and window,
   from memory, over the same TLS, until the last PUBACK ("publish only": nobody subscribed). A second
   baseline adds a bare subscriber process that receives every byte ("publish + deliver"), which is what
   the protocol also has to do. Medians of ``--repeats``. Target: >= 70 % of the bare loop.
2. **Drain after an outage.** The receiver is down while the device keeps offering; then it starts.
   Time from the receiver's start to the last receipt, for the whole backlog.
3. **Bytes re-sent after a mid-segment disconnect.** One segment through a TCP proxy, reset when half of
   it has passed; the proxy's upstream byte count against an uninterrupted transfer of a same-sized
   segment through the same proxy.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "comms"))  # the broker harness and the device/back-office set-up

from comms.settings import UplinkSettings  # noqa: E402
from comms_env import DeviceEnv, mqtt_settings, uplink_for, wait_until  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
from mqtt_harness import HOST, Broker, Pki  # noqa: E402
from evidence.keys import generate_receipt_key, load_receipt_public_key  # noqa: E402

SITE, DEVICE, RECEIVER = "duisburg", "kod-07", "bo-recv-1"


class ReceiverProcess:
    """``bodycam-office receiver`` in a child process, with its own config file.

    ``catalog``: its ``[receiver] catalog`` setting (the catalog's database and office data come from the
    environment, which the child inherits; bench_catalog.py).
    """

    def __init__(self, root: Path, pki: Pki, broker: Broker, device_pub: Path, receipt_key: Path, *,
                 catalog: bool = False):
        creds = pki.issue(RECEIVER)
        self.root = root
        self.config = root / "receiver.toml"
        self.config.write_text(f"""
[receiver]
id = "{RECEIVER}"
store_dir = "{root / 'store'}"
incoming_dir = "{root / 'incoming'}"
devices = ["{device_pub}"]
receipt_key = "{receipt_key}"
max_segment_mib = 1024.0
catalog = {str(catalog).lower()}
[mqtt]
host = "{HOST}"
port = {broker.port}
ca_file = "{creds.ca}"
cert_file = "{creds.cert}"
key_file = "{creds.key}"
keepalive_s = 30
session_expiry_s = 3600
reconnect_min_s = 0.1
reconnect_max_s = 1.0
""")
        self.broker = broker
        self.process: subprocess.Popen | None = None
        self.log = root / "receiver.log"

    def start(self) -> None:
        before = self.broker.log_path.read_text(errors="replace").count(f"as {RECEIVER} ")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "backoffice", "receiver", "--config",
                                             str(self.config)], stdout=log, stderr=log)
        wait_until(lambda: self.broker.log_path.read_text(errors="replace").count(f"as {RECEIVER} ") > before, 15,
                   what="the receiver process to connect")
        time.sleep(0.3)  # its SUBSCRIBE follows the CONNACK

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


class Subscriber:
    """A bare QoS 1 subscriber in a child process that reports when it has received ``total`` bytes."""

    SCRIPT = r"""
import sys, ssl, paho.mqtt.client as paho
host, port, ca, cert, key, topic, total = sys.argv[1:8]
total = int(total); got = 0
def on_message(c, u, m):
    global got
    got += len(m.payload)
    if got >= total:
        print("DONE", got, flush=True)
def on_connect(c, u, f, rc, p):
    c.subscribe(topic, qos=1)
def on_subscribe(c, u, mid, rcs, p):
    print("READY", flush=True)
c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-sub", protocol=paho.MQTTv5)
c.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
c.on_message, c.on_connect, c.on_subscribe = on_message, on_connect, on_subscribe
c.connect(host, int(port), 30)
c.loop_forever()
"""

    def __init__(self, creds, port: int, topic: str, total: int):
        self.process = subprocess.Popen([sys.executable, "-c", self.SCRIPT, HOST, str(port), str(creds.ca),
                                         str(creds.cert), str(creds.key), topic, str(total)],
                                        stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "READY":
            raise RuntimeError("bench subscriber did not start")

    def wait_done(self) -> float:
        line = self.process.stdout.readline()
        if not line.startswith("DONE"):
            raise RuntimeError(f"bench subscriber ended early: {line!r}")
        return time.perf_counter()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def bare_publish(creds, port: int, payloads: list[bytes], chunk: int, window: int,
                 subscriber: Subscriber | None) -> tuple[float, float]:
    """Publish every byte at QoS 1 in ``chunk``-sized messages, ``window`` in flight; (seconds, CPU seconds)."""
    slots = threading.Semaphore(window)
    done = threading.Event()
    pending = [0]
    lock = threading.Lock()
    connected = threading.Event()

    def on_publish(c, u, mid, rc, p):
        slots.release()
        with lock:
            pending[0] -= 1
            if pending[0] == 0 and finished[0]:
                done.set()

    finished = [False]
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="kod-07-bare", protocol=paho.MQTTv5)
    c.tls_set(ca_certs=str(creds.ca), certfile=str(creds.cert), keyfile=str(creds.key))
    c.max_inflight_messages_set(window)
    c.on_publish = on_publish
    c.on_connect = lambda *a: connected.set()
    topic = f"bodycam/{SITE}/{DEVICE}/up/bench"
    cpu0, t0 = time.process_time(), time.perf_counter()
    c.connect(HOST, port, 30)
    c.loop_start()
    connected.wait(10)
    for data in payloads:
        view = memoryview(data)
        for off in range(0, len(data), chunk):
            slots.acquire()
            with lock:
                pending[0] += 1
            c.publish(topic, bytes(view[off:off + chunk]), qos=1)
    with lock:
        finished[0] = True
        if pending[0] == 0:
            done.set()
    done.wait(600)
    t1 = time.perf_counter()
    if subscriber is not None:
        t1 = max(t1, subscriber.wait_done())
    cpu = time.process_time() - cpu0
    c.disconnect()
    c.loop_stop()
    return t1 - t0, cpu


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a child process so far (from /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill(device: DeviceEnv, count: int, size: int) -> list[bytes]:
    device.seal_random(count, size=size)
    return [device.spool.read(i.stem).ciphertext for i in device.spool.pending()]


def protocol_run(device: DeviceEnv, settings, receipt_pub, uplink: UplinkSettings, *, before_start=None,
                 timeout: float = 900) -> tuple[float, float, object]:
    """Upload the spool; (seconds until the last segment is acknowledged and purged, CPU seconds, status)."""
    count = len(device.spool.pending())
    up = uplink_for(device, settings, receipt_pub, uplink=uplink)
    cpu0, t0 = time.process_time(), time.perf_counter()
    up.start()
    if before_start is not None:
        t0 = before_start(up)
    wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), timeout, interval=0.01,
               what="the backlog to drain")
    t1 = time.perf_counter()
    cpu = time.process_time() - cpu0
    wait_until(lambda: up.thread.status.segments_purged >= count, 5, what="status")
    status = up.thread.status
    up.stop()
    return t1 - t0, cpu, status


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--segments", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--mbit", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-kib", type=int, default=256)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--segments-ahead", type=int, default=UplinkSettings().segments_ahead,
                    help="uplink.segments_ahead (segments open and offered at once)")
    ap.add_argument("--dir", default=None, help="where the spool, store and broker live (default: $TMPDIR)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    size = round(args.seconds * args.mbit * 1e6 / 8)
    chunk = args.chunk_kib * 1024
    uplink = UplinkSettings(chunk_kib=args.chunk_kib, window=args.window, segments_ahead=args.segments_ahead,
                            receipt_key="-", receipt_timeout_s=30.0)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-uplink-") as tmp:
        root = Path(tmp)
        pki = Pki(root / "pki")
        broker = Broker(root / "broker", pki, [RECEIVER, "bo-recv-2"], autosave_interval=60)
        broker.start()
        receiver = None
        try:
            device = DeviceEnv(root / "device", DEVICE, SITE)
            dev_creds = pki.issue(DEVICE)
            settings = mqtt_settings(dev_creds, broker.port, keepalive_s=30)
            keys = root / "receipt-keys"
            keys.mkdir()
            generate_receipt_key(keys)
            receipt_pub = load_receipt_public_key(keys / "receipt.pub")
            receiver = ReceiverProcess(root, pki, broker, device.device_pub, keys / "receipt.key")
            receiver.start()
            sub_creds = pki.issue("bo-recv-2")

            print(f"# bench_uplink: {args.segments} x {args.seconds:g} s at {args.mbit:g} Mbit/s "
                  f"({size / 1e6:.1f} MB each), chunks of {args.chunk_kib} KiB, window {args.window}, "
                  f"segments ahead {args.segments_ahead}")
            print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                  f"Python {platform.python_version()}, paho-mqtt {importlib.metadata.version('paho-mqtt')}, "
                  f"mosquitto 2.0 (local, TLS 1.2, client certificates)")
            ours, bare, bare_sub = [], [], []
            cpu = {k: [] for k in ("bare", "sub", "ours")}  # CPU seconds per GB, all processes together
            total = 0
            for r in range(args.repeats):
                payloads = fill(device, args.segments, size)
                total = sum(map(len, payloads))
                gb = total / 1e9
                b0 = proc_cpu(broker.process.pid)
                secs, dev = bare_publish(dev_creds, broker.port, payloads, chunk, args.window, None)
                bare.append(total / secs)
                cpu["bare"].append((dev + proc_cpu(broker.process.pid) - b0) / gb)
                sub = Subscriber(sub_creds, broker.port, f"bodycam/{SITE}/{DEVICE}/up/bench", total)
                b0, s0 = proc_cpu(broker.process.pid), proc_cpu(sub.process.pid)
                secs, dev = bare_publish(dev_creds, broker.port, payloads, chunk, args.window, sub)
                cpu["sub"].append((dev + proc_cpu(broker.process.pid) - b0 + proc_cpu(sub.process.pid) - s0) / gb)
                sub.stop()
                bare_sub.append(total / secs)
                del payloads
                b0, r0 = proc_cpu(broker.process.pid), proc_cpu(receiver.process.pid)
                secs, dev, status = protocol_run(device, settings, receipt_pub, uplink)
                ours.append(total / secs)
                rx = proc_cpu(receiver.process.pid) - r0
                cpu["ours"].append((dev + proc_cpu(broker.process.pid) - b0 + rx) / gb)
                print(f"  run {r + 1}: bare {bare[-1] / 1e6:6.1f} MB/s, bare+subscriber {bare_sub[-1] / 1e6:6.1f} MB/s, "
                      f"protocol {ours[-1] / 1e6:6.1f} MB/s ({status.segments_acknowledged} receipts, "
                      f"{status.chunks_resent} chunks resent; CPU s/GB: device {dev / gb:.2f}, receiver {rx / gb:.2f})")
            m_ours, m_bare, m_sub = (statistics.median(x) for x in (ours, bare, bare_sub))
            c = {k: statistics.median(v) for k, v in cpu.items()}
            print()
            print("| measure | result | target |")
            print("|---|---|---|")
            print(f"| bare paho QoS 1 publish loop (publish only) | {m_bare / 1e6:.1f} MB/s; {c['bare']:.1f} CPU-s/GB "
                  "(publisher + broker) | |")
            print(f"| bare publish loop + bare subscriber (publish + deliver) | {m_sub / 1e6:.1f} MB/s; "
                  f"{c['sub']:.1f} CPU-s/GB (+ subscriber) | |")
            print(f"| **full protocol (offer, chunks, receiver stores + fsyncs, signed receipt, purge)** | "
                  f"**{m_ours / 1e6:.1f} MB/s**; {c['ours']:.1f} CPU-s/GB (device + broker + receiver) | |")
            print(f"| **ratio to the bare publish loop** | **{100 * m_ours / m_bare:.0f} %** | >= 70 % |")
            print(f"| ratio to publish + deliver | {100 * m_ours / m_sub:.0f} % | |")

            # 2. The receiver is down while the device offers; time from its return to the last receipt.
            receiver.stop()
            payloads = fill(device, args.segments, size)
            backlog = sum(map(len, payloads))
            del payloads

            def outage(up) -> float:
                time.sleep(3.0)
                if up.thread.status.segments_acknowledged or not device.spool.pending():
                    raise RuntimeError("segments were acknowledged while the receiver was down")
                t = time.perf_counter()
                receiver.start()
                return t

            secs, _, status = protocol_run(device, settings, receipt_pub, uplink, before_start=outage)
            print(f"| drain a {args.segments * args.seconds / 60:g}-minute backlog ({backlog / 1e6:.0f} MB) after an "
                  f"outage, from the receiver's restart | {secs:.1f} s ({backlog / secs / 1e6:.1f} MB/s; "
                  f"{args.segments * args.seconds / secs:.0f}x real time) | |")

            # 3. Bytes re-sent after a mid-segment disconnect.
            wire = []
            for cut in (False, True):
                fill(device, 1, size)
                proxy = FaultProxy(broker.port)
                via = mqtt_settings(dev_creds, proxy.port, keepalive_s=30)
                reference = wire[0] if wire else None

                def interrupt(up, proxy=proxy, reference=reference) -> float:
                    t = time.perf_counter()
                    if reference is not None:
                        wait_until(lambda: proxy.bytes["up"] > reference / 2, 60, interval=0.001, what="half")
                        proxy.inject("reset")
                    return t

                _, _, status = protocol_run(device, via, receipt_pub, uplink, before_start=interrupt)
                proxy.close()
                wire.append(proxy.bytes["up"])
                if cut:
                    extra = wire[1] - wire[0]
                    print(f"| bytes re-sent after a reset at half of a {size / 1e6:.1f} MB segment | "
                          f"{extra / 1e6:.2f} MB on the wire ({extra / chunk:.1f} chunks of {args.chunk_kib} KiB; "
                          f"{100 * extra / wire[0]:.1f} % of the segment); our own resends "
                          f"{status.chunks_resent} chunk(s), the rest paho's DUP resend of the window | "
                          f"<= window ({args.window} chunks) |")
        finally:
            if receiver is not None:
                receiver.stop()
            broker.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())

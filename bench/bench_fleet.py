"""A simulated fleet against one fleet view: the largest fleet whose p99 latency stays under 200 ms.

Reproduce:  .venv/bin/python bench/bench_fleet.py [--sizes 100,250,500,750,1000] [--seconds 10]

Starts its own mosquitto on a free 127.0.0.1 port. Each simulated device is its own MQTT client (its
own connection, as in the field) publishing a realistic telemetry message once a second at QoS 0,
spread evenly over the second; worker processes hold the clients. One subscriber feeds every message
into the real FleetView and measures publish-to-subscriber latency from the time stamp in the payload
(same machine, same clock). Plain TCP on loopback: TLS costs the broker a handshake per connection,
not per message.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from backoffice.fleet import FleetView  # noqa: E402

TARGET_P99_S = 0.200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(workdir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = os.path.join(workdir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\n"
                "max_queued_messages 10000\n")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def telemetry(device: str, now: float) -> bytes:
    return json.dumps({"schema": "bodycam.telemetry/1", "device": device, "site": "bench", "sent": now,
                       "recorder": {"state": "standby", "incident_id": None, "pre_event_seconds_held": 29.5},
                       "battery": {"percent": 80.0, "voltage": 3.9},
                       "storage": {"level": "ok", "free_bytes": 20 * 2**30, "total_bytes": 32 * 2**30},
                       "backlog": {"segments": 0, "bytes": 0, "oldest_age_s": None},
                       "system": {"cpu_temperature_c": 55.0, "throttling": [], "link": None},
                       "alerts": [], "audit_head": {"seq": 100, "hash": "0" * 64}}).encode()


def device_worker(port: int, first: int, count: int, seconds: float, start_at: float) -> None:
    """One process holding ``count`` device clients on one network thread each."""
    clients = []
    for i in range(first, first + count):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{i}", protocol=mqtt.MQTTv311)
        c.connect("127.0.0.1", port, keepalive=60)
        c.loop_start()
        clients.append((f"dev{i:04d}", c))
    time.sleep(max(0.0, start_at - time.time()))
    t0 = time.time()
    for tick in range(int(seconds)):
        for n, (device, client) in enumerate(clients):
            due = t0 + tick + (n + first) % 1000 / 1000.0
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            client.publish(f"bodycam/bench/{device}/telemetry", telemetry(device, time.time()), qos=0)
    time.sleep(1.0)
    for _, c in clients:
        c.loop_stop()
        c.disconnect()


def run_size(port: int, size: int, seconds: float, workers: int) -> dict:
    view, latencies, lock = FleetView(), [], threading.Lock()

    def on_message(client, userdata, msg):
        now = time.time()
        view.apply(msg.topic, msg.payload, now)
        sent = json.loads(msg.payload)["sent"]
        with lock:
            latencies.append(now - sent)

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fleet-view-{size}", protocol=mqtt.MQTTv311)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("bodycam/+/+/telemetry", qos=0)
    sub.loop_start()
    start_at = time.time() + 2.0 + size / 400
    per = [size // workers + (1 if i < size % workers else 0) for i in range(workers)]
    procs, first = [], 0
    for n in per:
        p = mp.Process(target=device_worker, args=(port, first, n, seconds, start_at))
        p.start()
        procs.append(p)
        first += n
    cpu0 = os.times()
    for p in procs:
        p.join()
    time.sleep(0.5)
    sub.loop_stop()
    sub.disconnect()
    lat = sorted(latencies)
    expected = size * int(seconds)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("inf")  # noqa: E731
    return {"size": size, "received": len(lat), "expected": expected, "p50": pct(0.50), "p99": pct(0.99),
            "max": lat[-1] if lat else float("inf"), "rows": len(view.rows), "cpu": os.times().user - cpu0.user}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,250,500,750,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    print(f"command: .venv/bin/python bench/bench_fleet.py --sizes {args.sizes} --seconds {args.seconds:g} "
          f"--workers {args.workers}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = start_broker(tmp)
        best = 0
        try:
            for size in (int(s) for s in args.sizes.split(",")):
                r = run_size(port, size, args.seconds, args.workers)
                ok = r["p99"] <= TARGET_P99_S and r["received"] >= 0.99 * r["expected"]
                best = size if ok else best
                print(f"{size:5d} devices: {r['received']}/{r['expected']} messages, latency p50 "
                      f"{r['p50'] * 1e3:6.1f} ms, p99 {r['p99'] * 1e3:6.1f} ms, max {r['max'] * 1e3:6.1f} ms, "
                      f"fleet view rows {r['rows']} -> {'OK' if ok else 'over target'}", flush=True)
        finally:
            broker.terminate()
            broker.wait()
    print(f"largest fleet with p99 <= {TARGET_P99_S * 1e3:.0f} ms and >= 99 % delivered: {best} devices "
          f"(target >= 500)")


if __name__ == "__main__":
    main()

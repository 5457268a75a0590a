"""The evidence catalog at a large city's scale: a year of 1 M incidents / 10 M segments, on SQLite and PostgreSQL.

Reproduce:  .venv/bin/python bench/bench_catalog.py [--incidents 1000000] [--databases sqlite,postgresql]
                                                    [--draws 200] [--expired 10000] [--dir /var/tmp]
                                                    [--ingest-segments 100] [--ingest-pairs 24] [--no-ingest]
                                                    [--unlink-dir DIR]

``--incidents N`` scales the whole catalog down (fleet, people and all) for a quick run; the figures in
docs/BENCHMARKS.md are at full scale. Everything lives in one temporary directory (``--dir``) and is removed
afterwards: the SQLite file, the PostgreSQL server (Debian's PostgreSQL 15 started as in the tests, but with
fsync on, as a city runs it), the store, the broker.

For each database, in its own process (Django sets its database up once per process):

1. **Generate** the year (bench/catalog_year.py) with bulk SQL into a migrated catalog.
2. **Queries** the product makes, each over ``--draws`` varied parameters after 10 unmeasured warm-up draws:
   the incident list of one site and day (``queries.incident_list``: a page of 50 and the count), the
   expiring-soon report (``reports.expiring``, a page of 50 at a random page within 1-14 days) and the
   access report of one incident (``reports.access_report``). Target: p95 <= 50 ms. Some more lists the
   review app needs are measured alongside.
3. **Retention**: the clock is moved on until ``--expired`` unheld incidents have expired, their store
   directories get placeholder files (small ``.age`` and ``.manifest.json`` of every cataloged segment, so
   the unlinks and fsyncs are real), and the real ``run_retention`` (what ``bodycam-office retention run``
   calls) deletes them with signed tombstones and office audit lines. Target: <= 60 s for 10,000. What real
   12.5 MB ciphertexts would add is measured by unlinking 200 written ones (evicted from the page cache, as
   two-week-old files are) on the store's file system and on each ``--unlink-dir``: a file system mounted with
   ``discard`` trims the freed blocks at every unlink, which costs far more than the unlink itself.
4. **Recording** one segment into this catalog, on its own: the receiver's ``CatalogRecorder`` (one
   transaction and one office audit line) on real signed manifests, timed per segment.
5. **Ingest**: real device uploads (sealed 10 s segments at 10 Mbit/s from a real spool) over a local
   mosquitto with TLS to ``bodycam-office receiver`` processes, with ``catalog = false`` and ``catalog =
   true`` (the latter recording into this year's catalog) in pairs of runs, alternating which goes first;
   throughput as bench_uplink.py measures it (until the last receipt is verified), and the CPU of the
   device, broker and receiver. Target: with >= 95 % of without (the median of the pairs' ratios). A
   run's stored files are removed after it (not their catalog rows), so that long runs fit on the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

#: The catalog's "now": the end of the generated year.
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)
PAGE = 50
TARGET_P95_MS = 50.0
TARGET_RETENTION_S = 60.0
TARGET_INGEST = 0.95
#: PostgreSQL as a city's server runs it: fsync on; memory for a machine of this size.
PG_SETTINGS = {"fsync": "on", "shared_buffers": "2GB", "effective_cache_size": "12GB", "work_mem": "16MB",
               "maintenance_work_mem": "512MB", "max_wal_size": "8GB", "checkpoint_timeout": "15min"}


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- one database, in its own process -------------------------------------------------------------------------

def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    at = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {"n": len(ordered), "p50_ms": 1e3 * at(0.5), "p95_ms": 1e3 * at(0.95), "max_ms": 1e3 * ordered[-1]}


def timed(draw, run, draws: int, rng: random.Random, warmup: int = 10) -> dict:
    """``run(*draw(rng))`` ``warmup`` + ``draws`` times; percentiles of the measured ones and the mean row count."""
    samples, rows = [], []
    for i in range(warmup + draws):
        args = draw(rng)
        t0 = time.perf_counter()
        n = run(*args)
        dt = time.perf_counter() - t0
        if i >= warmup:
            samples.append(dt)
            rows.append(n)
    return {**percentiles(samples), "rows": statistics.mean(rows)}


def measure_queries(draws: int) -> dict:
    from django.contrib.auth.models import User

    from backoffice.catalog import reports
    from backoffice.catalog.models import Device, Hold, Incident, Site
    from backoffice.catalog.queries import incident_list

    rng = random.Random(7)
    sites = list(Site.objects.all())
    devices = list(Device.objects.all())
    officers = list(User.objects.filter(username__startswith="officer-").values_list("username", flat=True))
    n_incidents = Incident.objects.count()
    held = list(Hold.objects.values_list("incident_id", flat=True)[:2000])
    first_day = (NOW - timedelta(days=365)).date()

    def any_day(r):
        return first_day + timedelta(days=r.randrange(365))

    def site_day(site, day):
        listed = incident_list(site=site, day=day)
        page = list(listed[:PAGE])
        listed.count()  # "n incidents" above the page
        return len(page)

    def expiring(until, offset):
        return len(reports.expiring(NOW, until, limit=PAGE, offset=offset))

    def subject_day(site, day):
        since = datetime.combine(day, datetime.min.time(), timezone.utc)
        return len(reports.subject_report(site.code, since, since + timedelta(days=1)))

    def access(pk):
        return len(reports.access_report(Incident.objects.get(pk=pk)))

    out = {
        "incident list, one site and day (page of 50 + count)":
            timed(lambda r: (r.choice(sites), any_day(r)), site_day, draws, rng),
        "expiring soon (a page of 50 within 1-14 days)":
            timed(lambda r: (NOW + timedelta(days=r.uniform(1, 14)), PAGE * r.randrange(10)), expiring, draws, rng),
        "access report of one incident (1 in 10 a held one)":
            timed(lambda r: (r.choice(held) if held and r.random() < 0.1 else r.randrange(1, n_incidents + 1),),
                  access, draws, rng),
        "incident list, one device and day":
            timed(lambda r: (r.choice(devices), any_day(r)),
                  lambda d, day: len(list(incident_list(device=d, day=day)[:PAGE])), draws, rng),
        "incident list, one officer's own, newest page":
            timed(lambda r: (r.choice(officers),),
                  lambda o: len(list(incident_list(officer=o).reverse()[:PAGE])), draws, rng),
        "incident list, one site's held incidents":
            timed(lambda r: (r.choice(sites),),
                  lambda s: len(list(incident_list(site=s, state=Incident.ACTIVE, held=True)[:PAGE])), draws, rng),
        "Art. 15 report, one site and day (every incident with holds, deletion, accesses)":
            timed(lambda r: (r.choice(sites), any_day(r)), subject_day, draws, rng),
    }
    return out


def unheld_active():
    from django.db.models import Exists, OuterRef

    from backoffice.catalog.models import Hold, Incident

    return (Incident.objects.filter(state=Incident.ACTIVE)
            .exclude(Exists(Hold.objects.filter(incident=OuterRef("pk"), lifted_at__isnull=True))))


def retention_clock(wanted: int) -> datetime:
    """The first moment at which ``wanted`` more unheld active incidents have expired (all, if there are fewer)."""
    later = unheld_active().filter(expires_at__gt=NOW).order_by("expires_at", "pk").values_list("expires_at", flat=True)
    return (list(later[wanted - 1:wanted]) or list(later.reverse()[:1]))[0]


def placeholder_store(store: Path, until: datetime) -> tuple[int, int]:
    """Files of every segment of the unheld active incidents that expire by ``until``: (incidents, files)."""
    from backoffice.catalog.models import Segment

    rows = (Segment.objects.filter(incident__in=unheld_active().filter(expires_at__lte=until))
            .values_list("incident__store_path", "stem", "ciphertext_bytes"))
    dirs, files = set(), 0
    age = os.urandom(4096)
    for path, stem, size in rows.iterator(chunk_size=5000):
        directory = store / path
        if path not in dirs:
            directory.mkdir(parents=True, exist_ok=True)
            dirs.add(path)
        (directory / f"{stem}.age").write_bytes(age)
        (directory / f"{stem}.manifest.json").write_text(json.dumps({"stem": stem, "ciphertext_bytes": size}))
        files += 2
    os.sync()
    return len(dirs), files


def unlink_cost(directory: Path, count: int, size: int) -> float:
    """Seconds to unlink ``count`` files of ``size`` bytes, as many at once as the retention run removes: the
    placeholders' unlinks against real segments' (12.5 MB), measured, not assumed. Each file is written, synced
    and dropped from the page cache first, as a segment stored two weeks earlier is (evicting a file's cached
    pages is most of what unlinking a freshly written one costs)."""
    from backoffice.catalog.retention import FILE_WORKERS

    directory.mkdir(parents=True)
    block = os.urandom(1 << 20)
    for i in range(count):
        with open(directory / f"f{i}", "wb") as f:
            for _ in range(max(1, size >> 20)):
                f.write(block if size >= 1 << 20 else block[:size])
            f.flush()
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    os.sync()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(FILE_WORKERS) as unlinking:
        list(unlinking.map(Path.unlink, [directory / f"f{i}" for i in range(count)]))
    fd = os.open(directory, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    spent = time.perf_counter() - t0
    shutil.rmtree(directory)
    return spent


def mount_of(path: Path) -> str:
    """The file system and its mount options (``discard`` trims every freed block at once, at a price)."""
    done = subprocess.run(["findmnt", "-no", "FSTYPE,OPTIONS", "-T", str(path)], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def real_file_estimate(directories: list[Path], sample: int, files: int, seconds: float) -> list[dict]:
    """What unlinking real 12.5 MB ciphertexts instead of the placeholders would add to the run, on each of
    ``directories``' file systems: the run removed ``files`` files (every other one a ciphertext)."""
    out = []
    for directory in directories:
        small = unlink_cost(directory / "u-small", sample, 4096)
        big = unlink_cost(directory / "u-big", sample, 12_500_000)
        extra = max(0.0, big - small) / sample
        out.append({"mount": mount_of(directory), "extra_ms_per_real_file": 1e3 * extra,
                    "seconds_with_real_files": seconds + extra * files / 2})
    return out


def measure_retention(root: Path, wanted: int, unlink_dirs: list[str]) -> dict:
    from backoffice.catalog.models import Incident, Tombstone
    from backoffice.catalog.office import open_office
    from backoffice.catalog.retention import run_retention
    from evidence.keys import generate_office_key

    until = retention_clock(wanted)
    store = root / "store"
    t0 = time.perf_counter()
    dirs, files = placeholder_store(store, until)
    log(f"retention: {files:,} placeholder files in {dirs:,} incident directories ({time.perf_counter() - t0:.0f} s)")
    keys = root / "retention-keys"
    keys.mkdir()
    generate_office_key(keys)
    office = open_office(store, keys / "office.key", root / "audit" / "retention-audit.jsonl", clock=lambda: until)
    tombstones_before = Tombstone.objects.count()
    t0 = time.perf_counter()
    with office.log:
        report = run_retention(office)
    spent = time.perf_counter() - t0
    left = sum(1 for p in store.rglob("*") if p.is_file() and p.name != "incident.tombstone.json")
    result = {"clock": until.isoformat(), "deleted": len(report.deleted), "held": len(report.held),
              "seconds": spent, "per_incident_ms": 1e3 * spent / max(1, len(report.deleted)),
              "files_removed": files - left, "tombstones_new": Tombstone.objects.count() - tombstones_before,
              "incomplete_tombstones": Tombstone.objects.filter(completed_at__isnull=True).count(),
              "deleted_total": Incident.objects.filter(state=Incident.DELETED).count(), "audit_bytes": (root / "audit" / "retention-audit.jsonl").stat().st_size}
    if result["tombstones_new"] != len(report.deleted) or result["incomplete_tombstones"] or left:
        raise RuntimeError(f"retention did not finish cleanly: {result}, {left} files left")
    sample = 200 if wanted >= 1000 else 5
    result["real_files"] = real_file_estimate([root] + [Path(d) for d in unlink_dirs], sample,
                                              result["files_removed"], spent)
    return result


def database_server_cpu() -> float:
    """CPU seconds of the PostgreSQL server's processes so far (those of the ``postgres`` user; 0 on SQLite,
    whose work the receiver's own CPU holds). It shares the two cores with the rest, so it counts."""
    from bench_uplink import proc_cpu

    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return 0.0
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if proc.stat().st_uid == uid:
                    total += proc_cpu(int(proc.name))
            except (FileNotFoundError, ProcessLookupError):
                pass  # ended in between (an autovacuum worker)
    return total


def measure_ingest(root: Path, segments: int, pairs: int, mbit: float) -> dict:
    """Receiver throughput without and with the catalog: ``pairs`` pairs of uploads, one of each, in alternating
    order, same device, broker and run. The machine is shared, so a pair's ratio is the figure (both halves saw
    about the same load); the medians of all runs are given too, and the CPU of all the processes (the database
    server's too)."""
    import bench_uplink as up  # noqa: E402  (the receiver process, proc_cpu and the timed upload)
    from comms.settings import UplinkSettings
    from evidence.keys import generate_office_key, generate_receipt_key, load_receipt_public_key

    data = Path(os.environ["BODYCAM_OFFICE_DATA"])
    (data / "keys").mkdir(parents=True)
    generate_office_key(data / "keys")
    pki = up.Pki(root / "pki")
    broker = up.Broker(root / "broker", pki, [up.RECEIVER], autosave_interval=60)
    broker.start()
    size = round(10 * mbit * 1e6 / 8)
    uplink = UplinkSettings(chunk_kib=256, window=16, receipt_key="-", receipt_timeout_s=30.0)
    rates: dict[str, list[float]] = {"without": [], "with": []}
    receiver_cpu: dict[str, list[float]] = {"without": [], "with": []}
    all_cpu: dict[str, list[float]] = {"without": [], "with": []}
    database_cpu: dict[str, list[float]] = {"without": [], "with": []}
    try:
        device = up.DeviceEnv(root / "device", up.DEVICE, up.SITE)
        settings = up.mqtt_settings(pki.issue(up.DEVICE), broker.port, keepalive_s=30)
        keys = root / "receipt-keys"
        keys.mkdir()
        generate_receipt_key(keys)
        receipt_pub = load_receipt_public_key(keys / "receipt.pub")
        receivers = {}
        for mode in rates:
            (root / f"receiver-{mode}").mkdir()
            receivers[mode] = up.ReceiverProcess(root / f"receiver-{mode}", pki, broker, device.device_pub,
                                                 keys / "receipt.key", catalog=mode == "with")
        for pair in range(pairs):
            for mode in (("without", "with") if pair % 2 == 0 else ("with", "without")):
                receiver = receivers[mode]
                receiver.start()
                try:
                    device.seal_random(segments, size=size)
                    os.sync()  # the spool's and the last run's dirty pages go to disk now, not during the run
                    r0, b0 = up.proc_cpu(receiver.process.pid), up.proc_cpu(broker.process.pid)
                    d0 = database_server_cpu()
                    secs, dev, status = up.protocol_run(device, settings, receipt_pub, uplink)
                    rx = up.proc_cpu(receiver.process.pid) - r0
                    db = database_server_cpu() - d0
                    receiver_cpu[mode].append(rx / segments)
                    database_cpu[mode].append(db / segments)
                    all_cpu[mode].append((rx + dev + up.proc_cpu(broker.process.pid) - b0 + db) / segments)
                finally:
                    receiver.stop()
                    # The stored files go (their catalog rows stay): 24 pairs of 100 would fill 60 GB.
                    shutil.rmtree(receiver.root / "store", ignore_errors=True)
                rates[mode].append(segments * size / secs)
                log(f"ingest pair {pair + 1}/{pairs} {mode} catalog: {rates[mode][-1] / 1e6:.1f} MB/s "
                    f"({status.segments_acknowledged} receipts)")
    finally:
        broker.kill()
    from backoffice.catalog.models import Segment

    ratios = [w / wo for w, wo in zip(rates["with"], rates["without"])]
    med = {m: statistics.median(v) for m, v in rates.items()}
    return {"segment_mb": size / 1e6, "segments": segments, "pairs": pairs,
            "without_mb_s": med["without"] / 1e6, "with_mb_s": med["with"] / 1e6,
            "runs_without": [x / 1e6 for x in rates["without"]], "runs_with": [x / 1e6 for x in rates["with"]],
            "pair_ratios": ratios, "ratio": statistics.median(ratios), "ratio_of_medians": med["with"] / med["without"],
            "cataloged": Segment.objects.filter(stem__startswith=up.DEVICE + "-").count(),
            "receiver_cpu_ms_per_segment": {m: 1e3 * statistics.median(v) for m, v in receiver_cpu.items()},
            "database_cpu_ms_per_segment": {m: 1e3 * statistics.median(v) for m, v in database_cpu.items()},
            "all_cpu_ms_per_segment": {m: 1e3 * statistics.median(v) for m, v in all_cpu.items()}}


def measure_recording(root: Path, count: int, batch: int = 4) -> dict:
    """What the catalog adds to each stored segment, without the network: the receiver's CatalogRecorder (one
    transaction, one office audit write) on ``count`` real signed manifests, into this year's catalog; alone,
    and in batches of ``batch`` as the receiver's acknowledger hands them over under load (per segment)."""
    sys.path.insert(0, str(REPO / "tests" / "comms"))
    from comms_env import DeviceEnv

    from backoffice.catalog.office import open_office
    from backoffice.catalog.receiving import CatalogRecorder
    from evidence.keys import generate_office_key, load_device_public_keys
    from evidence.seal import Manifest

    device = DeviceEnv(root / "device", "kod-rec", "bench-rec")
    device.seal_random(count * (1 + batch), size=20_000)
    manifests = [Manifest.parse(device.spool.read(item.stem).manifest) for item in device.spool.pending()]
    (root / "keys").mkdir()
    generate_office_key(root / "keys")
    office = open_office(root / "store", root / "keys" / "office.key", root / "audit" / "office-audit.jsonl")
    record = CatalogRecorder(office, load_device_public_keys([device.device_pub]))
    alone, batched = [], []
    with office.log:
        for manifest in manifests[:count]:
            t0 = time.perf_counter()
            record([manifest])
            alone.append(time.perf_counter() - t0)
        for i in range(count, len(manifests), batch):
            t0 = time.perf_counter()
            record(manifests[i:i + batch])
            batched.append((time.perf_counter() - t0) / batch)
    return {**percentiles(alone), "batch": batch, "batched": percentiles(batched)}


def database_size(connection, path: str | None) -> int:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            return cur.fetchone()[0]
    return os.path.getsize(path)


def child(args) -> dict:
    from backoffice.office.bootstrap import setup_django

    setup_django()
    from django.core.management import call_command
    from django.db import connection

    import catalog_year

    root = Path(args.child)
    call_command("migrate", interactive=False, verbosity=0)
    vendor = connection.vendor
    scale = catalog_year.scale_for(args.incidents)
    log(f"{vendor}: generating {scale}")
    t0 = time.perf_counter()
    counts = catalog_year.generate(connection, scale, NOW, progress=lambda t: log(f"{vendor}: {t}"))
    generated = time.perf_counter() - t0
    if vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")  # what autovacuum does after a load, done now rather than mid-measurement
    connection.close()  # the measurements use a connection as the product opens it
    result = {"database": vendor, "counts": counts.__dict__, "generate_s": generated,
              "size_bytes": database_size(connection, connection.settings_dict["NAME"])}
    log(f"{vendor}: generated in {generated:.0f} s, {result['size_bytes'] / 1e9:.1f} GB: {counts}")
    steps = set(args.steps.split(",")) - ({"ingest"} if args.no_ingest else set())
    result["load"] = {}
    for step, measure in (("queries", lambda: measure_queries(args.draws)),
                          ("retention", lambda: measure_retention(root, args.expired, args.unlink_dirs)),
                          ("recording", lambda: measure_recording(root / "recording", max(20, args.draws))),
                          ("ingest", lambda: measure_ingest(root / "ingest", args.ingest_segments, args.ingest_pairs,
                                                            args.ingest_mbit))):
        if step in steps:
            before = os.getloadavg()[0]
            result[step] = measure()
            result["load"][step] = (before, os.getloadavg()[0])  # the machine is shared: how busy it was
            log(f"{vendor}: {step}: {result[step]} (load average {before:.1f} -> {os.getloadavg()[0]:.1f})")
    return result


# -- the parent: a directory, a server, a child per database, the table --------------------------------------

def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.machine())
    mem = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))) / 2**20
    import django
    import sqlite3

    return (f"{os.cpu_count()} vCPU {model}, {mem:.0f} GiB, Python {platform.python_version()}, Django "
            f"{django.get_version()}, SQLite {sqlite3.sqlite_version}")


def run_child(args, database: str, root: Path) -> dict:
    from tests.office.pgserver import postgresql_server

    root.mkdir()
    env = {**os.environ, "BODYCAM_OFFICE_DATA": str(root / "office"), "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(root), "--incidents", str(args.incidents),
               "--draws", str(args.draws), "--expired", str(args.expired), "--ingest-segments",
               str(args.ingest_segments), "--ingest-pairs", str(args.ingest_pairs), "--ingest-mbit",
               str(args.ingest_mbit), "--steps", args.steps]
    command += [f"--unlink-dir={d}" for d in args.unlink_dirs] + (["--no-ingest"] if args.no_ingest else [])

    def go(url: str) -> dict:
        done = subprocess.run(command, env={**env, "DATABASE_URL": url}, stdout=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the {database} run failed (exit {done.returncode})")
        return json.loads(done.stdout.strip().splitlines()[-1])

    if database == "sqlite":
        return go(f"sqlite:///{root / 'catalog.sqlite3'}")
    for directory in (root.parent, root):
        os.chmod(directory, 0o711)  # the server runs as the postgres user, in a directory of its own below
    with postgresql_server(parent=root, settings=PG_SETTINGS) as url:
        return go(url)


def table(results: list[dict], args) -> str:
    dbs = [r["database"] for r in results]
    c = results[0]["counts"]
    lines = [f"# bench_catalog: {args.incidents:,} incidents ({c['segments']:,} segments, {c['accesses']:,} accesses, "
             f"{c['holds']:,} holds ({c['holds_on']:,} on), {c['decisions']:,} decisions, {c['tombstones']:,} "
             f"tombstones; {c['active']:,} active), {machine()}", "",
             "| measure | " + " | ".join(dbs) + " | target |", "|---|" + "---|" * len(dbs) + "---|"]

    def row(name, values, target=""):
        lines.append(f"| {name} | " + " | ".join(values) + f" | {target} |")

    row("generate (bulk SQL) / database size",
        [f"{r['generate_s'] / 60:.1f} min / {r['size_bytes'] / 1e9:.1f} GB" for r in results])
    if "queries" in results[0]:
        for i, name in enumerate(results[0]["queries"]):
            qs = [r["queries"][name] for r in results]
            target = f"p95 <= {TARGET_P95_MS:.0f} ms" if i < 3 else ""
            bold = "**" if i < 3 else ""
            row(f"{name}: p50 / {bold}p95{bold} (rows)",
                [f"{q['p50_ms']:.1f} / {bold}{q['p95_ms']:.1f} ms{bold} ({q['rows']:.0f})" for q in qs], target)
    if "retention" in results[0]:
        row(f"**retention run deleting {results[0]['retention']['deleted']:,} expired incidents**",
            [f"**{r['retention']['seconds']:.1f} s** ({r['retention']['per_incident_ms']:.1f} ms each; "
             f"{r['retention']['files_removed']:,} files removed, {r['retention']['held']:,} expired but held)"
             for r in results], f"<= {TARGET_RETENTION_S:.0f} s for 10,000")
        for k in range(len(results[0]["retention"]["real_files"])):
            row(f"the run with real 12.5 MB ciphertexts instead of placeholders, estimated from unlinking 200 of "
                f"each, 8 at once, on `{results[0]['retention']['real_files'][k]['mount']}`",
                [f"+{r['retention']['real_files'][k]['extra_ms_per_real_file']:.2f} ms a ciphertext: "
                 f"{r['retention']['real_files'][k]['seconds_with_real_files']:.0f} s" for r in results])
    if "recording" in results[0]:
        row("recording one segment in this catalog (the receiver's CatalogRecorder, no network): p50 / p95",
            [f"{r['recording']['p50_ms']:.1f} / {r['recording']['p95_ms']:.1f} ms" for r in results])
        row(f"the same per segment, {results[0]['recording']['batch']} in one transaction (the acknowledger "
            "under load): p50 / p95",
            [f"{r['recording']['batched']['p50_ms']:.1f} / {r['recording']['batched']['p95_ms']:.1f} ms"
             for r in results])
    if "ingest" in results[0]:
        i = results[0]["ingest"]
        row(f"receiver ingest without / with the catalog ({i['segment_mb']:.1f} MB segments, {i['segments']} a run; "
            f"medians of {i['pairs']} runs each)",
            [f"{r['ingest']['without_mb_s']:.1f} / {r['ingest']['with_mb_s']:.1f} MB/s "
             f"({100 * r['ingest']['ratio_of_medians']:.1f} %)" for r in results])
        row("**ratio with / without (median of the pairs, same run)**",
            [f"**{100 * r['ingest']['ratio']:.1f} %** (pairs {min(r['ingest']['pair_ratios']) * 100:.0f}-"
             f"{max(r['ingest']['pair_ratios']) * 100:.0f} %)" for r in results], f">= {100 * TARGET_INGEST:.0f} %")
        row("CPU per segment without / with: receiver; database server; receiver + device + broker + server",
            [f"{r['ingest']['receiver_cpu_ms_per_segment']['without']:.1f} / "
             f"{r['ingest']['receiver_cpu_ms_per_segment']['with']:.1f} ms; "
             f"{r['ingest'].get('database_cpu_ms_per_segment', {}).get('without', 0):.1f} / "
             f"{r['ingest'].get('database_cpu_ms_per_segment', {}).get('with', 0):.1f} ms; "
             f"{r['ingest']['all_cpu_ms_per_segment']['without']:.0f} / "
             f"{r['ingest']['all_cpu_ms_per_segment']['with']:.0f} ms" for r in results])
    row("load average of the shared machine (1 min) around each step",
        ["; ".join(f"{step} {a:.1f}-{b:.1f}" for step, (a, b) in r["load"].items()) for r in results])
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--incidents", type=int, default=1_000_000, help="incidents in the year (default 1 M)")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--draws", type=int, default=200, help="parameter draws per query (default 200)")
    ap.add_argument("--expired", type=int, default=10_000, help="incidents the retention run deletes")
    ap.add_argument("--ingest-segments", type=int, default=100,
                    help="segments per upload run (default 100: a run of 40 took 2.5 s here, and its pairs spread "
                         "over +-25 %%)")
    ap.add_argument("--ingest-pairs", type=int, default=24, help="pairs of upload runs, without and with (default 24)")
    ap.add_argument("--ingest-mbit", type=float, default=10.0, help="video bit rate of the 10 s segments")
    ap.add_argument("--no-ingest", action="store_true", help="leave out the receiver ingest")
    ap.add_argument("--steps", default="queries,retention,recording,ingest",
                    help="what to measure after generating (default: all of queries,retention,recording,ingest)")
    ap.add_argument("--dir", default=None, help="where the databases, store and broker live (default: $TMPDIR)")
    ap.add_argument("--unlink-dir", dest="unlink_dirs", action="append", default=[], metavar="DIR",
                    help="also measure unlinking real segments on DIR's file system (e.g. one mounted without "
                         "'discard'); repeatable")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    results = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-catalog-") as tmp:
        for database in args.databases.split(","):
            results.append(run_child(args, database, Path(tmp) / database))
            shutil.rmtree(Path(tmp) / database, ignore_errors=True)
    print(table(results, args))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

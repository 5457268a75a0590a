"""What sound costs: the whole agent recording 1080p30 with and without sound, same settings otherwise.

Reproduce:  .venv/bin/python bench/bench_sound.py [--seconds 60] [--pre-event 30] [--rounds 2]

Runs bench/bench_agent.py's measurement (``bodycam run`` as its own process, synthetic 1080p30
10 Mbit/s replayed in real time, 30 s pre-event window, sealing and uploading to a local back office)
alternately without and with ``[audio] enabled = true`` and reports the difference of the agent's
CPU share of one core and of its RSS, against the targets: at most 1 % of one core and 5 MB more.
With sound the synthetic camera's test tone is rendered and encoded to AAC by a child process
(camera/soundprocess.py), as its replayed pictures are: the agent sends it the pictures' times five
times a second and receives the packets (about 47 a second) in as many batches; the segments are
sealed as MP4 with both tracks. The child's own CPU and RSS are reported beside the agent's, so
the whole cost of sound stays visible. PyAV is loaded into the agent in both runs (on the Pi
picamera2 imports it whether or not sound is recorded); ``--no-preload-av`` leaves it out of both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_agent import measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pre-event", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (without, with sound)")
    parser.add_argument("--no-preload-av", action="store_true",
                        help="do not load PyAV into the agent without sound (on the Pi picamera2 always loads it)")
    args = parser.parse_args()
    print(f"command: .venv/bin/python bench/bench_sound.py --seconds {args.seconds:g} --pre-event "
          f"{args.pre_event:g} --rounds {args.rounds}" + (" --no-preload-av" if args.no_preload_av else ""),
          flush=True)
    runs = {False: [], True: []}
    for _ in range(args.rounds):
        for audio in (False, True):
            print(f"--- {'with' if audio else 'without'} sound", flush=True)
            runs[audio].append(measure(args.seconds, args.pre_event, audio=audio,
                                       preload_av=not args.no_preload_av))
    cpu = {a: statistics.median(r["cpu_share"] for r in rs) for a, rs in runs.items()}
    steady = {a: statistics.median(r["steady_rss"] for r in rs) for a, rs in runs.items()}
    peak = {a: statistics.median(r["peak_rss"] for r in rs) for a, rs in runs.items()}
    added_cpu, added_rss, added_peak = cpu[True] - cpu[False], steady[True] - steady[False], peak[True] - peak[False]
    print(f"median CPU without sound {cpu[False] * 100:.2f} %, with {cpu[True] * 100:.2f} %: added "
          f"{added_cpu * 100:+.2f} % of one core -> {'OK' if added_cpu <= 0.01 else 'over'} (target <= 1 %)")
    print(f"median steady RSS without {steady[False] / 1e6:.1f} MB, with {steady[True] / 1e6:.1f} MB: added "
          f"{added_rss / 1e6:+.1f} MB -> {'OK' if added_rss <= 5e6 else 'over'} (target <= 5 MB)")
    print(f"median peak RSS (VmHWM) without {peak[False] / 1e6:.1f} MB, with {peak[True] / 1e6:.1f} MB: added "
          f"{added_peak / 1e6:+.1f} MB")
    child_cpu = statistics.median(r["children_cpu_share"] for r in runs[True])
    child_rss = statistics.median(r["children_rss"] for r in runs[True])
    print(f"median sound process (the agent's child, with sound): CPU {child_cpu * 100:.2f} % of one core, "
          f"RSS {child_rss / 1e6:.1f} MB; agent and child together add {(added_cpu + child_cpu) * 100:+.2f} %")
    for audio, rs in runs.items():
        print(f"each run {'with' if audio else 'without'} sound: CPU "
              + ", ".join(f"{r['cpu_share'] * 100:.2f} %" for r in rs) + "; RSS "
              + ", ".join(f"{r['steady_rss'] / 1e6:.1f} MB" for r in rs))


if __name__ == "__main__":
    main()

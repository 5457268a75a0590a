"""Child process of the crash test: stores, acknowledges and purges segments until it is killed.

Half of the segments are stored whole (``Spool.store``), half streamed in pieces through
``Spool.begin`` as the sealer does. Usage: ``python crash_writer.py SPOOL_DIR SEED``. Prints ``READY <next seq>`` once the spool is open,
then one line per completed operation, *after* the call returned: ``STORED <stem>``,
``ACKED <stem>``, ``PURGED <stem>``. The parent kills it with SIGKILL at a random moment and checks
that every printed promise still holds after recovery.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from dataclasses import dataclass

from evidence.spool import Spool


@dataclass(frozen=True)
class Sealed:
    stem: str
    ciphertext: bytes
    manifest: bytes
    seq: int
    ciphertext_sha256: str


def sealed(seq: int, rng: random.Random) -> Sealed:
    ciphertext = b"age-encryption.org/v1\n" + os.urandom(rng.randint(100_000, 600_000))
    sha = hashlib.sha256(ciphertext).hexdigest()
    manifest = json.dumps({"device": "crash", "seq": seq, "ciphertext_sha256": sha}).encode()
    return Sealed(f"crash-{seq:010d}", ciphertext, manifest, seq, sha)


def main(directory: str, seed: int) -> None:
    rng = random.Random(seed)
    spool = Spool.open(directory)
    newest = spool.newest_manifest()
    seq = json.loads(newest)["seq"] + 1 if newest else 0
    print("READY", seq, flush=True)
    while True:
        segment = sealed(seq, rng)
        if rng.random() < 0.5:
            spool.store(segment)
        else:  # as the sealer does: the ciphertext streamed in 64 KiB pieces while it is "encrypted"
            with spool.begin(segment.stem) as writer:
                for offset in range(0, len(segment.ciphertext), 65536):
                    writer.write(segment.ciphertext[offset:offset + 65536])
                writer.commit(segment.manifest, segment.seq, segment.ciphertext_sha256)
        print("STORED", segment.stem, flush=True)
        seq += 1
        drain = rng.random() < 0.1  # sometimes the uplink catches up completely (exercises the chain head)
        pending = spool.pending()
        for info in pending if drain else pending[:-4]:
            spool.acknowledge(info.stem, info.ciphertext_sha256, b'{"receiver":"crash-test"}')
            print("ACKED", info.stem, flush=True)
        acked = spool.acknowledged()
        for info in acked if drain else acked[:-2]:  # keep-until-space-needed: keep the last two
            spool.purge(info.stem)
            print("PURGED", info.stem, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

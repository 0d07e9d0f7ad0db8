"""The long fuzzing run (see tools/fuzzing/): hostile inputs of every family through the CLI.

The lead's run over the new surfaces, at nice 10 in the background:

    python tools/fuzz.py --families surfaces --count 10000 --nice 10 --summary fuzz-surfaces.json

and over the model files (prototxt, caffemodel, HDF5, .keras config) as before:

    python tools/fuzz.py --families models --count 10000 --summary fuzz-models.json

Families: prototxt, caffemodel, hdf5, keras (the group "models"); image, mean, array, labels,
catalog, http, weights, free-size (the group "surfaces"); "all" is both. Cases are drawn by
hypothesis a chunk at a time, one seed per chunk (hypothesis slows down sharply past a few
hundred examples per call), while the cases already drawn run, in worker processes of --batch
inputs each, capped at 2 GiB of address space and a CPU-time limit per input (network cases
also a wall-clock limit of their own). Network cases (catalogs, downloads) mostly wait on the
server: they run in workers of their own, --network-jobs at once, without Keras. A worker whose
address space grows past its start by 256 MiB makes way for a fresh one, so that each input
meets the memory bound with a fresh process's room. Progress goes to stderr; the summary
(inputs tried per family, outcomes per family, throughput, seeds, commit, every failure) to
--summary, rewritten as each batch ends ("complete": false until the run ends), so that an
interrupted run leaves the figures of what it finished. Exit status 1 when any input ended in a
bug (internal error, traceback, broken property, leftover file, hang, over-memory or crash).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import fuzzing
from tools.fuzzing.harness import REPO


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=10_000, help="inputs to try (default 10000)")
    parser.add_argument("--chunk", type=int, default=200, help="inputs drawn per hypothesis seed (default 200)")
    parser.add_argument("--batch", type=int, default=100, help="inputs per worker process (default 100)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="workers at once (default: one per CPU)")
    parser.add_argument(
        "--network-jobs",
        type=int,
        default=8,
        help="workers at once for network cases, which mostly wait on the server (default 8)",
    )
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed of the first chunk (default 0)")
    parser.add_argument("--nice", type=int, default=0, help="run the workers at this niceness")
    parser.add_argument(
        "--timeout",
        type=float,
        default=fuzzing.CASE_TIMEOUT_S,
        help="CPU seconds allowed per input (default %(default)s)",
    )
    parser.add_argument("--summary", type=Path, help="write the summary here as JSON")
    parser.add_argument(
        "--families",
        default="models",
        help="families or groups to draw from, comma-separated: models, surfaces, all, or names (default models)",
    )
    args = parser.parse_args()
    try:
        chosen = fuzzing.families(args.families)
    except ValueError as exc:
        parser.error(str(exc))
    # Drawing cases imports JAX here; its warning on fork does not apply, as the child only sets
    # its memory limit before it execs the worker.
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)

    summary = Summary(args, chosen)
    with (
        tempfile.TemporaryDirectory(prefix="c2k-fuzz-cache-") as run_cache,
        ThreadPoolExecutor(args.jobs) as cpu,  # threads only wait: each runs a worker process
        ThreadPoolExecutor(args.network_jobs) as network,
    ):

        def submit(pool, part, chunk_seed):
            indices, cases = zip(*part)
            future = pool.submit(fuzzing.run, list(cases), args.batch, args.timeout, args.nice, None, Path(run_cache))
            pending[future] = (pool, chunk_seed, indices)
            fed.add(pool)

        def collect(return_when):
            done, _ = wait(pending, return_when=return_when)
            for future in done:
                _, chunk_seed, indices = pending.pop(future)
                summary.add(future.result(), chunk_seed, indices)

        pending: dict = {}
        fed: set = set()  # the pools given work
        for number, start in enumerate(range(0, args.count, args.chunk)):
            seed = args.seed + number
            cases = fuzzing.generate(min(args.chunk, args.count - start), seed=seed, chosen=chosen)
            summary.drawn(cases, seed)
            for pool, waits in ((cpu, False), (network, True)):
                chosen_cases = [(i, case) for i, case in enumerate(cases) if (case.wall_s is not None) == waits]
                for i in range(0, len(chosen_cases), args.batch):
                    submit(pool, chosen_cases[i : i + args.batch], seed)
            # Draw the next chunk once every pool with work is down to two parts a worker, so that
            # each family's figures grow in step and an interrupted run's stay comparable.
            sizes = {cpu: args.jobs, network: args.network_jobs}
            while pending and any(sum(p is pool for p, _, _ in pending.values()) > 2 * sizes[pool] for pool in fed):
                collect(FIRST_COMPLETED)
        while pending:  # one batch at a time, so that the summary is rewritten as each ends
            collect(FIRST_COMPLETED)
    summary.finish()
    return 1 if summary.failures else 0


class Summary:
    """The figures so far, printed as progress and rewritten to ``--summary`` as each batch ends."""

    def __init__(self, args, chosen):
        self.args, self.chosen = args, chosen
        self.outcomes: Counter = Counter()
        self.by_family: Counter = Counter()  # (family, outcome)
        self.kinds: Counter = Counter()
        self.failures: list[dict] = []
        self.seeds: list[int] = []
        self.workers = 0
        self.started = time.time()
        self.commit = _commit()

    def drawn(self, cases, seed: int) -> None:
        self.kinds.update(case.kind for case in cases)
        self.seeds.append(seed)

    def add(self, report, chunk_seed: int, indices) -> None:
        self.outcomes.update(report.outcomes)
        self.by_family.update(report.by_family)
        self.workers += report.workers
        self.failures.extend(
            {**failure, "chunk_seed": chunk_seed, "index": indices[failure["index"]]} for failure in report.failures
        )
        tried, seconds = sum(self.outcomes.values()), time.time() - self.started
        print(f"{tried} inputs, {tried / seconds:.2f}/s: {dict(self.outcomes)}", file=sys.stderr, flush=True)
        self.write(complete=False)

    def finish(self) -> None:
        self.write(complete=True)

    def write(self, complete: bool) -> None:
        if not self.args.summary:
            return
        args, tried, seconds = self.args, sum(self.outcomes.values()), time.time() - self.started
        summary = {
            "complete": complete,
            "tried": tried,
            "seconds": round(seconds, 1),
            "inputs_per_second": round(tried / max(seconds, 1e-9), 2),
            "commit": self.commit,
            "machine": f"{platform.node()}: {os.cpu_count()} CPUs, {platform.platform()}",
            "seeds": [min(self.seeds), max(self.seeds)] if self.seeds else [],
            "chunk": args.chunk,
            "jobs": args.jobs,
            "network_jobs": args.network_jobs,
            "batch": args.batch,
            "nice": args.nice,
            "workers_started": self.workers,
            "memory_limit_bytes": fuzzing.MEMORY_LIMIT,
            "timeout_s": args.timeout,
            "families": list(self.chosen),
            "outcomes": dict(self.outcomes),
            "by_family": family_table(self.by_family),
            "kinds": dict(self.kinds),
            "failures": self.failures,
        }
        temporary = args.summary.with_name(args.summary.name + ".tmp")
        temporary.write_text(json.dumps(summary, indent=2) + "\n")
        os.replace(temporary, args.summary)  # a reader (or a kill) never meets half a summary


def _commit() -> str:
    """The checkout's commit, ``+changes`` when its tracked files differ from it."""

    def git(*argv):
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "HEAD") + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def family_table(by_family: Counter) -> dict[str, dict[str, int]]:
    """{family: {"n": inputs, outcome: count...}}: the figures docs/robustness.md publishes."""
    table: dict[str, dict[str, int]] = {}
    for (family, outcome), count in sorted(by_family.items()):
        row = table.setdefault(family, {"n": 0})
        row["n"] += count
        row[outcome] = count
    return table


if __name__ == "__main__":
    sys.exit(main())

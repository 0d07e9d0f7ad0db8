"""The long fuzzing run: ``python tools/fuzz.py --count 10000`` (see tests/fuzzing.py).

Cases are drawn by hypothesis a chunk at a time, one seed per chunk (hypothesis slows down sharply
past a few hundred examples per call), and run in worker processes of ``--batch`` inputs each, capped
at 2 GiB of address space and a time limit per input. Small batches keep each worker's memory close
to that of a fresh process. Progress goes to stderr; the summary (inputs tried, outcomes,
throughput, every failure) to ``--summary``. Exit status 1 when any input ended in a bug (internal
error, traceback, broken property, leftover file, hang, over-memory or crash).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import fuzzing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="inputs to try (default 10000)")
    parser.add_argument("--chunk", type=int, default=200, help="inputs drawn per hypothesis seed (default 200)")
    parser.add_argument("--batch", type=int, default=25, help="inputs per worker process (default 25)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="workers at once (default: one per CPU)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed of the first chunk (default 0)")
    parser.add_argument("--nice", type=int, default=0, help="run the workers at this niceness")
    parser.add_argument(
        "--timeout",
        type=float,
        default=fuzzing.CASE_TIMEOUT_S,
        help="CPU seconds allowed per input (default %(default)s)",
    )
    parser.add_argument("--summary", type=Path, help="write the summary here as JSON")
    args = parser.parse_args()
    # Drawing cases imports JAX here; its warning on fork does not apply, as the child only sets
    # its memory limit before it execs the worker.
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)

    outcomes: Counter = Counter()
    kinds: Counter = Counter()
    failures: list[dict] = []
    started = time.time()
    with ThreadPoolExecutor(args.jobs) as pool:  # threads only wait: each runs a worker process
        for number, start in enumerate(range(0, args.count, args.chunk)):
            seed = args.seed + number
            cases = fuzzing.generate(min(args.chunk, args.count - start), seed=seed)
            kinds.update(case.kind for case in cases)
            parts = [cases[i : i + args.batch] for i in range(0, len(cases), args.batch)]
            reports = pool.map(lambda part: fuzzing.run(part, args.batch, args.timeout, args.nice), parts)
            for offset, report in zip(range(0, len(cases), args.batch), reports):
                outcomes.update(report.outcomes)
                failures.extend(
                    {**failure, "chunk_seed": seed, "index": failure["index"] + offset} for failure in report.failures
                )
            tried, seconds = sum(outcomes.values()), time.time() - started
            print(f"{tried} inputs, {tried / seconds:.1f}/s: {dict(outcomes)}", file=sys.stderr, flush=True)
            if args.summary:
                summary = {
                    "tried": tried,
                    "seconds": round(seconds, 1),
                    "inputs_per_second": round(tried / seconds, 2),
                    "jobs": args.jobs,
                    "batch": args.batch,
                    "memory_limit_bytes": fuzzing.MEMORY_LIMIT,
                    "timeout_s": args.timeout,
                    "outcomes": dict(outcomes),
                    "kinds": dict(kinds),
                    "failures": failures,
                }
                args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

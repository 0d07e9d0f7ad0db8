"""The long fuzzing run (see tools/fuzzing/): hostile inputs of every family through the CLI.

The lead's run over the new surfaces, at nice 10 in the background:

    python tools/fuzz.py --families surfaces --count 10000 --nice 10 --summary fuzz-surfaces.json

and over the model files (prototxt, caffemodel, HDF5, .keras config) as before:

    python tools/fuzz.py --families models --count 10000 --summary fuzz-models.json

Families: prototxt, caffemodel, hdf5, keras (the group "models"); image, mean, array, labels,
catalog, http, weights, free-size (the group "surfaces"); "all" is both. Cases are drawn by
hypothesis a chunk at a time, one seed per chunk (hypothesis slows down sharply past a few
hundred examples per call), and run in worker processes of --batch inputs each, capped at 2 GiB
of address space and a CPU-time limit per input (network cases also a wall-clock limit of their
own). Small batches keep each worker's memory close to that of a fresh process. Progress goes to
stderr; the summary (inputs tried per family, outcomes per family, throughput, every failure)
to --summary. Exit status 1 when any input ended in a bug (internal error, traceback, broken
property, leftover file, hang, over-memory or crash).
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

from tools import fuzzing


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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

    outcomes: Counter = Counter()
    by_family: Counter = Counter()  # (family, outcome)
    kinds: Counter = Counter()
    failures: list[dict] = []
    started = time.time()
    with ThreadPoolExecutor(args.jobs) as pool:  # threads only wait: each runs a worker process
        for number, start in enumerate(range(0, args.count, args.chunk)):
            seed = args.seed + number
            cases = fuzzing.generate(min(args.chunk, args.count - start), seed=seed, chosen=chosen)
            kinds.update(case.kind for case in cases)
            parts = [cases[i : i + args.batch] for i in range(0, len(cases), args.batch)]
            reports = pool.map(lambda part: fuzzing.run(part, args.batch, args.timeout, args.nice), parts)
            for offset, report in zip(range(0, len(cases), args.batch), reports):
                outcomes.update(report.outcomes)
                by_family.update(report.by_family)
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
                    "families": list(chosen),
                    "outcomes": dict(outcomes),
                    "by_family": family_table(by_family),
                    "kinds": dict(kinds),
                    "failures": failures,
                }
                args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if failures else 0


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

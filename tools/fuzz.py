"""The long fuzzing run: ``python tools/fuzz.py --count 10000`` (see tests/fuzzing.py).

Cases are drawn by hypothesis, one batch per seed so that memory stays flat, and run in
worker processes capped at 2 GiB of address space and a time limit per input. Progress goes to
stderr; the summary (inputs tried, outcomes, throughput, every failure) to ``--summary``.
Exit status 1 when any input ended in a bug (internal error, traceback, broken property,
leftover file, hang, over-memory or crash).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import fuzzing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="inputs to try (default 10000)")
    parser.add_argument("--batch", type=int, default=200, help="inputs per worker process (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed of the first batch")
    parser.add_argument("--nice", type=int, default=0, help="run the workers at this niceness")
    parser.add_argument("--timeout", type=float, default=fuzzing.CASE_TIMEOUT_S, help="seconds allowed per input")
    parser.add_argument("--summary", type=Path, help="write the summary here as JSON")
    args = parser.parse_args()

    outcomes: Counter = Counter()
    kinds: Counter = Counter()
    failures: list[dict] = []
    seconds = 0.0
    for number, start in enumerate(range(0, args.count, args.batch)):
        cases = fuzzing.generate(min(args.batch, args.count - start), seed=args.seed + number)
        kinds.update(case.kind for case in cases)
        report = fuzzing.run(cases, batch=args.batch, timeout_s=args.timeout, nice=args.nice)
        outcomes.update(report.outcomes)
        failures.extend({**failure, "batch_seed": args.seed + number} for failure in report.failures)
        seconds += report.seconds
        tried = sum(outcomes.values())
        print(f"{tried} inputs, {tried / seconds:.1f}/s: {dict(outcomes)}", file=sys.stderr, flush=True)
        if args.summary:
            summary = {
                "tried": tried,
                "seconds": round(seconds, 1),
                "inputs_per_second": round(tried / seconds, 2),
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

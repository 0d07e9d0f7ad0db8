"""The fuzzing harness: cases of every family run through the CLI in worker processes, each held
to a memory bound (``RLIMIT_AS``) and a time limit per input.

:func:`generate` draws cases with hypothesis from the families chosen (``GROUPS`` names them); :func:`run`
hands them in batches to worker processes (``python -m tools.fuzzing CASES RESULTS``), which record
one outcome per case. Outcomes that are not bugs: ``refused`` (one ``caffe2keras: error:`` line,
exit status 1 or 2, nothing left behind), ``converted``/``ran`` (exit 0, and the family's
properties hold), ``loaded``/``load-refused`` (a mutated ``.keras`` config loads, or Keras refuses
it), ``diverged`` (``verify`` ran and reported a difference), ``usage`` (argparse refused an
option's value). Bugs: ``internal``, ``traceback``,
``property`` (a property of the family broken: a wrong success, a second error line, a file
written outside the case's output places...), ``leftovers``; ``hang``, ``over-memory``, ``crash``:
the worker was killed, ran out of its address space, or died.

Used by ``tests/test_fuzz.py`` (short runs) and ``tools/fuzz.py`` (the long one).
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CAFFE2KERAS_SHARED", REPO.parent / "shared"))
MEMORY_LIMIT = 2 << 30
CASE_TIMEOUT_S = 60.0
SEEDS_ENV = "C2K_FUZZ_SEEDS"  # the folder of seed files a run's workers share
# A worker whose address space has grown this much past its start makes way for a fresh one, so
# that a case meets the memory bound with a fresh process's room, not its predecessors' leftovers.
GROWTH_LIMIT = 256 << 20
BUGS = ("internal", "traceback", "property", "leftovers", "hang", "over-memory", "crash")


@dataclass
class Case:
    """One input and what must hold for it.

    A model-file case (``argv`` None) holds files by role (prototxt, weights or keras); a file
    given as a :class:`~tools.fuzzing.model_files.SeedFile` is a seed's, unchanged, so that cases
    stay small to pickle. A command case holds files by their path in the case's folder (a
    :class:`~tools.fuzzing.surfaces.Seed` for a shared seed file) and the command line that
    reads them; ``notes`` says which properties it must keep (see ``surfaces.check``)."""

    kind: str
    files: dict[str, bytes]
    weights_suffix: str = ".caffemodel"
    twin: dict[str, bytes] | None = None  # a canonical form that must convert to the same model
    truncated_from: bytes | None = None  # the whole weights file, when ``files`` holds a cut one
    notes: dict = field(default_factory=dict)
    argv: list[str] | None = None  # a command case: the CLI's arguments
    env: dict[str, str] = field(default_factory=dict)  # set while the command runs
    wall_s: float | None = None  # a wall-clock limit of its own (a network case waits without CPU)


# Families by name, and the groups --families takes.
MODEL_FAMILIES = ("prototxt", "caffemodel", "hdf5", "keras")
SURFACE_FAMILIES = ("image", "mean", "array", "labels", "catalog", "http", "weights", "free-size")
GROUPS = {"models": MODEL_FAMILIES, "surfaces": SURFACE_FAMILIES, "all": MODEL_FAMILIES + SURFACE_FAMILIES}


def families(spec: str) -> tuple[str, ...]:
    """``"surfaces"``, ``"models,image"``... as family names; a ValueError for an unknown one."""
    chosen: list[str] = []
    for name in (part.strip() for part in spec.split(",") if part.strip()):
        if name not in GROUPS and name not in GROUPS["all"]:
            known = ", ".join(GROUPS["all"])
            raise ValueError(f"unknown family {name!r}; the families are {known} (groups: {', '.join(GROUPS)})")
        chosen.extend(n for n in GROUPS.get(name, (name,)) if n not in chosen)
    return tuple(chosen)


def generate(count: int, seed: int = 0, chosen: tuple[str, ...] = MODEL_FAMILIES) -> list[Case]:
    """``count`` cases of the ``chosen`` families drawn by hypothesis (no shrinking: every draw is kept)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from tools.fuzzing import model_files, surfaces

    strategies = {**model_files.strategies(chosen), **surfaces.strategies(chosen)}
    cases: list[Case] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of([strategies[name] for name in chosen]))
    def collect(case):
        cases.append(case)

    collect()
    return cases[:count]


def family_of(kind: str) -> str:
    """The family of a case's kind: ``image-truncated`` -> ``image``, ``canonical-as-is`` -> ``prototxt``."""
    for name in sorted(GROUPS["all"], key=len, reverse=True):
        if kind.startswith(name):
            return name
    return "prototxt" if kind.startswith("canonical") else kind


def run_case(case: Case) -> tuple[str, str]:
    """The outcome of one case and a detail (the message, or what went wrong)."""
    if case.argv is not None:
        from tools.fuzzing.commands import run_command_case

        return run_command_case(case)
    from tools.fuzzing.model_files import run_model_case

    return run_model_case(case)


# ---------------------------------------------------------------------------------------- the worker


def worker(cases_path: str, results_path: str) -> None:
    """Run each case, appending ``{"index", "outcome", "detail"}`` lines; a ``start`` line before
    each lets the parent tell which case hung or killed the process."""
    import faulthandler
    import warnings

    faulthandler.enable()  # a crash in native code says where, in the stderr the parent reads
    warnings.simplefilter("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with open(cases_path, "rb") as f:
        first, cases = pickle.load(f)
    _warm_up(cases)
    baseline = _address_space()
    with open(results_path, "a") as out:
        for index, case in enumerate(cases, start=first):
            if _address_space() > baseline + GROWTH_LIMIT:
                return  # the parent starts a fresh worker for the rest: each case gets a fresh process's room
            start = {
                "index": index,
                "start": time.time(),
                "cpu": time.process_time(),
                "queued": _queued_s("self"),
                "wall_s": case.wall_s,
            }
            out.write(json.dumps(start) + "\n")
            out.flush()
            try:
                outcome, detail = run_case(case)
            except MemoryError:
                outcome, detail = "over-memory", "MemoryError"
            except Exception as exc:  # the harness itself, or a bug outside the CLI's guard
                import traceback

                outcome, detail = "traceback", "".join(traceback.format_exception(exc))[-600:]
            out.write(json.dumps({"index": index, "outcome": outcome, "detail": detail, "kind": case.kind}) + "\n")
            out.flush()


def _warm_up(cases: list[Case]) -> None:
    """Import what the cases run and make the seed files they use, then freeze the heap.

    Frozen, the objects of Keras, JAX and the seeds are left out of every garbage collection:
    the full collection each case's fresh Keras session makes would otherwise scan them all
    (about 0.2 s a case, most of a refusal's time)."""
    import gc

    import caffe2keras.cli  # noqa: F401

    if any(case.wall_s is None for case in cases):  # a network case only downloads: no Keras
        import keras

        keras.ops.convert_to_numpy(keras.ops.ones(1))  # starts the backend (XLA's client, its threads)
    from tools.fuzzing.commands import Seed, seed_bytes

    for case in cases:
        for data in case.files.values():
            if isinstance(data, Seed):
                seed_bytes(data.name)
    gc.collect()
    gc.freeze()


def _address_space() -> int:
    """This process's address space (VmSize) in bytes: what ``RLIMIT_AS`` bounds."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------------------------------- the parent


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@dataclass
class Report:
    outcomes: Counter
    failures: list[dict]
    seconds: float
    by_family: Counter = field(default_factory=Counter)  # (family, outcome) -> count
    workers: int = 0  # processes started: one per batch, and one more each time a worker made way

    @property
    def tried(self) -> int:
        return sum(self.outcomes.values())


def run(
    cases: list[Case],
    batch: int = 200,
    timeout_s: float = CASE_TIMEOUT_S,
    nice: int = 0,
    log=None,
    run_cache: Path | None = None,
) -> Report:
    """Run ``cases`` in worker processes of ``batch`` cases each, under the memory bound; the
    workers share ``run_cache`` (by default, a folder of this call's): the seed files, and JAX's
    compilation cache, as a net run at a size it has been run at compiles to the same program."""
    outcomes: Counter = Counter()
    by_family: Counter = Counter()
    failures: list[dict] = []
    workers = 0
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="c2k-fuzz-run-") as name:
        folder = Path(name)
        if run_cache is None:
            run_cache = folder / "cache"
            run_cache.mkdir()
        position = 0
        while position < len(cases):
            chunk = cases[position : position + batch]
            cases_path, results_path = folder / "cases.pkl", folder / "results.jsonl"
            with open(cases_path, "wb") as f:
                pickle.dump((position, chunk), f)
            results_path.write_text("")
            done = _run_worker(cases_path, results_path, timeout_s, nice, run_cache)
            workers += 1
            finished = {r["index"]: r for r in done if "outcome" in r}
            starts = [r for r in done if "start" in r]
            for index in range(position, position + len(chunk)):
                if index in finished:
                    record = finished[index]
                elif starts and starts[-1]["index"] == index:
                    fate, detail = starts[-1].get("fate", "crash"), starts[-1].get("stderr", "")
                    record = {"index": index, "outcome": fate, "detail": detail, "kind": ""}
                else:
                    break
                record["kind"] = record.get("kind") or cases[index].kind
                outcomes[record["outcome"]] += 1
                by_family[family_of(cases[index].kind), record["outcome"]] += 1
                if record["outcome"] in BUGS:
                    failures.append(record)
                position = index + 1
            if log is not None:
                log(position, outcomes, time.time() - started)
    return Report(outcomes, failures, time.time() - started, by_family, workers)


def _run_worker(cases_path: Path, results_path: Path, timeout_s: float, nice: int, run_cache: Path) -> list[dict]:
    command = [sys.executable, "-m", "tools.fuzzing", str(cases_path), str(results_path)]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    stderr_path = results_path.with_suffix(".stderr")
    with open(stderr_path, "wb") as stderr_file:  # a file, not a pipe: a full pipe would stall the worker
        process = subprocess.Popen(
            command,
            cwd=REPO,
            preexec_fn=_limit_memory,
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            env={
                "KERAS_BACKEND": "jax",
                **os.environ,
                "JAX_PLATFORMS": "cpu",
                # glibc gives each thread a malloc arena of 64 MiB of address space; under RLIMIT_AS
                # XLA's thread pools would count for gigabytes they never touch.
                "MALLOC_ARENA_MAX": "2",
                "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]),
                SEEDS_ENV: str(run_cache / "seeds"),
                "JAX_COMPILATION_CACHE_DIR": str(run_cache / "jax"),
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
            },
        )
        while process.poll() is None:
            time.sleep(0.2)
            records = _records(results_path)
            if records and "start" in records[-1] and _over_time(process.pid, records[-1], timeout_s):
                process.kill()
                process.wait()
                records[-1]["fate"] = "hang"
                return records
    stderr = stderr_path.read_text(errors="replace")
    records = _records(results_path)
    if records and "start" in records[-1]:
        records[-1]["fate"] = "over-memory" if "MemoryError" in stderr or "bad_alloc" in stderr else "crash"
        records[-1]["stderr"] = stderr.strip()[-400:]  # what the dying worker said
    return records


def _over_time(pid: int, started: dict, timeout_s: float) -> bool:
    """Whether the case has used ``timeout_s`` of CPU time, or ten times that of wall time (or
    the case's own wall-clock limit). A loaded machine stretches wall time, not CPU time: the time
    the worker spent ready to run but waiting for a CPU is not counted, while waiting on a server,
    a pipe or a lock is."""
    wall = time.time() - started["start"] - (_queued_s(pid) - started.get("queued", 0.0))
    wall_limit = started.get("wall_s") or 10 * timeout_s
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError):
        cpu = wall
    return cpu - started["cpu"] > timeout_s or wall > wall_limit


def _queued_s(pid) -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU (schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def _records(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]

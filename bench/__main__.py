"""``python -m bench [--quick] [--only NAME …]`` (``make bench``, ``make bench QUICK=1``).

Runs every benchmark, then prints one table (each figure, its baseline from the same run and
the ratio) and one JSON line per figure. ``--quick`` (under 3 minutes on the 2-core dev
machine) runs smaller sizes and fewer requests. Benchmarks that print their own report
(``bench.imports``, ``bench.search``) run first, as their own processes; ``bench.imports`` only
when it is present.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
import traceback
from collections.abc import Callable

from bench import oneroster, scim, signin, workers
from bench.figures import Figure, table

FIGURES: dict[str, Callable[..., list[Figure]]] = {
    "scim": scim.main,
    "oneroster": oneroster.main,
    "signin": signin.main,
    "workers": workers.main,
}
# The sizes of a quick run (under 3 minutes on the 2-core dev machine, which took 5 min 6 s
# with each module's own quick sizes: SCIM 174 s of it). Full runs use each module's defaults.
QUICK_ARGUMENTS: dict[str, list[str]] = {
    "scim": ["--sizes", "1000", "--requests", "60"],
    "oneroster": ["--users", "2000", "--repeats", "3"],
    "signin": ["--codes", "80"],
    "workers": ["--users", "500", "--requests", "120", "--rounds", "1", "--warmup", "16"],
}
# Benchmarks with a report of their own: module -> (quick arguments, full arguments).
REPORTS = {
    "bench.imports": (["--users", "500"], []),
    "bench.search": (["--users", "2000"], []),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append", help="run only these benchmarks")
    args = parser.parse_args(argv)
    chosen = set(args.only or [*FIGURES, *(m.split(".")[1] for m in REPORTS)])
    began = time.perf_counter()
    for module, (quick_args, full_args) in REPORTS.items():
        if module.split(".")[1] not in chosen or importlib.util.find_spec(module) is None:
            continue
        print(f"== {module}", flush=True)
        command = [sys.executable, "-m", module, *(quick_args if args.quick else full_args)]
        started = time.perf_counter()
        subprocess.run(command, check=True)
        print(f"   {time.perf_counter() - started:.0f} s", flush=True)
    found: list[Figure] = []
    failed = []
    for name, run in FIGURES.items():
        if name not in chosen:
            continue
        print(f"== bench.{name}", flush=True)
        started = time.perf_counter()
        try:
            figures = run(QUICK_ARGUMENTS[name] if args.quick else [], quick=args.quick)
        except Exception:  # one broken benchmark must not cost the figures of the others
            traceback.print_exc()
            failed.append(name)
            continue
        for figure in figures:
            print(figure.json_line(), flush=True)
        found += figures
        print(f"   {time.perf_counter() - started:.0f} s", flush=True)
    print()
    print(f"(all benchmarks: {time.perf_counter() - began:.0f} s)")
    print(table(found))
    for figure in found:
        print(figure.json_line())
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

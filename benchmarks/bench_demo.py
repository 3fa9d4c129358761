"""Per-stage wall time and the total of a forced `dvc repro` of the demo.

    python benchmarks/bench_demo.py                      # runs `dvc repro -f` here, prints the table
    python benchmarks/bench_demo.py --save repro.tsv     # ... and keeps the time-stamped output
    python benchmarks/bench_demo.py --log repro.tsv      # the table of an earlier --save, nothing is run

DVC prints "Running stage 'name':" when a stage starts; every output line is stamped with the seconds since
the start, and a stage lasts until the next one starts (the last one until `dvc repro` exits). A saved log
is tab-separated: seconds, line; its last line is "<seconds>\\t<exit>" with the exit status.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

STAGE = re.compile(r"Running stage '([^']+)'")
EXIT = "<exit>"


def run_repro(command: list[str], cwd: Path) -> list[tuple[float, str]]:
    """Run ``command``, echo its output, return (seconds since start, line) and a final (seconds, <exit> rc)."""
    start = time.monotonic()
    stamped: list[tuple[float, str]] = []
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:  # universal newlines: tqdm's carriage returns end a line too
        stamped.append((time.monotonic() - start, line.rstrip("\n")))
        sys.stderr.write(line)
    rc = proc.wait()
    stamped.append((time.monotonic() - start, f"{EXIT} {rc}"))
    return stamped


def read_log(path: Path) -> list[tuple[float, str]]:
    """A log written by ``--save``; a line without a leading time stamp is an error naming it."""
    stamped = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        head, sep, text = line.partition("\t")
        try:
            stamped.append((float(head), text))
        except ValueError:
            raise SystemExit(f"{path}:{number}: {head[:40]!r} is not a time stamp; pass a log written by "
                             "bench_demo.py --save") from None
    return stamped


def stage_times(stamped: list[tuple[float, str]]) -> tuple[list[tuple[str, float]], float, int | None]:
    """(stage, seconds) in run order, the total seconds and the exit status (None if the log has none)."""
    starts = [(STAGE.search(text).group(1), t) for t, text in stamped if STAGE.search(text)]
    end = stamped[-1][0] if stamped else 0.0
    rc = int(stamped[-1][1].split()[1]) if stamped and stamped[-1][1].startswith(EXIT) else None
    bounds = [t for _, t in starts[1:]] + [end]
    return [(name, stop - t) for (name, t), stop in zip(starts, bounds)], end, rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, help="parse this saved log instead of running dvc repro")
    parser.add_argument("--save", type=Path, help="write the time-stamped output here")
    parser.add_argument("--repo", type=Path, default=Path("."), help="where to run dvc repro (default: here)")
    args = parser.parse_args(argv)
    if args.log is not None:
        if not args.log.is_file():
            print(f"{args.log}: no such log; write one with --save", file=sys.stderr)
            return 2
        stamped = read_log(args.log)
    else:
        stamped = run_repro(["dvc", "repro", "-f"], args.repo)
        if args.save is not None:
            args.save.write_text("".join(f"{t:.3f}\t{text}\n" for t, text in stamped))
    stages, total, rc = stage_times(stamped)
    if not stages:
        print("no \"Running stage\" line: nothing was run (is this a DVC repository?)", file=sys.stderr)
        return 2
    width = max(len(name) for name, _ in stages)
    for name, seconds in stages:
        print(f"{name:<{width}}  {seconds:8.1f} s")
    print(f"{'total':<{width}}  {total:8.1f} s" + ("" if rc in (0, None) else f"  (dvc repro failed: exit {rc})"))
    return 0 if rc in (0, None) else 1


if __name__ == "__main__":
    sys.exit(main())

"""``python -m spex.bench accuracy [--data DIR] [--out DIR]``: print the accuracy table."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from spex.errors import SpexError


def main(argv: list[str] | None = None) -> int:
    """Run a benchmark and print its table; SpexError -> one line, exit 2."""
    parser = argparse.ArgumentParser(prog="python -m spex.bench", description="SPEX benchmarks")
    sub = parser.add_subparsers(dest="bench", required=True)
    acc = sub.add_parser("accuracy", help="engine vs single-index baseline on the labelled scenes")
    acc.add_argument("--data", default=None, help="data folder (default $SPEX_DATA or /work/shared/data)")
    acc.add_argument("--out", default=None, help="write overlay PNGs + replies here for visual checks")
    acc.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from spex.bench.accuracy import format_table, run_accuracy
    try:
        rows = run_accuracy(Path(args.data) if args.data else None, Path(args.out) if args.out else None)
    except SpexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m spex eval``: IoU per class of a SPEX checkpoint vs the spectral engine on held-out scenes.

Reads the held-out scenes from ``--data-root`` (default ``$SPEX_DATA`` or ``../shared/data``);
see :mod:`spex.train.evaluate` for which scenes and why.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a SPEX checkpoint against the spectral engine",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, metavar="DIR", help="checkpoint folder, e.g. assets/spex-small")
    parser.add_argument("--data-root", metavar="DIR", help="shared data folder (default: $SPEX_DATA or ../shared/data)")
    parser.add_argument("--quantization", choices=("none", "8bit", "4bit"), default=None)
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from spex.train.evaluate import evaluate, format_table, rows_to_dicts

    rows = evaluate(args.model, args.data_root, quantization=args.quantization)
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows_to_dicts(rows), indent=1))
    return 0

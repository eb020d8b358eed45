"""``python -m spex train``: train a SPEX model from a SPIE folder (both stages, resumable).

Example::

    python -m spex train --config spex/train/spex_small.json --data /work/spie_data/data --out /tmp/my-spex
"""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a SPEX model on SPIE records",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, metavar="JSON",
                        help="training configuration (see spex/train/spex_small.json)")
    parser.add_argument("--data", required=True, metavar="DIR", help="SPIE folder made by `spex spie build`")
    parser.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder (save_pretrained)")
    parser.add_argument("--work", metavar="DIR", help="training state folder (default: DATA/_train_state)")
    parser.add_argument("--resume", action="store_true", help="continue from the last saved training state")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from spex.train.config import TrainConfig
    from spex.train.pipeline import train

    cfg = TrainConfig.load(args.config)
    summary = train(cfg, args.data, args.out, work_dir=args.work, resume=args.resume)
    summary.pop("config", None)
    print(json.dumps(summary, indent=1))
    return 0

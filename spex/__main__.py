"""``python -m spex``: the command line."""
from spex.cli import main

raise SystemExit(main())

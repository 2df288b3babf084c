"""``python -m coursekit.progress``: runs the command line, :func:`coursekit.progress.cli.main`."""

import sys

from coursekit.progress.cli import main

if __name__ == "__main__":
    sys.exit(main())

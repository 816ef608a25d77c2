"""Progress messages of the stages, on stderr (stdout stays free for a command's output)."""

import sys


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

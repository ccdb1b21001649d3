"""The one way `wiltonctl` makes a rich Console.

Rich falls back to 80 columns when stdout is not a terminal (a pipe, a log file, CI), which
folds every table cell into ellipses. Piped output is read later, by tools or in wide viewers,
so it gets a wide fixed width instead; $COLUMNS still wins, and a real terminal keeps its own size.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["PIPE_WIDTH", "make_console"]

PIPE_WIDTH = 200


def make_console(**kwargs: Any) -> Console:
    from rich.console import Console

    if "width" not in kwargs and not os.environ.get("COLUMNS"):
        stream = kwargs.get("file") or (sys.stderr if kwargs.get("stderr") else sys.stdout)
        isatty = getattr(stream, "isatty", None)
        if not (isatty and isatty()):
            kwargs["width"] = PIPE_WIDTH
    return Console(**kwargs)

"""A one-line progress bar on stderr for long calls (quantization), shown when stderr is a terminal or on request."""
from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, label: str, enabled: bool | None = None, width: int = 30):
        self.label, self.width = label, width
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self.start = time.monotonic()
        self.last = -1.0

    def __call__(self, fraction: float, detail: str = "") -> None:
        if not self.enabled or (fraction - self.last < 0.005 and fraction < 1.0):
            return
        self.last = fraction
        filled = int(round(self.width * min(max(fraction, 0.0), 1.0)))
        elapsed = time.monotonic() - self.start
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {100 * fraction:5.1f}% "
                         f"{elapsed:6.1f}s {detail[:40]:<40}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.last >= 0:
            sys.stderr.write("\n")
            sys.stderr.flush()

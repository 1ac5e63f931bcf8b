"""Progress of one image job, reported as a percentage after each step."""

from __future__ import annotations

from collections.abc import Callable

# Called with the percentage done (0-100) and a short message for the user.
ProgressCallback = Callable[[int, str], None]


class Progress:
    """Turns "one more step done" into a percentage that reaches 100 on the last step."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.total = max(1, total)
        self.done = 0

    def step(self, message: str) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(min(100, round(100 * self.done / self.total)), message)

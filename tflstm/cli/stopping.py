"""Stopping a stream cleanly on Ctrl-C (SIGINT) or SIGTERM.

While the command waits for the next input row, a signal stops it at once;
while a row is being stepped and written, the signal waits until that row is
done. So every row read is either fully processed or not at all, and the state
saved afterwards matches the outputs written.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(Exception):
    """A stop signal arrived; `exit_code` is 128 + the signal number, as shells report it."""

    def __init__(self, signum: int) -> None:
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {self.name}")


class StopSignals:
    """Context manager: SIGINT and SIGTERM raise `Stopped` at a row boundary.

    Use `rows(iterator)` for the input and `check()` after each processed row.
    """

    def __init__(self) -> None:
        self._waiting = False
        self._pending: Stopped | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        stop = Stopped(signum)
        if self._waiting:
            raise stop
        self._pending = stop

    def check(self) -> None:
        """Raises `Stopped` if a signal arrived while a row was processed."""
        if self._pending is not None:
            raise self._pending

    def rows(self, iterator: Iterator[T]) -> Iterator[T]:
        """Yields from `iterator`; a signal while waiting for the next item raises `Stopped`."""
        while True:
            self._waiting = True
            try:
                self.check()
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self._waiting = False
            yield item

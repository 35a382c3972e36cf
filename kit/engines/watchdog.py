"""What every engine's run needs around the process it starts: a timeout that kills it, and a
register of what is running so that ``cancel`` can stop it all."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Watchdog:
    """Calls ``kill`` once ``seconds`` pass inside the block; ``fired`` says whether it did."""

    def __init__(self, seconds: float, kill: Callable[[], None]) -> None:
        self._event = threading.Event()

        def on_timeout() -> None:
            self._event.set()
            kill()

        self._timer = threading.Timer(seconds, on_timeout)
        self._timer.daemon = True

    @property
    def fired(self) -> bool:
        return self._event.is_set()

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


class Running(Generic[T]):
    """What an engine has running, by key, safe to read from the thread that cancels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, T] = {}

    @contextlib.contextmanager
    def tracked(self, key: str, item: T) -> Iterator[T]:
        with self._lock:
            self._items[key] = item
        try:
            yield item
        finally:
            with self._lock:
                self._items.pop(key, None)

    def add(self, key: str, item: T) -> None:
        with self._lock:
            self._items[key] = item

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def snapshot(self) -> list[T]:
        with self._lock:
            return list(self._items.values())

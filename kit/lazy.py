"""Heavy libraries imported where they are first used, not when kit starts: `kit --help` and
shell completion (which runs kit on every TAB) never load the Docker SDK or requests."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _Deferred(ModuleType):
    """Stands for a module until an attribute of it is read; then imports the real one through
    the import system (thread-safe, one module object for everyone) and hands its attribute
    over. Unlike importlib's LazyLoader it never executes a module itself, so two threads
    reading at once cannot make two copies of it (and of its exception classes)."""

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(importlib.import_module(self.__name__), attribute)
        setattr(self, attribute, value)
        return value


def lazy_module(name: str) -> ModuleType:
    """The module ``name``, imported on the first read of one of its attributes."""
    return _Deferred(name)

"""How ``kit tune`` searches, as the CLI offers it (a small module: `kit --help` lists the
strategies without loading the schedules)."""

from enum import StrEnum


class Strategy(StrEnum):
    race = "race"
    grid = "grid"
    model = "model"

"""The formats kit prints in, as the CLI offers them (a small module: `kit --help` lists them
without loading the renderers)."""

from enum import StrEnum


class Format(StrEnum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


class ReportFormat(StrEnum):
    """A report's formats: the table's, and one HTML file with plots."""

    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"
    html = "html"


class PlanFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"

"""Raw export ingestion: CSV files -> DuckDB schemas ``ingest`` and ``audit``."""

from .loader import FileSummary, load_export
from .reader import ExportFileError
from .spec import EXPORT_FILES

__all__ = ["EXPORT_FILES", "ExportFileError", "FileSummary", "load_export"]

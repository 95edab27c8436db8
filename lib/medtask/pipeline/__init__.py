"""The pipeline: chapters' results and provenance, profiles, papermill execution, caching, the book.

Notebooks use :class:`Chapter` (cheap to import); the command line uses
:mod:`medtask.pipeline.runner` and :mod:`medtask.pipeline.book` (which import papermill lazily).
"""

from medtask.pipeline.results import Chapter, read_provenance, read_table

__all__ = ["Chapter", "read_provenance", "read_table"]

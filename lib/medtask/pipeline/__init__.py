"""The pipeline: chapters' results and provenance, profiles, papermill execution, caching, the book.

Notebooks use :class:`Chapter` (cheap to import: it loads neither papermill nor jupyter-book); the
command line uses :mod:`medtask.pipeline.runner`, :mod:`medtask.pipeline.book` and
:mod:`medtask.pipeline.edition`.
"""

from medtask.pipeline.results import Chapter, read_provenance, read_table

__all__ = ["Chapter", "read_provenance", "read_table"]

"""Reporting shared by every method: published tables (one loader), side-by-side tables, generic figures.

- :mod:`medtask.reporting.published`  the papers' published numbers, from ``shared/papers/published``
  beside the checkout or from a copy embedded in the method's ``report`` module
- :mod:`medtask.reporting.tables`     our columns beside the published ones
- :mod:`medtask.reporting.plots`      figures every chapter can use (overlays, grids, confusion matrices ...)
"""

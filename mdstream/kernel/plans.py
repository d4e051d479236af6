"""How the small plans of a stream step are collected (pure configuration, no I/O)."""

from __future__ import annotations

import polars as pl

# A stream step's plans run on a few thousand rows and are written in the order they should run: Polars'
# optimizer passes (predicate pushdown, common subexpressions, simplification) then cost more than they save.
# Without them the engine folds 50k-row batches of 100 symbols 5-10% faster; the results are the same, as these
# passes only reorder and share work. Type coercion and checks stay on, and so does projection pushdown: without
# it a group_by over sorted windows sums by another path, 3x slower and not the same in the last bit run to run.
SMALL_PLAN = pl.QueryOptFlags.none()
SMALL_PLAN.projection_pushdown = True

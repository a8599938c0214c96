"""Reconciliation: what each device says it produced against what is stored, derived and billed.

``model`` holds the frozen facts and results, ``core`` the pure classification, ``render`` the
table and JSON, ``cli`` the ``tally-collector reconcile`` command; the queries live in
``collector/storage/reconcile_queries.py``.
"""

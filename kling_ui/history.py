"""The ledger's names where they have always been imported from (``from kling_ui.history
import Job, Ledger, ...``). The ledger itself is the package ``ledger``: its schema, its
queries and a row as a value, each in a module of its own. Imports ``ledger`` only.
"""

from __future__ import annotations

from .ledger import (
    ALLOWED,
    AT_VENDOR,
    FINAL,
    SCHEMA_VERSION,
    IllegalTransition,
    Job,
    Ledger,
)

__all__ = [
    "ALLOWED",
    "AT_VENDOR",
    "FINAL",
    "SCHEMA_VERSION",
    "IllegalTransition",
    "Job",
    "Ledger",
]

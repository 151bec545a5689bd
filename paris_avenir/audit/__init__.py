"""Audit: the append-only record of who did what to which youth's data."""

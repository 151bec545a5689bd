"""Outreach: the watch over quiet youths (lutte contre le non-recours)."""

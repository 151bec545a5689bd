"""Statistics for the Observatoire: anonymised aggregates only."""

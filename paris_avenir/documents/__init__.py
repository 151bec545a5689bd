"""Documents: the youth's vault of supporting documents (pièces justificatives)."""

"""Retention: what the platform stops keeping once it is of no use (PRODUCT.md, privacy)."""

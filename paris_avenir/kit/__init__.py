"""Small helpers shared by several domains."""

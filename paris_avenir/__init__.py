"""Jeunes de l'ASE – Paris avenir."""

__version__ = "0.1.0"

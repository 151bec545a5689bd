"""Youths: the young adults who left ASE care, their situation and preferences."""

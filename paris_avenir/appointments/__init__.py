"""Appointments: staff availability and booked appointments."""

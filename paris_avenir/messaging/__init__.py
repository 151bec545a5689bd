"""Messaging: conversations with the référent, and the outbox of outgoing SMS and email."""

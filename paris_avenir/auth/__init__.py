"""Authentication and authorisation (sign-in codes, OIDC, sessions, scope checks)."""

"""A person's rights over their data: what the platform holds about a youth, read in one
place ("Mes données"). It reads every domain, so it sits above them all."""

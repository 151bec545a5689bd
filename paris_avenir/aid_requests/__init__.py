"""Aid requests: the catalogue of aids and each youth's requests with their history."""

"""Development tools (PARIS_AVENIR_ENV=dev only): never registered in prod."""

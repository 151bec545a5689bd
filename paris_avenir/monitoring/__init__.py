"""What the City's operators watch: /metrics for Prometheus."""

"""Running the service: metrics, logs, process management."""

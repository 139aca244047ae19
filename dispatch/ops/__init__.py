"""Running the service: the command, processes, embedded servers, backups, metrics, logs."""

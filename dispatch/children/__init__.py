"""The child file (一人一档) and matching across channels: service, API, console pages."""

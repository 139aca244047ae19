"""Rules of the partner forwards (110 / 12345 / 12355)."""

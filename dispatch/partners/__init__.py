"""The partner loop (110 / 12345 / 12355) as the center works it."""

"""Cases: reading, correcting and driving a case through its workflow."""

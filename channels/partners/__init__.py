"""The partner forwards, in and out: work orders, feedback, signatures."""

"""The hotline and SMS desk for staff: calls, call-backs, blocks, threads."""

"""The service's judgement of a text, for staff, and its corrections."""

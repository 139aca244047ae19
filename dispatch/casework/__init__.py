"""Casework: owners and pairing, the help plan, call wrap-up, concerns raised by area staff."""

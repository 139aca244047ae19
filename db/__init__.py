"""Persistence: settings, engine and sessions, the SQLModel tables, small query helpers.

Imports nothing else of ours, so every other room can depend on it.
"""

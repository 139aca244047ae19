"""The voice channel: the call flow, call records, voicemail audio."""

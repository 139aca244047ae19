"""Rules of the Twilio channels: hours, keywords, threads, call-backs."""

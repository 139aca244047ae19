"""The SMS channel: inbound, staff replies, opt-outs, staff notifications."""

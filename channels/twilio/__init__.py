"""What every Twilio webhook shares, and the fallback URLs."""

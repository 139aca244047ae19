"""Referrals: routing a case to offices, the liaisons' queue, deadlines."""

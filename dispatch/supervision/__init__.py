"""Supervision (督导考核): the department scorecard, 督查 orders by hand, 重点个案 and their
meetings, 个案督导 notes, and the periodic reports districts send up to the city.

`service.py` holds the operations the JSON API (`api.py`), the console pages (`pages.py`)
and the scheduler's sweep call; `scorecard.py` and `reports.py` count the figures.
"""

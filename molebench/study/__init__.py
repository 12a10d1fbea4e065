"""Local human preference study: pair two runs' images, collect blind votes in the browser, report win rates.

    pairing.py   choose the pairs from two run folders (same prompt and seed), counterbalance left/right
    db.py        the study database (SQLite, WAL): metadata, runs, pairs, raters, votes
    app.py       the FastAPI web app raters use; static/index.html is its single page
    stats.py     win rates with Wilson 95% intervals, inter-rater agreement (`win_rates` is the public entry)
    agreement.py which metric agrees with the raters: pairwise accuracy per question, the human ceiling
"""

from molebench.study.db import CHOICES, QUESTIONS

__all__ = ["CHOICES", "QUESTIONS"]

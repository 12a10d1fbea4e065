"""Local human preference study: pair two or more runs' images, collect blind votes in the browser, report win
rates and, over more than two runs, a Bradley–Terry ranking.

    pairing.py   choose the pairs from two or more run folders (same prompt and seed, run pairs dealt out fairly),
                 counterbalance left/right
    db.py        the study database (SQLite, WAL): metadata, runs, pairs, raters, votes
    app.py       the FastAPI web app raters use; static/index.html is its single page
    tally.py     win rates with Wilson 95% intervals, inter-rater agreement (`win_rates` is the public entry)
    agreement.py which metric agrees with the raters: pairwise accuracy per question, the human ceiling
    ranking.py   Bradley–Terry strengths with bootstrap intervals over one or several studies
"""

from molebench.study.db import CHOICES, QUESTIONS

__all__ = ["CHOICES", "QUESTIONS"]

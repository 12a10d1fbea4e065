"""Reports: run summaries, comparisons, leaderboard, regression gate."""

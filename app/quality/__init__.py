"""Quality statistics: agreement, annotator trust, gold, leaderboards, bias and their plots."""

"""Tests of the pure parts of queue_metrics.py (run by scripts/lint: python3 -m unittest)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import queue_metrics  # noqa: E402

PAGE = """# HELP backup_files Files in the catalog by state.
# TYPE backup_files gauge
backup_files{state="staged"} 12
backup_files{state="transcoding"} 1
backup_files{state="transcoded"} 3
backup_files{state="archiving"} 64
backup_files{state="archived"} 100000
backup_files_total 100080
backup_source_files{source="DVD 12",state="staged"} 12
"""


class QueueMetricsTests(unittest.TestCase):
    def test_parses_only_the_per_state_family(self):
        counts = queue_metrics.parse_files_by_state(PAGE)
        self.assertEqual(counts, {"staged": 12, "transcoding": 1, "transcoded": 3, "archiving": 64, "archived": 100000})

    def test_starts_the_first_task_when_work_waits(self):
        self.assertEqual(queue_metrics.want_more(1, 0, 2000, 3), 1)

    def test_no_task_without_work(self):
        self.assertEqual(queue_metrics.want_more(0, 0, 1, 2), 0)

    def test_more_tasks_only_above_the_target_and_below_the_maximum(self):
        self.assertEqual(queue_metrics.want_more(5000, 2, 2000, 3), 1)
        self.assertEqual(queue_metrics.want_more(3000, 2, 2000, 3), 0)
        self.assertEqual(queue_metrics.want_more(9000, 3, 2000, 3), 0)

    def test_decides_per_role(self):
        counts = queue_metrics.parse_files_by_state(PAGE)
        decisions = queue_metrics.decide(counts, {"transcoder": 0, "archiver": 1}, {"transcoder": (1, 2), "archiver": (2000, 3)})
        self.assertEqual(decisions["transcoder"], {"Backlog": 13, "Running": 0, "WantMore": 1})
        self.assertEqual(decisions["archiver"], {"Backlog": 79, "Running": 1, "WantMore": 0})


if __name__ == "__main__":
    unittest.main()

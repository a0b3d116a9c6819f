"""Figures for bench/family/*: reads numbers from standard input, one a line, prints them summed up.

  stats.py latency SCALE    p50/p95/p99/max in ms of values times SCALE (seconds: 1000), as "p50 p95 p99 max n"
  stats.py median           the median of the values
  stats.py ratio            lines "A B": the median of A/B pair by pair, and its min and max, as "median min max"
"""
import math
import statistics
import sys


def values():
    return [line.split() for line in sys.stdin if line.strip()]


def percentile(sorted_values, q):
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def main():
    mode = sys.argv[1]
    rows = values()
    if not rows:
        sys.exit("no samples")
    if mode == "latency":
        scale = float(sys.argv[2])
        numbers = sorted(float(row[0]) * scale for row in rows)
        print("%.1f %.1f %.1f %.1f %d" % (percentile(numbers, .50), percentile(numbers, .95), percentile(numbers, .99),
                                          numbers[-1], len(numbers)))
    elif mode == "median":
        print("%.3f" % statistics.median(float(row[0]) for row in rows))
    elif mode == "ratio":
        ratios = [float(a) / float(b) for a, b in rows]
        print("%.3f %.3f %.3f" % (statistics.median(ratios), min(ratios), max(ratios)))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()

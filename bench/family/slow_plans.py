"""Reads a PostgreSQL log excerpt written with auto_explain (log_analyze on, text format) and prints, slowest
first, each statement's duration, the start of its query text and its plan's scan and sort lines.

  slow_plans.py LOG_EXCERPT [MOST]
"""
import re
import sys


def main():
    text = open(sys.argv[1], errors="replace").read()
    most = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    found = []
    for match in re.finditer(r"LOG:  duration: ([0-9.]+) ms  plan:\n(.*?)(?=\n\S|\Z)", text, re.S):
        body = match.group(2)
        query = re.search(r"Query Text: (.*?)(?:\n\s*(?:[A-Z][a-z]+ .*\(cost|[A-Z][a-zA-Z ]+\s+\(actual))", body, re.S)
        query_text = " ".join((query.group(1) if query else body).split())[:160]
        nodes = [" ".join(line.split()) for line in body.splitlines()
                 if re.search(r"Scan|Sort |Aggregate|Nested Loop|Hash Join|SubPlan", line) and "actual" in line]
        found.append((float(match.group(1)), query_text, nodes))
    seen = set()
    for duration, query_text, nodes in sorted(found, key=lambda item: -item[0]):
        if query_text in seen:
            continue
        seen.add(query_text)
        print("    %8.1f ms  %s" % (duration, query_text))
        for node in nodes[:6]:
            print("                 %s" % node[:170])
        most -= 1
        if most == 0:
            break
    if not found:
        print("    (no statement over the threshold)")


if __name__ == "__main__":
    main()

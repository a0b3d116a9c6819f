#!/usr/bin/env python3
"""Checks that docs/architecture.md draws the real target graph: its table between the `targets: begin` and
`targets: end` markers must list every target of Package.swift (from `swift package dump-package`), each with
exactly its dependencies on other targets of this package, and nothing else. Also checks that every dependency a
target declares (a target of ours or a product) is imported by at least one of its Swift files, so unused
dependencies leave Package.swift, and that no source file under Sources/ is over 500 lines (the house rule). Exit 1, naming each difference, when they disagree.

Usage: python3 scripts/lib/check_architecture.py [--print-table]
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
MAX_LINES = 500


def package_targets():
    # A scratch path of its own, so this never waits on (or disturbs) a build in .build.
    scratch = pathlib.Path(tempfile.gettempdir()) / "personal-backup-dump-package"
    out = subprocess.run(["swift", "package", "--scratch-path", str(scratch), "dump-package"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    package = json.loads(out)
    names = {t["name"] for t in package["targets"]}
    targets = {}
    for target in package["targets"]:
        deps, declared = set(), set()
        for dep in target.get("dependencies", []):
            for kind in ("byName", "target", "product"):
                if kind in dep:
                    declared.add(dep[kind][0])
                    if dep[kind][0] in names:
                        deps.add(dep[kind][0])
        targets[target["name"]] = (target["type"], deps, declared, target.get("path"))
    return targets


IMPORT = re.compile(r"^\s*(?:@[\w()]+\s+)*(?:public |package |internal )?import\s+"
                    r"(?:(?:struct|class|enum|func|protocol|typealias|var|let)\s+)?(\w+)", re.M)


def unused_dependencies(targets):
    """(target, dependency) pairs declared in Package.swift that no Swift file of the target imports. A product's
    module has the product's name in every package we use."""
    unused = []
    for name, (kind, _, declared, path) in targets.items():
        if kind == "system-target" or not path:
            continue
        imported = set()
        for source in (ROOT / path).rglob("*.swift"):
            imported.update(IMPORT.findall(source.read_text()))
        unused += [(name, dep) for dep in sorted(declared - imported)]
    return unused


def documented_targets():
    text = DOC.read_text()
    match = re.search(r"<!-- targets: begin.*?-->(.*?)<!-- targets: end -->", text, re.S)
    if not match:
        sys.exit(f"{DOC}: no `<!-- targets: begin … -->` … `<!-- targets: end -->` table")
    rows = {}
    for line in match.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[1].startswith("`"):
            continue
        name = cells[1].strip("`")
        deps = set() if cells[2] in ("—", "-", "") else {d.strip() for d in cells[2].split(",")}
        rows[name] = deps
    return rows


def main():
    targets = package_targets()
    if "--print-table" in sys.argv:
        for name, (kind, deps, _, _) in targets.items():
            print(f"| {kind} | `{name}` | {', '.join(sorted(deps)) or '—'} |")
        return 0
    documented = documented_targets()
    problems = []
    for name, dependency in unused_dependencies(targets):
        problems.append(f"{name} declares the dependency {dependency} in Package.swift but no file of it imports it")
    for name, (_, deps, _, _) in targets.items():
        if name not in documented:
            problems.append(f"Package.swift has target {name}, which docs/architecture.md does not list")
        elif documented[name] != deps:
            missing, extra = deps - documented[name], documented[name] - deps
            problems.append(f"{name}: the document's dependencies differ from Package.swift"
                            + (f"; not drawn: {', '.join(sorted(missing))}" if missing else "")
                            + (f"; drawn but absent: {', '.join(sorted(extra))}" if extra else ""))
    for name in documented:
        if name not in targets:
            problems.append(f"docs/architecture.md lists target {name}, which Package.swift does not have")
    for path in sorted((ROOT / "Sources").rglob("*.swift")):
        lines = sum(1 for _ in path.open())
        if lines > MAX_LINES:
            problems.append(f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES}: cut it by concern)")
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"docs/architecture.md lists all {len(targets)} targets with their dependencies; no source file over {MAX_LINES} lines")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

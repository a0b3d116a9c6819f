"""Writes (or with --check, verifies) the variables and outputs tables in infra/README.md from variables.tf and
outputs.tf, between the markers <!-- variables:begin --> and <!-- variables:end -->. Standard library only."""

import os
import re
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- variables:begin -->", "<!-- variables:end -->"


def description(body):
    return re.search(r'description\s*=\s*"((?:[^"\\]|\\.)*)"', body).group(1).replace("|", "\\|")


def tables():
    lines = ["| variable | meaning | default |", "|---|---|---|"]
    with open(os.path.join(HERE, "variables.tf")) as f:
        for name, body in re.findall(r'variable "([^"]+)" \{(.*?)\n\}', f.read(), re.S):
            default = re.search(r"\n  default\s*=\s*(.+)", body)
            value = f"`{default.group(1).strip()}`" if default else "*(required)*"
            if re.search(r"\n  sensitive\s*=\s*true", body):
                value += " (sensitive)"
            lines.append(f"| `{name}` | {description(body)} | {value} |")
    lines += ["", "| output | meaning |", "|---|---|"]
    with open(os.path.join(HERE, "outputs.tf")) as f:
        for name, body in re.findall(r'output "([^"]+)" \{(.*?)\n\}', f.read(), re.S):
            lines.append(f"| `{name}` | {description(body)} |")
    return "\n".join(lines)


def main():
    path = os.path.join(HERE, "README.md")
    with open(path) as f:
        text = f.read()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    wanted = text[:start] + "\n" + tables() + "\n" + text[stop:]
    if "--check" in sys.argv:
        if wanted != text:
            print("infra/README.md does not match variables.tf/outputs.tf: run python3 infra/tools/variables_table.py")
            return 1
        return 0
    with open(path, "w") as f:
        f.write(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every relative link of the repository's Markdown files leads to a file of the repository (and,
with a #fragment, to a heading of that file): a clone alone has every document they link to.
Run by tests/run-all.sh; alone: python3 tests/links.py."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                        capture_output=True, text=True, check=True).stdout.split()
files = {f for f in listed if (ROOT / f).exists()}
dirs = {p.as_posix() for f in files for p in Path(f).parents}


def prose(path):  # the text outside code blocks and code spans
    text = re.sub(r"^```.*?^```", "", (ROOT / path).read_text(), flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path):  # GitHub's heading ids
    text = re.sub(r"^```.*?^```", "", (ROOT / path).read_text(), flags=re.S | re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


errors = []
for md in sorted(f for f in files if f.endswith(".md")):
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(md)):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, frag = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
        if resolved not in files and resolved not in dirs:
            errors.append(f"{md}: ({target}): no such file in the repository")
        elif frag and resolved.endswith(".md") and frag not in anchors(resolved):
            errors.append(f"{md}: ({target}): no such heading in {resolved}")
print("\n".join(errors) or f"links: {len([f for f in files if f.endswith('.md')])} files checked",
      file=sys.stderr if errors else sys.stdout)
sys.exit(1 if errors else 0)

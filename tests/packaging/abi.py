#!/usr/bin/env python3
"""The C ABI against its committed baseline (abi/credvault.abi), and one version everywhere.

    python3 tests/packaging/abi.py [--lib target/release/libcredvault.so] [--header include/credvault.h]
    python3 tests/packaging/abi.py --update      # rewrite the baseline from the build

The ABI is described one item a line: every symbol the shared library exports (`nm -D`), every
function prototype of the header, every enum constant with its value, every struct with its
fields in order. `vault_status` and `int32_t` are one type in prototypes (see same_type). A
baseline line missing from the build (a removed symbol, a changed signature,
a renumbered status, a changed struct) fails the check unless the major version moved since the
baseline was made (the SONAME, libcredvault.so.MAJOR, moves with it). New lines pass: additions
are compatible (refresh the baseline when releasing).

Versions: Cargo.toml's is the one version: the header's macros, the SONAME's major, the Python
package (its version is read from Cargo.toml at build time: none may be written by hand), the Go
module's README and a CHANGELOG.md section must all agree with it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "abi" / "credvault.abi"
UPDATE = "python3 tests/packaging/abi.py --update"


def crate_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    package = re.search(r"^\[package\]\s*$(.*?)(?=^\[)", text + "\n[", re.M | re.S)
    assert package, "Cargo.toml has no [package]"
    found = re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), re.M)
    assert found, "Cargo.toml's [package] has no version"
    return found.group(1)


def exported_symbols(lib: Path) -> list[str]:
    out = subprocess.run(
        ["nm", "-D", "--defined-only", str(lib)], check=True, capture_output=True, text=True
    ).stdout
    names = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TtWDdBbRrVv" and not parts[2].startswith("_"):
            names.append(parts[2].split("@")[0])
    return sorted(set(names))


def header_items(header: Path) -> list[str]:
    text = header.read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    text = re.sub(r'extern\s+"C"\s*\{', " ", text)
    text = re.sub(r":\s*int32_t\s*\{", "{", text)  # the C23/C++ underlying type of the enum
    items = []
    for m in re.finditer(r"enum\s+(\w+)\s*\{(.*?)\}", text, re.S):
        for const in m.group(2).split(","):
            const = " ".join(const.split())
            if const:
                items.append(f"enum {m.group(1)} {const}")
    for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}", text, re.S):
        fields = " ".join(m.group(2).split())
        items.append(f"struct {m.group(1)} {{ {fields} }}")
    flat = re.sub(r"(typedef\s+)?(enum|struct)\s+\w+\s*\{.*?\}[^;]*;", " ", text, flags=re.S)
    for decl in flat.split(";"):
        decl = " ".join(decl.replace("}", " ").split())
        if "(" in decl and not decl.startswith("typedef"):
            decl = re.sub(r"\s*\(\s*", "(", decl)
            decl = re.sub(r"\s*\)", ")", re.sub(r"\s*,\s*", ", ", decl))
            decl = re.sub(r"\s*\*\s*", " *", decl).replace("* *", "**").replace(" *)", "*)").replace("( *", "(*")
            items.append(f"function {decl}")
    return items


def same_type(item: str) -> str:
    """An item as the ABI sees it: in C, `vault_status` is `typedef int32_t vault_status` (C23
    and C++ give the enum `int32_t` as its underlying type), so a prototype that returns or takes
    one is the same as with `int32_t` (vault_provider_free, vault_invalidate and
    vault_set_refresh_* returned `int32_t` before they returned `vault_status`)."""
    if not item.startswith("function "):
        return item
    return re.sub(r"\bvault_status\b", "int32_t", item)


def describe(lib: Path, header: Path) -> list[str]:
    return [f"symbol {s}" for s in exported_symbols(lib)] + header_items(header)


def check_versions(version: str, lib: Path) -> list[str]:
    major = version.split(".")[0]
    errors = []
    soname = subprocess.run(["readelf", "-d", str(lib)], check=True, capture_output=True, text=True).stdout
    if f"[libcredvault.so.{major}]" not in soname:
        errors.append(f"{lib} has no SONAME libcredvault.so.{major}")
    h = (ROOT / "include" / "credvault.h").read_text()
    for part, want in zip(("MAJOR", "MINOR", "PATCH"), version.split(".")):
        if not re.search(rf"^#define CREDVAULT_VERSION_{part} {want}$", h, re.M):
            errors.append(f"include/credvault.h: CREDVAULT_VERSION_{part} is not {want}")
    py = ROOT / "bindings" / "python"
    if re.search(r"^version\s*=", (py / "pyproject.toml").read_text(), re.M):
        errors.append("bindings/python/pyproject.toml writes a version: it must be dynamic (Cargo.toml's)")
    if re.search(r'^__version__\s*=\s*"', (py / "src/credvault/__init__.py").read_text(), re.M):
        errors.append("credvault.__version__ is written by hand: it must come from the package metadata")
    if f"v{version}" not in (ROOT / "bindings" / "go" / "README.md").read_text():
        errors.append(f"bindings/go/README.md does not name v{version}")
    changelog = ROOT / "CHANGELOG.md"
    if not changelog.is_file() or not re.search(
        rf"^## \[?{re.escape(version)}\]?", changelog.read_text(), re.M
    ):
        errors.append(f"CHANGELOG.md has no section for {version}")
    return errors


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", type=Path, default=ROOT / "target" / "release" / "libcredvault.so")
    ap.add_argument("--header", type=Path, default=ROOT / "include" / "credvault.h")
    ap.add_argument("--update", action="store_true")
    args = ap.parse_args()
    version = crate_version()
    current = describe(args.lib, args.header)
    if args.update:
        BASELINE.parent.mkdir(exist_ok=True)
        BASELINE.write_text(
            f"# credvault C ABI baseline, version {version}: written by `{UPDATE}`.\n"
            "# A line missing from the build fails the test command unless the major version moved.\n"
            + "".join(f"{l}\n" for l in current)
        )
        print(f"wrote {BASELINE.relative_to(ROOT)} ({len(current)} items, version {version})")
        return 0
    errors = check_versions(version, args.lib)
    lines = BASELINE.read_text().splitlines()
    base_version = re.search(r"version (\d+)\.", lines[0])
    assert base_version, f"{BASELINE}: first line names no version"
    base = [l for l in lines if l and not l.startswith("#")]
    have = {same_type(l) for l in current}
    had = {same_type(l) for l in base}
    removed = [l for l in base if same_type(l) not in have]
    added = [l for l in current if same_type(l) not in had]
    for l in added:
        print(f"abi: new (compatible): {l}")
    if removed:
        if version.split(".")[0] != base_version.group(1):
            print(f"abi: major version {base_version.group(1)} -> {version.split('.')[0]}: "
                  f"{len(removed)} baseline items gone, allowed; refresh with `{UPDATE}`")
        else:
            for l in removed:
                errors.append(f"ABI break without a major version change: gone or changed: {l}")
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        if removed:
            print(f"(the baseline is {BASELINE.relative_to(ROOT)}; a deliberate break moves the "
                  f"major version in Cargo.toml, then `{UPDATE}`)", file=sys.stderr)
        return 1
    print(f"abi: {len(base)} baseline items present in the build; versions agree ({version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

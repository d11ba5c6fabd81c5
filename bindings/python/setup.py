"""Build hook: compiles the credvault Rust library with cargo and bundles libcredvault.so.

Why a hook and not setuptools-rust (``binding = "NoBinding"``) or maturin: the Python package
lives in ``bindings/python`` while the crate is the repository root, and the library it bundles
must be the very ``cargo build --release --lib`` artefact the rest of the project builds and
tests (same profile, same features, same ``target/release``): the hook runs exactly that
command, so in CI the build is already done and costs nothing, and nothing else in the
repository has to change. setuptools-rust would rebuild the crate with its own arguments
(``cargo rustc``, its own strip flags) and maturin wants to own the crate's layout. The wheel
is then ordinary: the library is data inside the package, loaded with ctypes, so the wheel is
tagged ``py3-none-<platform>`` (any CPython 3, this platform).

The bundled copy is stripped of debug information (``strip --strip-debug``; ``objcopy`` if
``strip`` is missing): symbols stay, so backtraces still name functions.

Where the crate is: ``$CREDVAULT_SOURCE_DIR`` if set, else ``rust/`` beside this file (in a
source distribution), else two directories up from this file (the repository checkout). The
sdist carries the crate: ``rust/`` is the library crate exactly as ``cargo package -p credvault``
publishes it (Cargo.toml, Cargo.lock, build.rs, cbindgen.toml, src/, include/, the licence), so
it builds wherever Rust is installed, with crates from the registry and nothing else.
``$CREDVAULT_PREBUILT_LIB`` bundles an already built library instead of running cargo.

A wheel a package index accepts: ``CREDVAULT_MANYLINUX=2.28`` (a glibc version) links the
library for that glibc with cargo-zigbuild's ``zig cc`` (``pip install cargo-zigbuild ziglang``,
on the PATH) and tags the wheel ``manylinux_2_28_<arch>``; ``auditwheel show`` confirms it
(tests/packaging/run.sh). Only the link depends on the glibc: the crate is compiled as usual
(``cargo rustc --crate-type cdylib -- -C linker=<zig cc for 2.28>``) in a target directory of its
own, ``<target>/manylinux_2_28_<arch>``, seeded with hard links to the release build's compiled
dependencies. Without it the wheel needs this machine's glibc and is tagged ``linux_<arch>``
(installable here, refused by an index); the build says which tag it produced.

The version is the crate's (Cargo.toml's ``[package] version``): one version for the crate, the
C library's SONAME and this package (``credvault.__version__`` reads the installed metadata).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
LIB = "libcredvault.so"
# In an sdist: the crate, as `cargo package` makes it (see the module docstring).
SDIST_CRATE = "rust"


def _crate_dir() -> Path:
    env = os.environ.get("CREDVAULT_SOURCE_DIR")
    candidates = [Path(env)] if env else [HERE / SDIST_CRATE, HERE.parent.parent]
    for c in candidates:
        if (c / "Cargo.toml").is_file() and (c / "src" / "ffi.rs").is_file():
            return c
    raise SystemExit(
        "credvault: the Rust crate was not found at "
        + ", ".join(str(c) for c in candidates)
        + ". Build from the repository checkout or from the sdist (it carries the crate in "
        f"{SDIST_CRATE}/), set CREDVAULT_SOURCE_DIR to a checkout, or set "
        "CREDVAULT_PREBUILT_LIB to a built libcredvault.so."
    )


def _crate_version() -> str:
    """``[package] version`` of the crate's Cargo.toml (the one version of every package)."""
    text = (_crate_dir() / "Cargo.toml").read_text()
    package = re.search(r"^\[package\]\s*$(.*?)(?=^\[)", text + "\n[", re.M | re.S)
    found = package and re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), re.M)
    if not found:
        raise SystemExit("credvault: no [package] version in the crate's Cargo.toml")
    return found.group(1)


def _glibc_floor() -> tuple[int, int] | None:
    """The glibc of ``$CREDVAULT_MANYLINUX`` (a manylinux wheel), or None (this machine's)."""
    want = os.environ.get("CREDVAULT_MANYLINUX", "").strip()
    if not want:
        return None
    m = re.fullmatch(r"(2)\.(\d+)", want)
    if not m:
        raise SystemExit(f"credvault: CREDVAULT_MANYLINUX={want!r} is not a glibc version like 2.28")
    return int(m.group(1)), int(m.group(2))


def _manylinux_tag(floor: tuple[int, int]) -> str:
    return f"manylinux_{floor[0]}_{floor[1]}_{platform.machine()}"


def _build_manylinux(manifest: str, target: Path, floor: tuple[int, int]) -> Path:
    """Links libcredvault.so for glibc ``floor`` with cargo-zigbuild's zig cc (see the docstring)."""
    zigbuild = shutil.which("cargo-zigbuild")
    if not zigbuild:
        raise SystemExit(
            "credvault: CREDVAULT_MANYLINUX needs cargo-zigbuild and zig on the PATH "
            "(pip install cargo-zigbuild ziglang)"
        )
    env = {**os.environ, "CARGO_TARGET_DIR": ""}
    if not (shutil.which("zig") or "CARGO_ZIGBUILD_ZIG_PATH" in env):
        # zig from the ziglang package installed beside cargo-zigbuild (a build's isolated
        # environment puts a python without it first on the PATH)
        for py in ("python3", "python"):
            if (Path(zigbuild).parent / py).is_file():
                env.setdefault("CARGO_ZIGBUILD_PYTHON_PATH", str(Path(zigbuild).parent / py))
                break
    out = target / _manylinux_tag(floor)
    env["CARGO_TARGET_DIR"] = str(out)
    seed = target / "release"
    if not out.exists():
        (out / "release").mkdir(parents=True)
        try:  # the release build's compiled dependencies, by hard link; credvault's own are not
            for part in ("deps", "build", ".fingerprint"):
                if (seed / part).is_dir():
                    shutil.copytree(
                        seed / part, out / "release" / part, symlinks=True,
                        copy_function=os.link, ignore=shutil.ignore_patterns("*credvault*"),
                    )
        except OSError:  # another file system: build them here
            shutil.rmtree(out / "release")
            (out / "release").mkdir()
    linker = out / "zigcc"
    triple = f"{platform.machine()}-linux-gnu.{floor[0]}.{floor[1]}"
    linker.write_text(f'#!/bin/sh\nexec "{zigbuild}" zig cc -- -target {triple} -g "$@"\n')
    linker.chmod(0o755)
    subprocess.run(
        ["cargo", "rustc", "--release", "--lib", "--crate-type", "cdylib",
         "--manifest-path", manifest, "--", "-C", f"linker={linker}"],
        check=True, env=env,
    )
    return out / "release" / LIB


def _build_library() -> Path:
    prebuilt = os.environ.get("CREDVAULT_PREBUILT_LIB")
    if prebuilt:
        return Path(prebuilt)
    crate = _crate_dir()
    manifest = str(crate / "Cargo.toml")
    # From the sdist: exactly the dependency versions its Cargo.lock names.
    locked = ["--locked"] if crate == HERE / SDIST_CRATE else []
    subprocess.run(
        ["cargo", "build", "--release", "--lib", "--manifest-path", manifest, *locked], check=True
    )
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--manifest-path", manifest],
        check=True,
        capture_output=True,
        text=True,
    )
    target = Path(json.loads(meta.stdout)["target_directory"])
    floor = _glibc_floor()
    if floor:
        return _build_manylinux(manifest, target, floor)
    return target / "release" / LIB


def _strip_debug(path: Path) -> None:
    for tool in (["strip", "--strip-debug"], ["objcopy", "--strip-debug"]):
        if shutil.which(tool[0]):
            subprocess.run(tool + [str(path)], check=True)
            return
    print("credvault: neither strip nor objcopy found; bundling the library unstripped")


class BuildPyWithLibrary(build_py):
    """build_py that also builds the library and copies it, stripped, into the package."""

    def run(self) -> None:
        super().run()
        built = _build_library()
        if not built.is_file():
            raise SystemExit(f"credvault: {built} was not produced by the build")
        dest = Path(self.build_lib) / "credvault" / LIB
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, dest)
        _strip_debug(dest)


class SdistWithCrate(sdist):
    """An sdist that carries the crate (``rust/``), as ``cargo package`` publishes it."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        dest = Path(base_dir, SDIST_CRATE)
        shutil.rmtree(dest, ignore_errors=True)
        crate = _crate_dir()
        if crate == HERE / SDIST_CRATE:  # an sdist made from an sdist
            shutil.copytree(crate, dest)
            return
        manifest = str(crate / "Cargo.toml")
        subprocess.run(
            ["cargo", "package", "-p", "credvault", "--no-verify", "--allow-dirty", "--quiet",
             "--manifest-path", manifest],
            check=True,
        )
        meta = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps", "--manifest-path", manifest],
            check=True, capture_output=True, text=True,
        )
        target = Path(json.loads(meta.stdout)["target_directory"])
        packed = target / "package" / f"credvault-{_crate_version()}.crate"
        dest.mkdir(parents=True)
        with tarfile.open(packed) as tar:
            top = f"credvault-{_crate_version()}/"
            for member in tar.getmembers():
                if not member.name.startswith(top) or ".." in Path(member.name).parts:
                    continue
                if not (member.isfile() or member.isdir()):
                    continue
                member.name = member.name[len(top):]
                if member.name:
                    tar.extract(member, dest)


class PlatformWheel(bdist_wheel):
    """The wheel holds a native library but no Python extension: any CPython 3, this platform."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        floor = _glibc_floor()
        if floor:
            plat = _manylinux_tag(floor)
            why = f"glibc {floor[0]}.{floor[1]} and newer (linked with cargo-zigbuild's zig cc)"
        else:
            why = (
                "this machine's glibc or newer; a package index refuses it: set "
                "CREDVAULT_MANYLINUX=2.28 with cargo-zigbuild and ziglang installed for a "
                "manylinux_2_28 wheel"
            )
        print(f"credvault: wheel tag py3-none-{plat}: {why}")
        return "py3", "none", plat


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


setup(
    cmdclass={
        "build_py": BuildPyWithLibrary,
        "bdist_wheel": PlatformWheel,
        "sdist": SdistWithCrate,
    },
    distclass=BinaryDistribution,
    version=_crate_version(),
)

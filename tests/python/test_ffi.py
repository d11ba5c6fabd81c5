"""The package's shape: one layer, credvault._ffi, loads the library, declares
the prototype of every C function the package calls and maps a failed call to its exception;
every other module goes through it, and none borrows a private helper from another."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import credvault

PACKAGE = Path(credvault.__file__).resolve().parent
MODULES = {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.glob("*.py"))}
# Loading the library and declaring a prototype; reading what a failed call left.
FFI_ONLY = {"CDLL", "PyDLL", "LoadLibrary", "argtypes", "restype", "vault_last_error", "vault_last_oauth_error", "vault_last_status"}


def attributes(tree: ast.AST) -> set[str]:
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def test_the_ffi_layer_is_there():
    assert "_ffi" in MODULES and "_lib" not in MODULES, sorted(MODULES)
    assert FFI_ONLY - {"LoadLibrary"} <= attributes(MODULES["_ffi"])


def test_only_the_ffi_layer_loads_the_library_declares_prototypes_and_reads_errors():
    for name, tree in MODULES.items():
        if name != "_ffi":
            assert not FFI_ONLY & attributes(tree), (name, sorted(FFI_ONLY & attributes(tree)))


def test_every_c_function_called_is_declared_in_the_ffi_layer():
    ffi = importlib.import_module("credvault._ffi")
    # The names of the functions _ffi declares (restype and argtypes set).
    declared = {name for name, _, _ in ffi._PROTOTYPES + ffi._TRY}
    for name, tree in MODULES.items():
        called = {a for a in attributes(tree) if a.startswith("vault_")}
        assert called <= declared, (name, sorted(called - declared))
        named = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("vault_")
        }
        # Strings naming C functions (getattr(lib, "vault_..."), prototype tables) only in _ffi or
        # as declared names.
        assert name == "_ffi" or named <= declared, (name, sorted(named - declared))


def test_no_module_imports_a_private_name_but_from_the_ffi_layer():
    for name, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                for alias in node.names:
                    source = node.module or alias.name  # `from . import _ffi`: the module itself
                    if source != "_ffi":
                        assert not alias.name.startswith("_"), (name, node.module, alias.name)

"""What the package exports: the names of the Python guide (bindings/python/README.md),
exactly, whether taken by `from credvault import *`, from `credvault.__all__` or from the docs;
its exception classes are credvault.errors' own."""

from __future__ import annotations

import builtins
import importlib.util
import re

import credvault
from conftest import REPO
from credvault import errors

# The contract, spelled out once here: what `from credvault import *` gives besides the
# exception classes.
NAMES = set(
    """
    Provider AsyncProvider Status LibraryNotFoundError library_version library_path key_memory_locked
    load_config reload_config provider stats_all metrics_prometheus set_refresh_workers set_refresh_endpoint_limit
    enable_logging
    disable_logging __version__
    """.split()
)
EXCEPTIONS = set(
    """
    CredvaultError InvalidArgument ConfigError InvalidHandle NetworkError Timeout TLSError
    HTTPStatusError CredentialsRejected ScopeRejected RateLimited MalformedResponse
    BufferTooSmall OAuthError DiscoveryFailed InternalError
    """.split()
)


def star(module: str) -> set[str]:
    namespace: dict[str, object] = {}
    exec(f"from {module} import *", namespace)
    return set(namespace) - {"__builtins__"}


def test_the_package_exports_the_contract_and_nothing_else():
    assert len(credvault.__all__) == len(set(credvault.__all__))
    assert set(credvault.__all__) == NAMES | EXCEPTIONS
    assert star("credvault") == NAMES | EXCEPTIONS


def test_the_exception_classes_are_those_of_credvault_errors():
    classes = {n for n in errors.__all__ if isinstance(getattr(errors, n), type)} - {"Status"}
    assert classes == EXCEPTIONS
    for name in classes:
        assert getattr(credvault, name) is getattr(errors, name)
    assert credvault.Status is errors.Status
    assert star("credvault.errors") == EXCEPTIONS | {"Status", "STATUS_NAMES", "error_for_status"}


def test_the_readme_names_what_the_package_exports():
    section = (REPO / "bindings" / "python" / "README.md").read_text()
    # credvault.X in the text (not libcredvault.so, not /etc/.../credvault.json).
    for name in set(re.findall(r"(?<![\w/.])credvault\.([A-Za-z_]\w*)", section)):
        assert name in credvault.__all__ or importlib.util.find_spec(f"credvault.{name}"), name
    # The list of exception classes in the "Errors." paragraph (built-in bases aside).
    paragraph = section.split("**Errors.**", 1)[1].split("```", 1)[0]
    listed = {n for n in re.findall(r"`(\w+)`", paragraph) if n[0].isupper() and not hasattr(builtins, n)}
    assert listed | {"CredvaultError"} == EXCEPTIONS

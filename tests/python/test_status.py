"""credvault.Status, the package's list of the library's status codes, checked against the
library itself (vault_status_name, through ctypes) for every code: the same numbers, the same
names, none missing on either side; and the tables made from it (STATUS_NAMES, the exception
class of each code) agree with it."""

from __future__ import annotations

import enum

import credvault
from credvault import _ffi, errors

UNKNOWN = "VAULT_STATUS_UNKNOWN"
PREFIX = "VAULT_STATUS_"
#: The codes asked about: every code the library has (small numbers: 0 upwards, and 99 for the
#: internal error) and many it has not, negative ones included.
CODES = range(-64, 4096)


def library_name(code: int) -> str:
    name = _ffi.lib.vault_status_name(code)
    assert name is not None, f"vault_status_name({code}) returned NULL"
    return name.decode()


def library_statuses() -> dict[int, str]:
    """Every code the library names (vault_status_name gives VAULT_STATUS_UNKNOWN for the rest)."""
    names = {code: library_name(code) for code in CODES}
    return {code: name for code, name in names.items() if name != UNKNOWN}


def test_the_library_names_an_unknown_code_unknown():
    for code in (-1, -(2**31), 2**31 - 1, max(CODES) + 1):
        assert library_name(code) == UNKNOWN, code
    assert "UNKNOWN" not in credvault.Status.__members__


def test_status_is_an_int_enum_exported_by_the_package():
    assert issubclass(credvault.Status, enum.IntEnum)
    assert credvault.Status is errors.Status
    assert credvault.Status.OK == 0
    assert credvault.Status.CREDENTIALS_REJECTED == 8
    assert credvault.Status(99) is credvault.Status.INTERNAL


def test_every_library_status_is_a_member_with_its_number_and_name():
    statuses = library_statuses()
    assert statuses.get(0) == PREFIX + "OK", "the library names no status 0"
    for code, name in statuses.items():
        assert name.startswith(PREFIX), name
        member = credvault.Status.__members__.get(name[len(PREFIX):])
        assert member is not None, f"the library has {name} = {code}; credvault.Status has no {name[len(PREFIX):]}"
        assert member.value == code, f"credvault.Status.{member.name} = {member.value}; the library has {name} = {code}"


def test_every_member_is_a_library_status():
    for member in credvault.Status:
        assert library_name(member.value) == PREFIX + member.name, (
            f"credvault.Status.{member.name} = {member.value}; "
            f"vault_status_name({member.value}) is {library_name(member.value)}"
        )
    assert len(credvault.Status) == len(library_statuses())


def test_the_tables_made_from_status_agree_with_the_library():
    assert errors.STATUS_NAMES == library_statuses()
    for member in credvault.Status:
        cls = type(errors.error_for_status(member, "m"))
        assert cls is credvault.CredvaultError or cls.STATUS is member, member.name
    # Every error status has its exception class; OK and WOULD_BLOCK are never raised (the
    # non-blocking calls answer WOULD_BLOCK by waiting or by returning None).
    classless = {m for m in credvault.Status if type(errors.error_for_status(m, "m")) is credvault.CredvaultError}
    assert classless == {credvault.Status.OK, credvault.Status.WOULD_BLOCK}, sorted(m.name for m in classless)
    for cls in errors._CLASSES[1:]:
        assert isinstance(cls.STATUS, credvault.Status), cls.__name__
        e = cls("m")
        assert (e.status, e.status_name) == (cls.STATUS, library_name(cls.STATUS)), cls.__name__

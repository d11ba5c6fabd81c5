"""The Provider: one set of credentials at one token endpoint, with its own token cache."""

from __future__ import annotations

import ctypes
import json
import sys
import weakref
from ctypes import byref, c_size_t, c_uint64, c_void_p, create_string_buffer
from typing import Any, Literal, Mapping, Optional, Union, overload

from . import _ffi
from ._ffi import _ERR_LEN, _json_call, _last_error, _raise_from
from .errors import BufferTooSmall, ConfigError, CredvaultError, Status, error_for_status

Config = Union[Mapping[str, Any], str, None]

# Plain ints (the calls return them): compared on every call.
_OK = int(Status.OK)
_BUFFER_TOO_SMALL = int(Status.BUFFER_TOO_SMALL)
_WOULD_BLOCK = int(Status.WOULD_BLOCK)
#: Size of each provider's fast-path buffers. A longer token is still served, through a
#: buffer of its own size on the slower path.
_FAST_CAP = 8192

_lib_ = _ffi.lib
_new = _lib_.vault_provider_new_ex
_free_c = _lib_.vault_provider_free
_get_tok = _lib_.vault_get_token_into
_get_auth = _lib_.vault_get_authorization_into
_inval = _lib_.vault_invalidate
_inval_tok = _lib_.vault_invalidate_token
_by_name = _lib_.vault_provider_by_name_ex
_stats = _lib_.vault_stats_json_ex
_fill_tok: Any
_fill_auth: Any
# The fast path relies on the GIL: it serialises the calls that share a provider's vault_fill
# and buffer (the library requires that no two threads use one vault_fill at once). On a
# free-threaded CPython without the GIL every call takes the blocking path, with buffers of
# its own.
_GIL = not (hasattr(sys, "_is_gil_enabled") and not sys._is_gil_enabled())

if _ffi.HAS_TRY and _GIL:
    _fill_tok = _ffi.fast.vault_try_fill_token
    _fill_auth = _ffi.fast.vault_try_fill_authorization
else:  # pragma: no cover - a library without the non-blocking calls: always the blocking path

    def _would_block(*_: Any) -> int:
        return _WOULD_BLOCK

    _fill_tok = _fill_auth = _would_block

# The six-argument calls, by (token?, wait?), through the declared, GIL-releasing handle: the
# blocking ones serve a call the fast path could not answer; the non-blocking ones are the error
# path of AsyncProvider (only called after the fast call reported an error, so never None). All
# write the message and the OAuth code into an error buffer.
_SIX_ARG_CALLS: dict[tuple[bool, bool], Any] = {
    (True, True): _get_tok,
    (False, True): _get_auth,
    (True, False): getattr(_lib_, "vault_try_get_token_into", None),
    (False, False): getattr(_lib_, "vault_try_get_authorization_into", None),
}

#: What a provider remembers of the value its fast buffer holds: (generation, str). -1: nothing.
_NOTHING = (-1, "")

_memset = ctypes.memset
_CHARP = ctypes.POINTER(ctypes.c_char)
#: Written over a fast-path buffer to wipe it. Through ``buf.raw``, a copy made holding the GIL,
#: as the fast calls (``fast``, a PyDLL) write the buffer holding it: no reader on another
#: thread ever sees half a wipe (``ctypes.memset`` releases the GIL).
_ZEROS = bytes(_FAST_CAP)


def _free(handle: int) -> None:
    # Runs from close(), from the garbage collector or at interpreter exit (weakref.finalize):
    # it must not raise, and needs nothing but the library.
    try:
        _free_c(handle)
    except Exception:  # pragma: no cover - interpreter teardown
        pass


def _detach(handle: int) -> None:
    """The finalizer of a provider of the configuration file: the file owns it, nothing to free."""


def _describe(cfg: Mapping[str, Any]) -> tuple[str, str]:
    endpoint = cfg.get("token_url") or cfg.get("issuer")
    if not endpoint:
        endpoint = f"preset:{cfg['preset']}" if cfg.get("preset") else "?"
    return str(endpoint), str(cfg.get("client_id", "?"))


class Provider:
    """A token source: one client's credentials at one token endpoint, with its own cache.

    ``config`` is the provider's configuration (README "Configuration"): a ``dict``, or JSON
    text; keyword arguments are added to it (and override it)::

        p = credvault.Provider(preset="vgs", client_id="id", client_secret=secret)
        p = credvault.Provider({"token_url": url, "client_id": "id", "client_secret": s})

    The library validates the configuration at once (:class:`~credvault.ConfigError` names the
    field and the rule, never a value) and keeps only sealed copies of the secrets; nothing is
    fetched until the first :meth:`token`. A cached token is served without waiting; a fetch
    releases the GIL, and concurrent callers share one fetch.

    Thread-safe; usable in the child after ``os.fork()``; closed by :meth:`close`, by ``with``,
    by the garbage collector or at interpreter exit, whichever comes first.
    """

    __slots__ = (
        "_h",
        "_tbuf",
        "_abuf",
        "_tfill",
        "_afill",
        "_tptr",
        "_aptr",
        "_tval",
        "_aval",
        "_finalizer",
        "_endpoint",
        "_client_id",
        "_name",
        "__weakref__",
    )

    def __init__(self, config: Config = None, /, **keys: Any) -> None:
        cfg: dict[str, Any] = {}
        text: Optional[str] = None
        bad: Optional[str] = None
        if isinstance(config, str):
            try:
                loaded = json.loads(config)
            except ValueError:
                loaded = None
            if isinstance(loaded, dict):
                cfg = loaded
            elif keys:
                bad = "config is not a JSON object"
            else:
                text = config  # let the library say what is wrong with it
            del loaded  # no name in this frame keeps the parsed secrets (traceback locals)
        elif isinstance(config, Mapping):
            cfg = dict(config)
        elif config is not None:
            bad = f"config must be a dict, JSON text or None, not {type(config).__name__}"
        cfg.update(keys)
        del config, keys
        self._endpoint, self._client_id = _describe(cfg)
        self._name: Optional[str] = None
        self._h = c_uint64(0)
        self._finalizer: Optional[Any] = None
        if bad is None and text is None:
            try:
                text = json.dumps(cfg)
            except (TypeError, ValueError):
                bad = "config values must be JSON types (str, int, float, bool, dict, list)"
        del cfg
        if bad is not None:
            # Raised outside any except block: no chained exception keeps a copy of the input.
            raise ConfigError(bad)
        data = bytearray(text.encode("utf-8", "surrogateescape"))  # type: ignore[union-attr]
        del text
        data.append(0)
        raw = (ctypes.c_char * len(data)).from_buffer(data)
        handle = c_uint64(0)
        err = create_string_buffer(_ERR_LEN)
        status = _new(raw, byref(handle), err, _ERR_LEN)
        del raw
        data[:] = bytes(len(data))  # wipe the JSON we built (the library keeps sealed copies)
        del data
        if status != _OK:
            raise _raise_from(status, err)
        self._attach(handle.value, owned=True)

    def _attach(self, handle: int, owned: bool) -> None:
        """Sets up the provider over the library's ``handle``; ``owned``: freed by close()."""
        self._h = c_uint64(handle)
        # The fast path: one prepared vault_fill (and buffer) per shape, and the str made of
        # the value it holds, reused while the library reports the same token generation.
        self._tbuf = create_string_buffer(_FAST_CAP)
        self._abuf = create_string_buffer(_FAST_CAP)
        self._tfill = _ffi.VaultFill(handle, ctypes.cast(self._tbuf, _CHARP), _FAST_CAP, 0)
        self._afill = _ffi.VaultFill(handle, ctypes.cast(self._abuf, _CHARP), _FAST_CAP, 0)
        self._tptr = _ffi.check_fast_arg(ctypes.pointer(self._tfill))
        self._aptr = _ffi.check_fast_arg(ctypes.pointer(self._afill))
        self._tval = self._aval = _NOTHING
        # A provider of the configuration file belongs to the file (vault_reload_config frees
        # it when it leaves the file): closing this object only detaches it.
        self._finalizer = weakref.finalize(self, _free if owned else _detach, handle)

    @classmethod
    def by_name(cls, name: str) -> "Provider":
        """The provider ``name`` of the configuration file loaded with
        :func:`credvault.load_config` (``vault_provider_by_name``).

        The provider belongs to the file, not to this object: :meth:`close` (or ``with``, or
        the garbage collector) only detaches this object from it, and never frees it, so other
        objects over the same name keep working. After :func:`credvault.reload_config` the
        object serves the provider's new settings (same handle); if the name left the file,
        calls raise :class:`~credvault.InvalidHandle`. Raises
        :class:`~credvault.InvalidArgument` if no provider of that name is loaded.

        ``credvault.provider(name)`` is an alias of this method."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        found = c_uint64(0)
        err = create_string_buffer(_ERR_LEN)
        status = _by_name(name.encode("utf-8", "surrogateescape"), byref(found), err, _ERR_LEN)
        if status != 0:
            raise _raise_from(status, err, "no provider of that name is loaded")
        handle = found.value
        self = cls.__new__(cls)
        self._endpoint, self._client_id = f"config:{name}", "?"
        self._name = name
        self._attach(handle, owned=False)
        self._describe_from_library()
        return self

    def _describe_from_library(self) -> None:
        """For a provider of the configuration file: its endpoint and client id as the library
        holds them now (``vault_stats_json``; a reload may have changed them). Kept as they
        were once the provider is closed or has left the file."""
        if self._name is None or self.closed:
            return
        try:
            stats = self.stats()
        except CredvaultError:
            return
        endpoint, client_id = stats.get("endpoint"), stats.get("client_id")
        if isinstance(endpoint, str) and isinstance(client_id, str):
            self._endpoint, self._client_id = endpoint, client_id

    @property
    def name(self) -> Optional[str]:
        """The provider's name in the configuration file (:meth:`by_name`), else ``None``."""
        return self._name

    # -- statistics ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """This provider's statistics (``vault_stats_json``), parsed: ``provider`` (its name in
        the configuration file, else ``"handle:N"``), ``auth_method``, ``tokens_fetched``,
        ``cache_hits``, ``background_refreshes``, ``background_refresh_failures``, ``retries``,
        ``failures`` (a dict by status name, e.g. ``{"VAULT_STATUS_TIMEOUT": 2}``), ``last_error``
        (``None`` or ``{"status", "message", "at_unix_ms"}``), ``last_fetch_unix_ms``,
        ``token_remaining_s`` and ``cooldown`` (``{"active", "remaining_ms"}``). Never a secret
        or a token. Raises :class:`~credvault.InvalidHandle` once closed."""
        result = _json_call(_stats, self._h.value)
        assert isinstance(result, dict)
        return result

    @classmethod
    def from_preset(
        cls,
        name: str,
        client_id: str,
        client_secret: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        **keys: Any,
    ) -> "Provider":
        """A provider for a known identity provider (``"vipps-test"``, ``"vgs"``,
        ``"vitesse-staging"``, ... see README "Configuration"). ``headers`` are extra request
        headers, held sealed (e.g. Vipps' ``Ocp-Apim-Subscription-Key``); other keyword
        arguments are configuration keys that override the preset (``token_url``, ``scope``...).
        With ``auth_method="private_key_jwt"``, ``private_key`` (and ``key_id``, ``signing_alg``,
        ``audience``) take the place of ``client_secret``, which is then left out."""
        cfg: dict[str, Any] = {"preset": name, "client_id": client_id}
        if client_secret is not None:
            cfg["client_secret"] = client_secret
        if headers is not None:
            cfg["headers"] = dict(headers)
        # Handed over through a list emptied by the call itself, so that no local of this frame
        # still holds the secret if the constructor raises (traceback locals).
        box = [cfg]
        del cfg, client_secret, headers
        return cls(box.pop(), **keys)

    # -- tokens --------------------------------------------------------------------------------

    def token(self) -> str:
        """The access token: from the cache when a valid one is held (no waiting, the GIL kept
        for a fraction of a microsecond), otherwise after the one fetch in flight (the GIL is
        released while it waits). Raises a :class:`~credvault.CredvaultError` subclass."""
        if _fill_tok(self._tptr) == 0:
            held = self._tval
            if self._tfill.generation == held[0]:
                return held[1]
            return self._refill(self._tfill, self._tbuf, True)
        return self._read(True, wait=True)

    def authorization(self) -> str:
        """The ``Authorization`` header value, ``"<token_type> <token>"`` (e.g. ``"Bearer
        ..."``); cached and fetched as :meth:`token`."""
        if _fill_auth(self._aptr) == 0:
            held = self._aval
            if self._afill.generation == held[0]:
                return held[1]
            return self._refill(self._afill, self._abuf, False)
        return self._read(False, wait=True)

    def _now(self, token: bool) -> Optional[str]:
        """What :meth:`token` (``token``) or :meth:`authorization` answers without waiting, for
        :class:`~credvault.AsyncProvider`: the cached value (the same fast call and remembered
        str), the error the library already knows (a cool-down, a closed provider) raised with
        its message by the non-blocking call (the blocking one could start a fetch on the
        caller's thread), or ``None`` when only a fetch can give a value. token() and
        authorization() keep their hit path inline: one more Python call would be a noticeable
        share of the call (docs/BENCHMARKS.md)."""
        if token:
            status = _fill_tok(self._tptr)
            fill, buf, held = self._tfill, self._tbuf, self._tval
        else:
            status = _fill_auth(self._aptr)
            fill, buf, held = self._afill, self._abuf, self._aval
        if status == _OK:
            if fill.generation == held[0]:
                return held[1]
            return self._refill(fill, buf, token)
        if status == _WOULD_BLOCK:
            return None
        return self._read(token, wait=False)

    def _refill(self, fill: Any, buf: Any, token: bool) -> str:
        """The fast call wrote another token into ``buf``: decode it and remember it with its
        generation, in one tuple so that readers always see a pair. If another thread's fast
        call ran between reading the generation and the value, the pair holds a newer value
        under an older generation; that generation is never reported current again
        (generations only grow), so the pair is simply never used."""
        generation = fill.generation
        value = buf.value
        if not value:  # close() or invalidate() wiped the buffer meanwhile
            return self._read(token, wait=True)
        text: str = value.decode()
        if token:
            self._tval = (generation, text)
        else:
            self._aval = (generation, text)
        return text

    def token_into(self, buf: Union[bytearray, memoryview]) -> int:
        """Writes the access token into ``buf`` (a writable ``bytearray`` or ``memoryview``),
        NUL-terminated, and returns its length. No Python ``str`` or ``bytes`` of the token is
        made: wipe ``buf`` when done (``buf[:] = bytes(len(buf))``). Raises
        :class:`~credvault.BufferTooSmall` (with ``needed``) if it does not fit."""
        return self._into(buf, wait=True)

    @overload
    def _into(self, buf: Union[bytearray, memoryview], wait: Literal[True]) -> int: ...

    @overload
    def _into(self, buf: Union[bytearray, memoryview], wait: Literal[False]) -> Optional[int]: ...

    def _into(self, buf: Union[bytearray, memoryview], wait: bool) -> Optional[int]:
        """:meth:`token_into`; ``wait``: the blocking call (``vault_get_token_into``), else the
        non-blocking one (``vault_try_get_token_into``): ``None`` if it would block."""
        view = memoryview(buf)
        if view.readonly or not view.contiguous:
            raise TypeError("token_into needs a writable, contiguous buffer (bytearray, memoryview)")
        size = view.nbytes
        target = (ctypes.c_char * size).from_buffer(view.cast("B")) if size else None
        n = c_size_t(0)
        err = create_string_buffer(_ERR_LEN)
        status = _SIX_ARG_CALLS[True, wait](self._h, target, size, byref(n), err, _ERR_LEN)
        del target, view
        if status == _OK:
            return n.value
        if status == _WOULD_BLOCK and not wait:
            return None
        e = _raise_from(status, err)
        if isinstance(e, BufferTooSmall):
            e.needed = n.value + 1
        raise e

    @overload
    def _read(self, token: bool, wait: Literal[True]) -> str: ...

    @overload
    def _read(self, token: bool, wait: Literal[False]) -> Optional[str]: ...

    def _read(self, token: bool, wait: bool) -> Optional[str]:
        """The token (``token``) or the ``Authorization`` value through a six-argument call with
        an error buffer, into a buffer of its own (grown to the size the library reports if the
        value does not fit).

        ``wait``: the blocking call (``vault_get_*_into``): the library waits, GIL released, for
        the fetch in flight. Otherwise the non-blocking one (``vault_try_get_*_into``): ``None``
        if it would block. Either raises the exception for the call's error, with its message
        and OAuth code (a cool-down's stored error, a closed provider, a failed fetch)."""
        call = _SIX_ARG_CALLS[token, wait]
        size = _FAST_CAP
        while True:
            buf = create_string_buffer(size)
            n = c_size_t(0)
            err = create_string_buffer(_ERR_LEN)
            status = call(self._h, buf, size, byref(n), err, _ERR_LEN)
            if status == _OK:
                value = buf.value.decode()
                _memset(buf, 0, n.value)
                return value
            if status == _WOULD_BLOCK and not wait:
                return None
            if status == _BUFFER_TOO_SMALL and n.value + 1 > size:
                size = n.value + 1
                continue
            del buf
            raise _raise_from(status, err)

    # -- invalidation and lifetime ---------------------------------------------------------------

    def invalidate(self, token: Optional[str] = None) -> None:
        """Drops the cached token after the API rejected it (HTTP 401), so the next call fetches
        a new one (and ends a failure cool-down).

        Pass the exact ``token`` the API rejected (the token itself, or the whole
        ``Authorization`` value): it is dropped only if it is still the cached one, so many
        callers reporting the same 401 cause one new fetch. Without ``token``, the token this
        thread last received from this provider is dropped (see ``vault_invalidate``). Either
        way the provider's fast-path buffers are wiped (the next call writes the cached value
        again)."""
        if token is None:
            status = _inval(self._h)
            if status != _OK:
                raise error_for_status(status, "invalid provider handle (closed)")
            self._wipe_fast()
            return
        if " " in token:
            token = token.split(" ", 1)[1]
        data = token.encode("utf-8", "surrogateescape")
        del token
        err = create_string_buffer(_ERR_LEN)
        status = _inval_tok(self._h, data, err, _ERR_LEN)
        del data
        if status != _OK:
            raise _raise_from(status, err)
        self._wipe_fast()

    def close(self) -> None:
        """Frees the provider and wipes its secrets in the library. Idempotent; later calls on
        this provider raise :class:`~credvault.InvalidHandle`. A provider of the configuration
        file (:meth:`by_name`) is not freed: this object is only detached from it."""
        fin = self._finalizer
        if fin is not None:
            fin()
            # Handle 0 is never a provider: every later call answers INVALID_HANDLE, also for
            # a provider of the configuration file, which close() does not free.
            self._h = c_uint64(0)
            self._tfill.provider = self._afill.provider = 0
            self._wipe_fast()

    def _wipe_fast(self) -> None:
        """Wipes the fast path's buffers and forgets what they held (after an invalidation, at
        close): the generations first, so that the next fast call writes the value again
        rather than report as still there the one wiped here."""
        self._tfill.generation = self._afill.generation = 0
        self._tval = self._aval = _NOTHING
        self._tbuf.raw = _ZEROS
        self._abuf.raw = _ZEROS

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran (or the provider was never created)."""
        return self._finalizer is None or not self._finalizer.alive

    @property
    def endpoint(self) -> str:
        """The configured token URL, issuer, or ``preset:<name>``; for a provider of the
        configuration file, the token URL or issuer the library holds for it."""
        self._describe_from_library()
        return self._endpoint

    @property
    def client_id(self) -> str:
        """The configured client id."""
        self._describe_from_library()
        return self._client_id

    def __enter__(self) -> "Provider":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        self._describe_from_library()
        state = " closed" if self.closed else ""
        name = f" name={self._name!r}" if self._name is not None else ""
        return f"<credvault.Provider{name} endpoint={self._endpoint!r} client_id={self._client_id!r}{state}>"

    def __reduce__(self) -> Any:
        raise TypeError("a credvault.Provider cannot be pickled: create it in each process")


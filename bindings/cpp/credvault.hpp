// credvault.hpp: header-only C++17 wrapper of credvault's C ABI (credvault.h).
//
//   #include <credvault.hpp>
//
//   auto vgs = credvault::Provider::from_preset("vgs", client_id, client_secret);
//   credvault::SecretString auth = vgs.authorization();   // "Bearer eyJ...", wiped on destruction
//   request.set_header("Authorization", auth.reveal());   // the only ways to the value: reveal(),
//                                                          // reveal_c_str(), explicit string_view
//   if (response.status == 401) { vgs.invalidate(auth); /* and retry once */ }
//
// * credvault::Provider owns one provider handle (move-only; the destructor frees it). Every
//   member function is thread-safe: share one Provider between threads (one token fetch serves
//   them all).
// * credvault::SecretString holds a token or an Authorization value in a buffer of its own that
//   is wiped (memset and a compiler barrier) before it is released: on destruction, on clear()
//   and when it is assigned to (a move hands the buffer over). It is move-only, never converts
//   implicitly to a string, and prints as "[redacted]" through operator<< (and std::format, where
//   there is one).
// * Errors: the throwing members throw credvault::Error (a std::runtime_error) with the status,
//   the library's message (never a secret) and the OAuth error code when the identity provider
//   sent one. Every operation also has a non-throwing overload that takes a credvault::ErrorInfo&
//   and returns the credvault::Status; these are all the header offers when it is compiled with
//   -fno-exceptions.
// * Messages come back through each call's own error buffer (the _ex/_into C calls), never
//   through the thread-local vault_last_error, so they are right however threads move.
//
// Link with libcredvault (pkg-config credvault, or find_package(credvault CONFIG) and
// target_link_libraries(app PRIVATE credvault::credvault)).

#ifndef CREDVAULT_HPP
#define CREDVAULT_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#if defined(__has_include)
#if __has_include(<version>)
#include <version>
#endif
#endif
#if defined(__cpp_lib_format) && __cplusplus >= 202002L
#include <format>
#endif

#include "credvault.h"

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define CREDVAULT_HPP_EXCEPTIONS 1
#else
#define CREDVAULT_HPP_EXCEPTIONS 0
#endif

namespace credvault {

/// The status of a call: the C ABI's vault_status numbers (fixed forever; new ones are added).
/// Each enumerator is the C name without VAULT_STATUS_, in lower case. Adding a status: the
/// enumerator, its static_assert (its number against credvault.h) and its case in
/// detail::status_enumerator_name; the C++ suite checks every code of the library against them
/// through vault_status_name.
enum class Status : std::int32_t {
    ok = 0,
    invalid_argument = 1,
    invalid_config = 2,
    invalid_handle = 3,
    network = 4,
    timeout = 5,
    tls = 6,
    http_status = 7,
    credentials_rejected = 8,
    scope_rejected = 9,
    rate_limited = 10,
    malformed_response = 11,
    buffer_too_small = 12,
    oauth_error = 13,
    discovery_failed = 14,
    would_block = 15,
    internal = 99,
};

static_assert(static_cast<std::int32_t>(Status::ok) == VAULT_STATUS_OK);
static_assert(static_cast<std::int32_t>(Status::invalid_argument) == VAULT_STATUS_INVALID_ARGUMENT);
static_assert(static_cast<std::int32_t>(Status::invalid_config) == VAULT_STATUS_INVALID_CONFIG);
static_assert(static_cast<std::int32_t>(Status::invalid_handle) == VAULT_STATUS_INVALID_HANDLE);
static_assert(static_cast<std::int32_t>(Status::network) == VAULT_STATUS_NETWORK);
static_assert(static_cast<std::int32_t>(Status::timeout) == VAULT_STATUS_TIMEOUT);
static_assert(static_cast<std::int32_t>(Status::tls) == VAULT_STATUS_TLS);
static_assert(static_cast<std::int32_t>(Status::http_status) == VAULT_STATUS_HTTP_STATUS);
static_assert(static_cast<std::int32_t>(Status::credentials_rejected) ==
              VAULT_STATUS_CREDENTIALS_REJECTED);
static_assert(static_cast<std::int32_t>(Status::scope_rejected) == VAULT_STATUS_SCOPE_REJECTED);
static_assert(static_cast<std::int32_t>(Status::rate_limited) == VAULT_STATUS_RATE_LIMITED);
static_assert(static_cast<std::int32_t>(Status::malformed_response) ==
              VAULT_STATUS_MALFORMED_RESPONSE);
static_assert(static_cast<std::int32_t>(Status::buffer_too_small) == VAULT_STATUS_BUFFER_TOO_SMALL);
static_assert(static_cast<std::int32_t>(Status::oauth_error) == VAULT_STATUS_OAUTH_ERROR);
static_assert(static_cast<std::int32_t>(Status::discovery_failed) == VAULT_STATUS_DISCOVERY_FAILED);
static_assert(static_cast<std::int32_t>(Status::would_block) == VAULT_STATUS_WOULD_BLOCK);
static_assert(static_cast<std::int32_t>(Status::internal) == VAULT_STATUS_INTERNAL);

namespace detail {

/// The enumerator's own name ("credentials_rejected"), nullptr for a number that is no
/// enumerator. No default: a missing case is a -Wswitch warning.
constexpr const char *status_enumerator_name(Status s) noexcept
{
    switch (s) {
    case Status::ok:
        return "ok";
    case Status::invalid_argument:
        return "invalid_argument";
    case Status::invalid_config:
        return "invalid_config";
    case Status::invalid_handle:
        return "invalid_handle";
    case Status::network:
        return "network";
    case Status::timeout:
        return "timeout";
    case Status::tls:
        return "tls";
    case Status::http_status:
        return "http_status";
    case Status::credentials_rejected:
        return "credentials_rejected";
    case Status::scope_rejected:
        return "scope_rejected";
    case Status::rate_limited:
        return "rate_limited";
    case Status::malformed_response:
        return "malformed_response";
    case Status::buffer_too_small:
        return "buffer_too_small";
    case Status::oauth_error:
        return "oauth_error";
    case Status::discovery_failed:
        return "discovery_failed";
    case Status::would_block:
        return "would_block";
    case Status::internal:
        return "internal";
    }
    return nullptr;
}

} // namespace detail

/// "VAULT_STATUS_TIMEOUT", ... (static strings from the library).
inline const char *status_name(Status s) noexcept
{
    return vault_status_name(static_cast<std::int32_t>(s));
}

inline std::ostream &operator<<(std::ostream &os, Status s)
{
    return os << status_name(s);
}

/// The library version, e.g. "0.1.0".
inline const char *version() noexcept
{
    return vault_version();
}

namespace detail {

/// Overwrites n bytes with zeros in a way the compiler may not drop as a dead store: memset, then
/// an empty asm statement that may read the memory (what glibc's explicit_bzero does); volatile
/// stores where there is no GNU inline asm.
inline void wipe(void *p, std::size_t n) noexcept
{
    if (p == nullptr || n == 0) {
        return;
    }
#if defined(__GNUC__) || defined(__clang__)
    std::memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    volatile unsigned char *v = static_cast<volatile unsigned char *>(p);
    for (std::size_t i = 0; i < n; ++i) {
        v[i] = 0;
    }
#endif
}

/// Size of the per-call error buffer: the message, its NUL, then the OAuth error code and its NUL.
constexpr std::size_t error_buffer_size = 1024;

/// strnlen, which is POSIX rather than standard C++.
inline std::size_t bounded_len(const char *s, std::size_t max) noexcept
{
    std::size_t n = 0;
    while (n < max && s[n] != '\0') {
        ++n;
    }
    return n;
}

} // namespace detail

/// What a non-throwing call reports: the status, the library's message (never a secret) and the
/// RFC 6749 `error` code the identity provider sent, if any. Reset by every call that takes it.
struct ErrorInfo {
    Status status = Status::ok;
    std::string message;
    std::string oauth_error;

    /// True when the call failed: `if (err) log(err.message);`.
    explicit operator bool() const noexcept { return status != Status::ok; }

    void clear() noexcept
    {
        status = Status::ok;
        message.clear();
        oauth_error.clear();
    }
};

/// The exception the throwing members throw. what() is the library's message.
class Error : public std::runtime_error {
  public:
    Error(Status status, const std::string &message, std::string oauth_error = std::string())
        : std::runtime_error(message), status_(status), oauth_error_(std::move(oauth_error))
    {
    }
    explicit Error(const ErrorInfo &info) : Error(info.status, info.message, info.oauth_error) {}

    Status status() const noexcept { return status_; }
    /// The RFC 6749 `error` code from the identity provider ("invalid_client", ...), or "".
    const std::string &oauth_error() const noexcept { return oauth_error_; }

  private:
    Status status_;
    std::string oauth_error_;
};

/// A token or an Authorization value. Its bytes live in a buffer of its own, NUL-terminated, and
/// are wiped before that buffer is released. Move-only; no implicit conversion to any string; the
/// value only through reveal(), reveal_c_str() or an explicit std::string_view conversion.
class SecretString {
  public:
    SecretString() noexcept = default;
    ~SecretString() { release(); }

    SecretString(const SecretString &) = delete;
    SecretString &operator=(const SecretString &) = delete;

    SecretString(SecretString &&other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
          capacity_(std::exchange(other.capacity_, 0))
    {
    }
    SecretString &operator=(SecretString &&other) noexcept
    {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
            capacity_ = std::exchange(other.capacity_, 0);
        }
        return *this;
    }

    /// The value. Valid while this object lives and is not modified; do not copy it into
    /// storage that is not wiped.
    std::string_view reveal() const noexcept
    {
        return data_ ? std::string_view(data_, size_) : std::string_view();
    }
    /// The value NUL-terminated (never NULL), for C APIs such as libcurl's header lists.
    const char *reveal_c_str() const noexcept { return data_ ? data_ : ""; }
    explicit operator std::string_view() const noexcept { return reveal(); }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    /// Wipes and releases the value now.
    void clear() noexcept { release(); }

    /// Drops the "<type> " prefix of an Authorization value: the token itself (a token never
    /// contains a space). A plain token is returned as is. Points into this object.
    const char *token_part_c_str() const noexcept
    {
        const char *s = reveal_c_str();
        const char *space = std::strchr(s, ' ');
        return space ? space + 1 : s;
    }

  private:
    friend class Provider;

    void release() noexcept
    {
        if (data_ != nullptr) {
            detail::wipe(data_, capacity_);
            delete[] data_;
        }
        data_ = nullptr;
        size_ = 0;
        capacity_ = 0;
    }

    /// A new buffer of `capacity` bytes holding "" (the old one is wiped and released); false
    /// when out of memory.
    bool reserve_exactly(std::size_t capacity) noexcept
    {
        release();
        data_ = new (std::nothrow) char[capacity];
        if (data_ == nullptr) {
            return false;
        }
        capacity_ = capacity;
        data_[0] = '\0';
        return true;
    }

    char *data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

/// Prints "[redacted]": a SecretString never shows its value in a log line.
inline std::ostream &operator<<(std::ostream &os, const SecretString &)
{
    return os << "[redacted]";
}

/// One provider (a set of credentials at one token endpoint): its own token cache, refreshed ahead
/// of expiry. Move-only; the destructor frees the handle and wipes the provider's secrets.
class Provider {
  public:
    /// An empty provider (no handle): every call on it fails with Status::invalid_handle.
    Provider() noexcept = default;
    /// Takes ownership of a handle from vault_provider_new / vault_provider_new_ex.
    explicit Provider(std::uint64_t handle) noexcept : handle_(handle) {}
    ~Provider() { reset(); }

    Provider(const Provider &) = delete;
    Provider &operator=(const Provider &) = delete;
    Provider(Provider &&other) noexcept
        : handle_(std::exchange(other.handle_, 0)),
          size_hint_(other.size_hint_.load(std::memory_order_relaxed))
    {
    }
    Provider &operator=(Provider &&other) noexcept
    {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, 0);
            size_hint_.store(other.size_hint_.load(std::memory_order_relaxed),
                             std::memory_order_relaxed);
        }
        return *this;
    }

    std::uint64_t handle() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != 0; }
    /// Gives the handle up (the caller frees it with vault_provider_free).
    std::uint64_t release() noexcept { return std::exchange(handle_, 0); }
    /// Frees the handle now (wiping the provider's secrets); the object becomes empty.
    void reset() noexcept
    {
        if (handle_ != 0) {
            vault_provider_free(handle_);
            handle_ = 0;
        }
    }

    // ------------------------------------------------------------------ non-throwing API

    /// Creates a provider from its JSON configuration (README "Configuration"). The copy made
    /// to pass it to the library is wiped; the caller should wipe its own.
    static Status from_json(std::string_view json, Provider &out, ErrorInfo &err) noexcept
    {
        if (json.size() > max_text) {
            return fail(err, Status::invalid_argument, "the configuration is too long");
        }
        SecretString text;
        if (!text.reserve_exactly(json.size() + 1)) {
            return out_of_memory(err);
        }
        std::memcpy(text.data_, json.data(), json.size());
        text.data_[json.size()] = '\0';
        text.size_ = json.size();
        return create(text.data_, out, err);
    }

    /// Creates a provider from a preset ("vgs", "vitesse-uk", ...) and its credentials.
    /// `settings_json`, if not empty, is a JSON object of further keys (README "Configuration")
    /// that override the preset's, e.g. R"({"token_url":"http://127.0.0.1:8080/token"})".
    static Status from_preset(std::string_view preset, std::string_view client_id,
                              std::string_view client_secret, std::string_view settings_json,
                              Provider &out, ErrorInfo &err) noexcept
    {
        // {"preset":"...","client_id":"...","client_secret":"..."[,settings]}
        std::string_view extra = trim(settings_json);
        if (!extra.empty()) {
            if (extra.size() < 2 || extra.front() != '{' || extra.back() != '}') {
                return fail(err, Status::invalid_argument,
                            "settings_json must be a JSON object ({...})");
            }
            extra = trim(extra.substr(1, extra.size() - 2));
        }
        if (preset.size() > max_text || client_id.size() > max_text ||
            client_secret.size() > max_text || extra.size() > max_text) {
            return fail(err, Status::invalid_argument, "an argument is too long");
        }
        static constexpr char k_preset[] = "{\"preset\":";
        static constexpr char k_id[] = ",\"client_id\":";
        static constexpr char k_secret[] = ",\"client_secret\":";
        std::size_t n = sizeof k_preset - 1 + sizeof k_id - 1 + sizeof k_secret - 1 +
                        quoted_size(preset) + quoted_size(client_id) +
                        quoted_size(client_secret) + (extra.empty() ? 0 : 1 + extra.size()) + 1;
        SecretString text;
        if (!text.reserve_exactly(n + 1)) {
            return out_of_memory(err);
        }
        char *p = text.data_;
        p = put(p, k_preset);
        p = put_quoted(p, preset);
        p = put(p, k_id);
        p = put_quoted(p, client_id);
        p = put(p, k_secret);
        p = put_quoted(p, client_secret);
        if (!extra.empty()) {
            *p++ = ',';
            std::memcpy(p, extra.data(), extra.size());
            p += extra.size();
        }
        *p++ = '}';
        *p = '\0';
        text.size_ = static_cast<std::size_t>(p - text.data_);
        return create(text.data_, out, err);
    }
    static Status from_preset(std::string_view preset, std::string_view client_id,
                              std::string_view client_secret, Provider &out,
                              ErrorInfo &err) noexcept
    {
        return from_preset(preset, client_id, client_secret, std::string_view(), out, err);
    }

    /// The access token, from the cache when one is valid, else after the (single) fetch.
    Status token(SecretString &out, ErrorInfo &err) const noexcept
    {
        return get(vault_get_token_into, out, err);
    }

    /// The Authorization header value, "<token_type> <token>" ("Bearer eyJ...").
    Status authorization(SecretString &out, ErrorInfo &err) const noexcept
    {
        return get(vault_get_authorization_into, out, err);
    }

    /// Never waits: the cached token if one is servable (Status::ok), else Status::would_block
    /// (then call token() on a worker thread), or the stored error during a failure cool-down.
    Status try_token(SecretString &out, ErrorInfo &err) const noexcept
    {
        return get(vault_try_get_token_into, out, err);
    }

    /// As try_token(), for the Authorization value.
    Status try_authorization(SecretString &out, ErrorInfo &err) const noexcept
    {
        return get(vault_try_get_authorization_into, out, err);
    }

    /// After the API answered 401: drops the token this thread last received from this provider,
    /// if it is still the cached one, so the next call fetches a new one (many threads reporting
    /// the same 401 cause one fetch). Also ends a failure cool-down.
    Status invalidate(ErrorInfo &err) const noexcept
    {
        err.clear();
        auto status = static_cast<Status>(vault_invalidate(handle_));
        if (status != Status::ok) {
            return fail(err, status, "invalid provider handle (empty, moved from or freed)");
        }
        return Status::ok;
    }

    /// After the API answered 401 to `rejected` (a value from token() or authorization()): drops
    /// the cached token only if it is that one. Right from any thread, however threads move.
    Status invalidate(const SecretString &rejected, ErrorInfo &err) const noexcept
    {
        char buf[detail::error_buffer_size] = {};
        auto status = static_cast<Status>(
            vault_invalidate_token(handle_, rejected.token_part_c_str(), buf, sizeof buf));
        return report(status, buf, err);
    }

    // ------------------------------------------------------------------ throwing API
#if CREDVAULT_HPP_EXCEPTIONS
    static Provider from_json(std::string_view json)
    {
        Provider p;
        ErrorInfo err;
        check(from_json(json, p, err), err);
        return p;
    }

    static Provider from_preset(std::string_view preset, std::string_view client_id,
                                std::string_view client_secret,
                                std::string_view settings_json = std::string_view())
    {
        Provider p;
        ErrorInfo err;
        check(from_preset(preset, client_id, client_secret, settings_json, p, err), err);
        return p;
    }

    SecretString token() const { return or_throw<SecretString>(&Provider::token); }
    SecretString authorization() const
    {
        return or_throw<SecretString>(&Provider::authorization);
    }

    /// Never waits: the cached token, or std::nullopt when getting one would have to wait for
    /// the network (Status::would_block); throws on any other failure.
    std::optional<SecretString> try_token() const
    {
        return or_throw<std::optional<SecretString>>(&Provider::try_token);
    }
    std::optional<SecretString> try_authorization() const
    {
        return or_throw<std::optional<SecretString>>(&Provider::try_authorization);
    }

    void invalidate() const
    {
        ErrorInfo err;
        check(invalidate(err), err);
    }

    void invalidate(const SecretString &rejected) const
    {
        ErrorInfo err;
        check(invalidate(rejected, err), err);
    }
#endif

  private:
    /// Longest text accepted (keeps every size computation far from overflow).
    static constexpr std::size_t max_text = std::size_t(1) << 26;

    using into_fn = vault_status (*)(std::uint64_t, char *, std::size_t, std::size_t *, char *,
                                     std::size_t);

#if CREDVAULT_HPP_EXCEPTIONS
    static void check(Status status, const ErrorInfo &err)
    {
        if (status != Status::ok) {
            throw Error(err);
        }
    }

    /// One of the non-throwing getters (token, authorization, try_token, try_authorization).
    using getter = Status (Provider::*)(SecretString &, ErrorInfo &) const noexcept;

    /// The throwing form of a getter: runs `fn` into a new SecretString and throws its Error on
    /// failure. `Result` is SecretString, or std::optional<SecretString> for the try_ forms,
    /// where Status::would_block gives std::nullopt instead of an exception.
    template <class Result> Result or_throw(getter fn) const
    {
        SecretString s;
        ErrorInfo err;
        Status status = (this->*fn)(s, err);
        if constexpr (std::is_same_v<Result, std::optional<SecretString>>) {
            if (status == Status::would_block) {
                return std::nullopt;
            }
        } else {
            static_assert(std::is_same_v<Result, SecretString>, "SecretString or its optional");
        }
        check(status, err);
        return Result(std::move(s));
    }
#endif

    static Status fail(ErrorInfo &err, Status status, const char *message) noexcept
    {
        err.status = status;
        err.message = message;
        err.oauth_error.clear();
        return status;
    }

    static Status out_of_memory(ErrorInfo &err) noexcept
    {
        return fail(err, Status::internal, "out of memory");
    }

    /// Fills `err` from a call's status and error buffer: the message, then (after its NUL, when
    /// the buffer had room) the OAuth error code.
    static Status report(Status status, const char *buf, ErrorInfo &err) noexcept
    {
        if (status == Status::ok) {
            err.clear();
            return status;
        }
        err.status = status;
        std::size_t n = detail::bounded_len(buf, detail::error_buffer_size);
        err.message.assign(buf, n);
        err.oauth_error.clear();
        if (n + 1 < detail::error_buffer_size) {
            const char *code = buf + n + 1;
            err.oauth_error.assign(code, detail::bounded_len(code, detail::error_buffer_size - n - 1));
        }
        if (err.message.empty()) {
            err.message = status_name(status);
        }
        return status;
    }

    static Status create(const char *json, Provider &out, ErrorInfo &err) noexcept
    {
        char buf[detail::error_buffer_size] = {};
        std::uint64_t handle = 0;
        auto status = static_cast<Status>(vault_provider_new_ex(json, &handle, buf, sizeof buf));
        if (status == Status::ok) {
            out = Provider(handle);
        }
        return report(status, buf, err);
    }

    Status get(into_fn fn, SecretString &out, ErrorInfo &err) const noexcept
    {
        // The buffer is sized from the last value this provider returned (plus room for a longer
        // token after a refresh); a longer one is fetched again into a buffer of the size the
        // library reports (a refresh in between may change it: try a few times).
        std::size_t hint = size_hint_.load(std::memory_order_relaxed);
        std::size_t capacity = hint == 0 ? 1024 : hint + 64;
        for (int attempt = 0; attempt < 4; ++attempt) {
            SecretString s;
            if (!s.reserve_exactly(capacity)) {
                out.clear();
                return out_of_memory(err);
            }
            char buf[detail::error_buffer_size] = {};
            std::size_t len = 0;
            auto status = static_cast<Status>(fn(handle_, s.data_, capacity, &len, buf, sizeof buf));
            if (status == Status::ok) {
                s.size_ = len;
                if (len != hint && len <= max_text) {
                    size_hint_.store(len, std::memory_order_relaxed);
                }
                out = std::move(s);
                err.clear();
                return status;
            }
            if (status != Status::buffer_too_small || len + 1 <= capacity) {
                out.clear();
                return report(status, buf, err);
            }
            capacity = len + 1;
        }
        out.clear();
        return fail(err, Status::buffer_too_small, "the token kept growing between attempts");
    }

    static std::string_view trim(std::string_view s) noexcept
    {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' ||
                              s.front() == '\r')) {
            s.remove_prefix(1);
        }
        while (!s.empty() &&
               (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
            s.remove_suffix(1);
        }
        return s;
    }

    /// Size of `s` as a JSON string literal, quotes included.
    static std::size_t quoted_size(std::string_view s) noexcept
    {
        std::size_t n = 2;
        for (char c : s) {
            auto u = static_cast<unsigned char>(c);
            if (c == '"' || c == '\\') {
                n += 2;
            } else if (u < 0x20) {
                n += 6;
            } else {
                n += 1;
            }
        }
        return n;
    }

    static char *put(char *p, const char *lit) noexcept
    {
        std::size_t n = std::strlen(lit);
        std::memcpy(p, lit, n);
        return p + n;
    }

    static char *put_quoted(char *p, std::string_view s) noexcept
    {
        static constexpr char hex[] = "0123456789abcdef";
        *p++ = '"';
        for (char c : s) {
            auto u = static_cast<unsigned char>(c);
            if (c == '"' || c == '\\') {
                *p++ = '\\';
                *p++ = c;
            } else if (u < 0x20) {
                *p++ = '\\';
                *p++ = 'u';
                *p++ = '0';
                *p++ = '0';
                *p++ = hex[u >> 4];
                *p++ = hex[u & 0xf];
            } else {
                *p++ = c;
            }
        }
        *p++ = '"';
        return p;
    }

    std::uint64_t handle_ = 0;
    /// Length of the last value served: the next buffer's size. Shared by threads, hence atomic.
    mutable std::atomic<std::size_t> size_hint_{0};
};

} // namespace credvault

#if defined(__cpp_lib_format) && __cplusplus >= 202002L
/// std::format("{}", secret) prints "[redacted]", never the value.
template <> struct std::formatter<credvault::SecretString, char> {
    constexpr auto parse(std::format_parse_context &ctx) { return ctx.begin(); }
    auto format(const credvault::SecretString &, std::format_context &ctx) const
    {
        return std::format_to(ctx.out(), "[redacted]");
    }
};
#endif

#endif // CREDVAULT_HPP

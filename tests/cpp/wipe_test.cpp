// SecretString wipes its bytes before releasing them: this program replaces the global
// operator new/delete (all forms, over malloc/free) and, when the buffer a SecretString held is
// released, checks that every byte of it is already zero. It also scans every array block
// released (SecretString's buffers and the JSON text from_preset builds) for the client secret.
// Output: `ok`/`not ok` lines, never a token or secret value.
#include <credvault.hpp>

#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "support.hpp"

namespace {

std::atomic<const void *> g_watch{nullptr};
std::atomic<std::size_t> g_watch_len{0};
std::atomic<int> g_watch_released{0};
std::atomic<int> g_watch_nonzero{0};
char g_secret[64];
std::size_t g_secret_len = 0;
std::atomic<int> g_secret_released{0};

void check_release(void *p) noexcept
{
    if (p == nullptr) {
        return;
    }
    if (p == g_watch.load()) {
        const unsigned char *b = static_cast<const unsigned char *>(p);
        std::size_t nonzero = 0;
        for (std::size_t i = 0; i < g_watch_len.load(); ++i) {
            nonzero += b[i] != 0;
        }
        if (nonzero != 0) {
            g_watch_nonzero.fetch_add(1);
        }
        g_watch_released.fetch_add(1);
        g_watch.store(nullptr);
    }
    if (g_secret_len != 0) {
        std::size_t n = malloc_usable_size(p);
        if (n >= g_secret_len && memmem(p, n, g_secret, g_secret_len) != nullptr) {
            g_secret_released.fetch_add(1);
        }
    }
}

void *allocate(std::size_t n) noexcept { return std::malloc(n == 0 ? 1 : n); }

} // namespace

// The replaced allocation functions: plain ones over malloc/free (so that valgrind sees matching
// pairs), array deletes inspected first.
void *operator new(std::size_t n)
{
    void *p = allocate(n);
    if (p == nullptr) {
        std::abort();
    }
    return p;
}
void *operator new[](std::size_t n)
{
    void *p = allocate(n);
    if (p == nullptr) {
        std::abort();
    }
    return p;
}
void *operator new(std::size_t n, const std::nothrow_t &) noexcept { return allocate(n); }
void *operator new[](std::size_t n, const std::nothrow_t &) noexcept { return allocate(n); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { std::free(p); }
void operator delete[](void *p) noexcept
{
    check_release(p);
    std::free(p);
}
void operator delete[](void *p, std::size_t) noexcept
{
    check_release(p);
    std::free(p);
}
void operator delete[](void *p, const std::nothrow_t &) noexcept
{
    check_release(p);
    std::free(p);
}

namespace {

int g_failed = 0;
int g_n = 0;

void report(bool ok, const char *name)
{
    ++g_n;
    std::printf("%s %d - %s\n", ok ? "ok" : "not ok", g_n, name);
    if (!ok) {
        ++g_failed;
    }
}

void watch(const credvault::SecretString &s)
{
    g_watch_released.store(0);
    g_watch_nonzero.store(0);
    g_watch_len.store(s.size() + 1); // the value and its NUL
    g_watch.store(s.reveal_c_str());
}

bool released_wiped() { return g_watch_released.load() == 1 && g_watch_nonzero.load() == 0; }

} // namespace

int main()
{
    using credvault::ErrorInfo;
    using credvault::Provider;
    using credvault::SecretString;
    using credvault::Status;
    testsupport::Idp &idp = testsupport::Idp::get();
    if (!idp.ok()) {
        std::printf("not ok 1 - no identity provider\n");
        return 1;
    }
    std::string id = idp.add_vgs_client("wipe");
    std::string secret = id + "-secret";
    ErrorInfo err;
    Provider p;
    if (Provider::from_preset("vgs", id, secret, testsupport::loopback_settings(), p, err) !=
        Status::ok) {
        std::printf("not ok 1 - from_preset: %s\n", err.message.c_str());
        return 1;
    }
    // From here on, any array block released with the secret in it is counted. (The test's own
    // std::strings hold it too, but they use operator new, not new[].)
    std::snprintf(g_secret, sizeof g_secret, "%s", secret.c_str());
    g_secret_len = std::strlen(g_secret);
    Provider again;
    report(Provider::from_preset("vgs", id, secret, testsupport::loopback_settings(), again, err) ==
               Status::ok,
           "from_preset builds its JSON (with the secret) in a wiped buffer");
    again.reset();
    report(Provider::from_json("{\"preset\":\"vgs\",\"client_id\":\"" + id +
                                   "\",\"client_secret\":\"" + secret + "\",\"token_url\":\"" +
                                   idp.vgs_token_url() + "\"}",
                               again, err) == Status::ok,
           "from_json copies its text into a wiped buffer");
    again.reset();
    report(g_secret_released.load() == 0, "no array block was released holding the secret");

    {
        SecretString t;
        report(p.token(t, err) == Status::ok && !t.empty(), "token");
        watch(t);
    }
    report(released_wiped(), "destruction wipes before release");

    SecretString a;
    p.authorization(a, err);
    watch(a);
    a.clear();
    report(released_wiped() && a.empty(), "clear() wipes before release");

    p.authorization(a, err);
    watch(a);
    SecretString b;
    p.token(b, err);
    a = std::move(b);
    report(released_wiped(), "move assignment wipes the value it replaces");

    watch(a);
    p.token(a, err); // a new buffer replaces the old one
    report(released_wiped(), "a new value wipes the one it replaces");

    watch(a);
    Provider empty;
    report(empty.token(a, err) == Status::invalid_handle && a.empty() && released_wiped(),
           "a failed call wipes the old value");

    std::printf("%d passed, %d failed\n", g_n - g_failed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

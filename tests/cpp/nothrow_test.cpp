// The non-throwing API, built with -fno-exceptions (as code that bans exceptions builds it):
// the throwing members are not even declared, and every call reports through its Status and an
// ErrorInfo. Output: `ok`/`not ok` lines, never a token or secret value.
#include <credvault.hpp>

#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>

#include "support.hpp"

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#error "build this test with -fno-exceptions"
#endif
static_assert(CREDVAULT_HPP_EXCEPTIONS == 0);

template <class T, class = void> struct has_throwing_token : std::false_type {};
template <class T>
struct has_throwing_token<T, std::void_t<decltype(std::declval<const T &>().token())>>
    : std::true_type {};
static_assert(!has_throwing_token<credvault::Provider>::value,
              "without exceptions only the non-throwing overloads exist");

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
    std::string id = idp.add_vgs_client("nothrow");
    std::string settings = testsupport::loopback_settings();
    ErrorInfo err;
    Provider p;

    report(Provider::from_json("{\"preset\":\"vgs\"}", p, err) == Status::invalid_config &&
               err.status == Status::invalid_config && !err.message.empty() && !p,
           "invalid config: status and message");
    report(Provider::from_preset("vgs", id, "wrong-secret", settings, p, err) == Status::ok && p,
           "from_preset");
    SecretString s;
    report(p.token(s, err) == Status::credentials_rejected && s.empty() &&
               err.oauth_error == "invalid_client" &&
               err.message.find("wrong-secret") == std::string::npos,
           "rejected credentials: status, OAuth code, no secret in the message");
    report(p.invalidate(err) == Status::ok, "invalidate ends the cool-down");

    report(Provider::from_preset("vgs", id, id + "-secret", settings, p, err) == Status::ok,
           "from_preset with the right secret (replaces the provider)");
    report(p.try_token(s, err) == Status::would_block && s.empty(), "try_token would block");
    report(p.authorization(s, err) == Status::ok && err.status == Status::ok &&
               s.reveal().substr(0, 7) == "Bearer ",
           "authorization");
    SecretString t;
    report(p.try_token(t, err) == Status::ok && std::string_view(s.token_part_c_str()) == t.reveal(),
           "try_token serves the cached token");
    report(p.invalidate(s, err) == Status::ok, "invalidate(rejected)");
    SecretString u;
    report(p.token(u, err) == Status::ok && u.reveal() != t.reveal() && idp.tokens_issued(id) == 2,
           "a new token after invalidation");

    Provider q(std::move(p));
    report(p.token(u, err) == Status::invalid_handle && u.empty() && q.token(u, err) == Status::ok,
           "moved-from provider reports invalid_handle");

    std::printf("%d passed, %d failed\n", g_n - g_failed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

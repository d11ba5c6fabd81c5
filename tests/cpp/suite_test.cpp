// The C++ wrapper (bindings/cpp/credvault.hpp) against the local identity provider.
// Never prints a token or a secret: failures show lengths, statuses and messages only (and a
// SecretString prints as "[redacted]").
#include <credvault.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "support.hpp"

using credvault::Error;
using credvault::ErrorInfo;
using credvault::Provider;
using credvault::SecretString;
using credvault::Status;
using testsupport::Idp;

// ------------------------------------------------------------------ compile-time properties

static_assert(!std::is_copy_constructible_v<Provider> && !std::is_copy_assignable_v<Provider>);
static_assert(std::is_nothrow_move_constructible_v<Provider> &&
              std::is_nothrow_move_assignable_v<Provider>);
static_assert(!std::is_copy_constructible_v<SecretString> &&
              !std::is_copy_assignable_v<SecretString>);
static_assert(std::is_nothrow_move_constructible_v<SecretString> &&
              std::is_nothrow_move_assignable_v<SecretString>);
// The value never leaks through an implicit conversion.
static_assert(!std::is_convertible_v<SecretString, std::string_view>);
static_assert(!std::is_convertible_v<SecretString, std::string>);
static_assert(!std::is_convertible_v<SecretString, const char *>);
static_assert(std::is_constructible_v<std::string_view, const SecretString &>); // explicit only
static_assert(std::is_base_of_v<std::runtime_error, Error>);

// Token comparisons that never print the values (GoogleTest's EXPECT_EQ would).
#define EXPECT_SAME(a, b) EXPECT_TRUE((a) == (b)) << "the two values differ (not shown)"
#define EXPECT_DIFFERENT(a, b) EXPECT_TRUE((a) != (b)) << "the two values are equal (not shown)"

namespace {

class Wrapper : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(Idp::get().ok()) << "no identity provider"; }

    /// A provider for a fresh client of its own (so the idp's counters are this test's alone).
    Provider fresh(std::string *client_id = nullptr, const std::string &name = "t")
    {
        std::string id = Idp::get().add_vgs_client(name);
        EXPECT_FALSE(id.empty());
        if (client_id) {
            *client_id = id;
        }
        return Provider::from_preset("vgs", id, id + "-secret", testsupport::loopback_settings());
    }
};

bool freed(std::uint64_t handle)
{
    // Freeing again reports an unknown handle only if the provider is already gone.
    return vault_provider_free(handle) == VAULT_STATUS_INVALID_HANDLE;
}

} // namespace

// ------------------------------------------------------------------ the list of statuses

// credvault::Status against the library for every code: each code the library names
// (vault_status_name) is an enumerator whose name is the C name in lower case without
// VAULT_STATUS_, and no other number is an enumerator. (The static_asserts of credvault.hpp
// check each enumerator's number against credvault.h; -Wswitch that each has its name.)
TEST(Statuses, EveryCodeOfTheLibraryIsAnEnumeratorOfTheSameName)
{
    const std::string unknown = "VAULT_STATUS_UNKNOWN", prefix = "VAULT_STATUS_";
    for (std::int32_t code : {-1, INT32_MIN, INT32_MAX}) {
        EXPECT_EQ(vault_status_name(code), unknown) << code;
    }
    int named = 0;
    // Every code the library has (0 upwards, 99 for the internal error) and many it has not.
    for (std::int32_t code = -64; code <= 4096; ++code) {
        const std::string library = vault_status_name(code);
        const Status status = static_cast<Status>(code);
        const char *enumerator = credvault::detail::status_enumerator_name(status);
        if (library == unknown) {
            EXPECT_EQ(enumerator, nullptr) << "credvault::Status::" << enumerator << " = " << code
                                           << ": the library has no status " << code;
            continue;
        }
        ++named;
        ASSERT_NE(enumerator, nullptr)
            << "the library has " << library << " = " << code << "; credvault::Status has no "
            << "enumerator " << code;
        std::string expected = enumerator;
        for (char &c : expected) {
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        EXPECT_EQ(prefix + expected, library) << "credvault::Status::" << enumerator << " = " << code;
        EXPECT_EQ(credvault::status_name(status), library);
        std::ostringstream os;
        os << status;
        EXPECT_EQ(os.str(), library);
    }
    EXPECT_EQ(credvault::detail::status_enumerator_name(Status::ok), std::string("ok"));
    EXPECT_GT(named, 1);
}

// ------------------------------------------------------------------ RAII and moves

TEST_F(Wrapper, ProviderFreesItsHandleOnDestruction)
{
    std::uint64_t handle = 0;
    {
        Provider p = fresh();
        handle = p.handle();
        ASSERT_NE(handle, 0u);
        EXPECT_FALSE(p.token().empty());
    }
    EXPECT_TRUE(freed(handle));
}

TEST_F(Wrapper, ProviderMoves)
{
    Provider a = fresh();
    const std::uint64_t ha = a.handle();
    Provider b(std::move(a));
    EXPECT_EQ(a.handle(), 0u); // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_FALSE(static_cast<bool>(a));
    EXPECT_EQ(b.handle(), ha);
    EXPECT_FALSE(b.token().empty());

    // The moved-from provider fails cleanly, never touching the handle it gave away.
    ErrorInfo err;
    SecretString s;
    EXPECT_EQ(a.token(s, err), Status::invalid_handle);
    EXPECT_EQ(err.status, Status::invalid_handle);
    EXPECT_TRUE(s.empty());
    EXPECT_THROW(a.token(), Error);

    // Move assignment frees what the target held.
    Provider c = fresh();
    const std::uint64_t hc = c.handle();
    c = std::move(b);
    EXPECT_TRUE(freed(hc));
    EXPECT_EQ(c.handle(), ha);
    EXPECT_FALSE(c.authorization().empty());

    // Self-move leaves it intact.
    Provider &alias = c;
    c = std::move(alias);
    EXPECT_EQ(c.handle(), ha);

    // release() hands the handle over; reset() frees now.
    std::uint64_t released = c.release();
    EXPECT_EQ(c.handle(), 0u);
    EXPECT_EQ(vault_provider_free(released), VAULT_STATUS_OK);
    Provider d = fresh();
    std::uint64_t hd = d.handle();
    d.reset();
    EXPECT_TRUE(freed(hd));
}

TEST_F(Wrapper, SecretStringMoves)
{
    Provider p = fresh();
    SecretString t = p.token();
    const std::string_view v = t.reveal();
    const std::size_t n = t.size();
    ASSERT_GT(n, 0u);
    SecretString u(std::move(t));
    EXPECT_TRUE(t.empty()); // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(t.reveal().size(), 0u);
    EXPECT_STREQ(t.reveal_c_str(), "");
    EXPECT_EQ(u.size(), n);
    EXPECT_EQ(static_cast<const void *>(u.reveal().data()),
              static_cast<const void *>(v.data())); // the buffer moved, not a copy

    SecretString w = p.authorization();
    w = std::move(u);
    EXPECT_EQ(w.size(), n);
    SecretString &alias = w;
    w = std::move(alias);
    EXPECT_EQ(w.size(), n);
    w.clear();
    EXPECT_TRUE(w.empty());
}

TEST_F(Wrapper, TokenAndAuthorizationAgree)
{
    Provider p = fresh();
    SecretString token = p.token();
    SecretString auth = p.authorization();
    EXPECT_SAME(std::string_view(auth), "Bearer " + std::string(token.reveal()));
    EXPECT_EQ(std::strlen(token.reveal_c_str()), token.size());
    EXPECT_SAME(std::string_view(auth.token_part_c_str()), token.reveal());
}

TEST_F(Wrapper, SecretStringNeverPrintsItsValue)
{
    Provider p = fresh();
    SecretString t = p.token();
    std::ostringstream os;
    os << t << " " << p.authorization();
    EXPECT_EQ(os.str(), "[redacted] [redacted]");
    // GoogleTest's own printer goes through operator<< as well.
    EXPECT_EQ(::testing::PrintToString(t), "[redacted]");
}

// ------------------------------------------------------------------ errors

TEST_F(Wrapper, BadConfigThrowsErrorWithStatusAndMessage)
{
    try {
        Provider::from_json(R"({"preset":"vgs","client_id":"an-id","client_secret":"s3cr3t-value",
                                 "timeout_ms":"soon"})");
        FAIL() << "no exception";
    } catch (const Error &e) {
        EXPECT_EQ(e.status(), Status::invalid_config);
        EXPECT_NE(std::string(e.what()).find("timeout_ms"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("s3cr3t-value"), std::string::npos);
    }
    EXPECT_THROW(Provider::from_json("not json"), std::runtime_error);
    EXPECT_THROW(Provider::from_preset("no-such-preset", "an-id", "a-secret"), Error);
    try {
        Provider::from_preset("vgs", "an-id", "a-secret", "[1]");
        FAIL() << "no exception";
    } catch (const Error &e) {
        EXPECT_EQ(e.status(), Status::invalid_argument);
    }
}

TEST_F(Wrapper, RejectedCredentialsThrowWithTheOAuthCode)
{
    std::string id = Idp::get().add_vgs_client("rejected");
    Provider p = Provider::from_preset("vgs", id, "not-the-secret", testsupport::loopback_settings());
    try {
        p.token();
        FAIL() << "no exception";
    } catch (const Error &e) {
        EXPECT_EQ(e.status(), Status::credentials_rejected) << e.what();
        EXPECT_EQ(e.oauth_error(), "invalid_client");
        EXPECT_EQ(std::string(e.what()).find("not-the-secret"), std::string::npos);
    }
}

namespace {
std::string read_key_file(const std::string &name)
{
    std::ifstream in(std::string(CREDVAULT_KEYS_DIR) + "/" + name);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}
} // namespace

// private_key_jwt needs no new call: from_json takes private_key, key_id and
// signing_alg, and the local idp verifies the signed assertion against the registered JWK.
TEST_F(Wrapper, FromJsonSignsWithAPrivateKey)
{
    std::string jwk = read_key_file("p256.public.jwk.json");
    ASSERT_FALSE(jwk.empty()) << "tests/keys/p256.public.jwk.json";
    jwk = jwk.substr(0, jwk.rfind('}')) + ",\"kid\":\"k1\"}";
    std::string id = "cpp-jwt-" + std::to_string(getpid());
    testsupport::HttpResponse r =
        testsupport::http(Idp::get().port(), "POST", "/_idp/clients",
                          "{\"dialect\":\"vgs\",\"client_id\":\"" + id +
                              "\",\"jwks\":{\"keys\":[" + jwk + "]}}");
    ASSERT_EQ(r.status, 201);
    std::string pem;
    for (char c : read_key_file("p256.pkcs8.pem")) {
        pem += c == '\n' ? std::string("\\n") : std::string(1, c);
    }
    Provider p = Provider::from_json("{\"token_url\":\"" + Idp::get().vgs_token_url() +
                                     "\",\"client_id\":\"" + id +
                                     "\",\"auth_method\":\"private_key_jwt\",\"key_id\":\"k1\","
                                     "\"signing_alg\":\"ES256\",\"proxy\":\"none\",\"private_key\":\"" +
                                     pem + "\"}");
    EXPECT_FALSE(p.token().empty());
    EXPECT_EQ(Idp::get().tokens_issued(id), 1);
}

TEST_F(Wrapper, NonThrowingOverloadsReturnTheStatus)
{
    Provider p;
    ErrorInfo err;
    EXPECT_EQ(Provider::from_json("{\"preset\":\"vgs\"}", p, err), Status::invalid_config);
    EXPECT_EQ(err.status, Status::invalid_config);
    EXPECT_FALSE(err.message.empty());
    EXPECT_TRUE(static_cast<bool>(err));
    EXPECT_FALSE(static_cast<bool>(p));

    std::string id = Idp::get().add_vgs_client("nothrow");
    std::string settings = testsupport::loopback_settings();
    ASSERT_EQ(Provider::from_preset("vgs", id, "wrong", settings, p, err), Status::ok);
    EXPECT_EQ(err.status, Status::ok);
    EXPECT_TRUE(err.message.empty());
    SecretString s;
    EXPECT_EQ(p.token(s, err), Status::credentials_rejected);
    EXPECT_EQ(err.oauth_error, "invalid_client");
    EXPECT_TRUE(s.empty());

    // The same object, now with the right secret: the status, the value, and err reset.
    ASSERT_EQ(Provider::from_preset("vgs", id, id + "-secret", settings, p, err), Status::ok);
    EXPECT_EQ(p.authorization(s, err), Status::ok);
    EXPECT_EQ(err.status, Status::ok);
    EXPECT_TRUE(err.message.empty() && err.oauth_error.empty());
    EXPECT_EQ(s.reveal().substr(0, 7), "Bearer ");
    EXPECT_EQ(p.invalidate(err), Status::ok);
    EXPECT_EQ(p.invalidate(s, err), Status::ok);

    Provider empty;
    EXPECT_EQ(empty.invalidate(err), Status::invalid_handle);
    EXPECT_EQ(empty.invalidate(s, err), Status::invalid_handle);
    EXPECT_FALSE(err.message.empty());
}

TEST_F(Wrapper, TryTokenNeverWaits)
{
    std::string id;
    Provider p = fresh(&id, "try");
    EXPECT_FALSE(p.try_token().has_value()); // nothing cached: would block
    EXPECT_FALSE(p.try_authorization().has_value());
    EXPECT_EQ(Idp::get().token_requests(id), 0);
    SecretString t = p.token();
    std::optional<SecretString> hit = p.try_token();
    ASSERT_TRUE(hit.has_value());
    EXPECT_SAME(hit->reveal(), t.reveal());
    ErrorInfo err;
    SecretString a;
    EXPECT_EQ(p.try_authorization(a, err), Status::ok);
    std::optional<SecretString> auth = p.try_authorization();
    ASSERT_TRUE(auth.has_value());
    EXPECT_SAME(auth->reveal(), a.reveal());
    EXPECT_EQ(Idp::get().token_requests(id), 1);
}

// ------------------------------------------------------------------ invalidation

TEST_F(Wrapper, InvalidateFetchesANewToken)
{
    std::string id;
    Provider p = fresh(&id, "invalidate");
    SecretString first = p.token();
    EXPECT_SAME(p.token().reveal(), first.reveal()); // cached
    EXPECT_EQ(Idp::get().tokens_issued(id), 1);
    p.invalidate(); // the token this thread last received
    SecretString second = p.authorization();
    EXPECT_DIFFERENT(std::string_view(second.token_part_c_str()), first.reveal());
    EXPECT_EQ(Idp::get().tokens_issued(id), 2);

    // Invalidating a token that is no longer cached leaves the current one alone.
    p.invalidate(first);
    EXPECT_SAME(p.token().reveal(), std::string_view(second.token_part_c_str()));
    EXPECT_EQ(Idp::get().tokens_issued(id), 2);
    // The Authorization value names its token too.
    p.invalidate(second);
    EXPECT_DIFFERENT(p.token().reveal(), std::string_view(second.token_part_c_str()));
    EXPECT_EQ(Idp::get().tokens_issued(id), 3);
}

// ------------------------------------------------------------------ threads

TEST_F(Wrapper, SixteenThreadsOneProviderOneTokenRequest)
{
    std::string id;
    const Provider p = fresh(&id, "threads");
    constexpr int kThreads = 16;
    std::mutex m;
    std::condition_variable cv;
    int ready = 0;
    bool go = false;
    std::vector<std::string> seen(kThreads);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&, i] {
            {
                std::unique_lock<std::mutex> lock(m);
                ++ready;
                cv.notify_all();
                cv.wait(lock, [&] { return go; });
            }
            for (int k = 0; k < 20; ++k) {
                ErrorInfo err;
                SecretString s;
                if (p.authorization(s, err) != Status::ok) {
                    failures.fetch_add(1);
                    return;
                }
                if (k == 0) {
                    seen[static_cast<size_t>(i)] = std::string(s.reveal()); // compared below only
                }
            }
        });
    }
    {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return ready == kThreads; });
        go = true;
        cv.notify_all();
    }
    for (auto &t : threads) {
        t.join();
    }
    EXPECT_EQ(failures.load(), 0);
    for (int i = 1; i < kThreads; ++i) {
        EXPECT_TRUE(seen[static_cast<size_t>(i)] == seen[0]) << "thread " << i << " got another token";
    }
    EXPECT_EQ(Idp::get().token_requests(id), 1);
    for (auto &s : seen) {
        credvault::detail::wipe(s.data(), s.size());
    }
}

TEST_F(Wrapper, SixteenThreadsReportingOne401CauseOneFetch)
{
    std::string id;
    const Provider p = fresh(&id, "threads401");
    constexpr int kThreads = 16;
    SecretString first = p.token();
    std::atomic<int> failures{0};
    std::atomic<int> arrived{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&] {
            ErrorInfo err;
            SecretString s;
            // Each thread got the (cached) first token and the API refused it...
            if (p.token(s, err) != Status::ok || s.reveal() != first.reveal()) {
                failures.fetch_add(1);
            }
            arrived.fetch_add(1);
            while (arrived.load() < kThreads) {
                std::this_thread::yield();
            }
            // ...so each one invalidates the token it holds, and asks again.
            if (p.invalidate(s, err) != Status::ok || p.token(s, err) != Status::ok ||
                s.reveal() == first.reveal()) {
                failures.fetch_add(1);
            }
        });
    }
    for (auto &t : threads) {
        t.join();
    }
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(Idp::get().tokens_issued(id), 2); // the first token and one replacement
}

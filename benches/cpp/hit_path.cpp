// The cached hit through the C++ wrapper against the same call in C: what credvault.hpp adds on
// top of vault_get_token_into (its buffer, the error buffer, the wipe on release).
//
//   bash tests/cpp/run.sh     # builds and installs; then:
//   cmake --build target/cpp-tests/build --target cpp_bench_hit
//   CREDVAULT_BIN=target/release/credvault target/cpp-tests/build/cpp_bench_hit
//
// Prints ns per call for each form, 5 rounds of 1,000,000 calls on one thread; a figure per round
// so that noise from a shared machine shows. Never prints the token.
#include <credvault.hpp>

#include <chrono>
#include <cstdio>

#include "../../tests/cpp/support.hpp"

int main()
{
    testsupport::Idp &idp = testsupport::Idp::get();
    if (!idp.ok()) {
        return 1;
    }
    std::string id = idp.add_vgs_client("bench");
    credvault::ErrorInfo err;
    credvault::Provider p;
    if (credvault::Provider::from_preset("vgs", id, id + "-secret", testsupport::loopback_settings(),
                                         p, err) != credvault::Status::ok) {
        std::fprintf(stderr, "%s\n", err.message.c_str());
        return 1;
    }
    credvault::SecretString s;
    if (p.token(s, err) != credvault::Status::ok) { // the one fetch; every call below is a hit
        std::fprintf(stderr, "%s\n", err.message.c_str());
        return 1;
    }
    const int n = 1000000;
    using clock = std::chrono::steady_clock;
    auto per_call = [&](clock::time_point a, clock::time_point b) {
        return std::chrono::duration<double, std::nano>(b - a).count() / n;
    };
    std::printf("token length %zu bytes; ns per call (C vault_get_token_into with 1 KiB buffers | "
                "C++ token(s, err) | C++ token())\n",
                s.size());
    for (int round = 0; round < 5; ++round) {
        auto t0 = clock::now();
        for (int i = 0; i < n; ++i) {
            char buf[1024];
            char e[1024];
            std::size_t len = 0;
            e[0] = '\0';
            vault_get_token_into(p.handle(), buf, sizeof buf, &len, e, sizeof e);
            credvault::detail::wipe(buf, len);
        }
        auto t1 = clock::now();
        for (int i = 0; i < n; ++i) {
            p.token(s, err);
        }
        auto t2 = clock::now();
        for (int i = 0; i < n; ++i) {
            credvault::SecretString t = p.token();
        }
        auto t3 = clock::now();
        std::printf("round %d: %7.1f | %7.1f | %7.1f\n", round + 1, per_call(t0, t1),
                    per_call(t1, t2), per_call(t2, t3));
    }
    return 0;
}

// A C++ thread_local RAII wrapper whose destructor frees its provider. The wrapper is
// constructed before the thread first calls credvault, so its destructor runs after the library's
// thread-local destructors (they run in reverse order of registration): the library is called
// with its thread-local state gone. Before the fix the process aborted (exit 134) in
// vault_provider_free. Needs no identity provider (nothing is fetched).
//
//   g++ -std=c++17 -Wall -Wextra -Werror -pthread -I include tests/c/teardown_test.cpp
//       -L target/release -lcredvault -Wl,-rpath,$PWD/target/release   (one line; tests/c/run.sh)

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>

#include "credvault.h"

namespace {

std::atomic<int> g_free_status{-1};
std::atomic<int> g_status_after{-1};
std::atomic<int> g_double_free{-1};

struct Provider {
    uint64_t handle = 0;
    ~Provider()
    {
        if (handle != 0) {
            g_free_status = vault_provider_free(handle);
            g_status_after = vault_last_status();
            (void)vault_last_error();
            g_double_free = vault_provider_free(handle);
        }
    }
};

thread_local Provider t_provider;

void worker()
{
    t_provider.handle = 0; // constructs the wrapper (and registers its destructor) first
    t_provider.handle = vault_provider_new(
        "{\"token_url\":\"http://127.0.0.1:9/token\",\"client_id\":\"teardown\","
        "\"client_secret\":\"teardown-secret\"}");
    vault_provider_free(0); // a last error with a message in the thread's slot
}

int check(const char *what, int got, int want)
{
    bool ok = got == want;
    std::printf("%sok - %s: %d (%s)\n", ok ? "" : "not ", what, got, vault_status_name(got));
    return ok ? 0 : 1;
}

} // namespace

int main()
{
    std::thread t(worker);
    t.join();
    int failed = 0;
    failed += check("vault_provider_free in a thread_local destructor", g_free_status,
                    VAULT_STATUS_OK);
    failed += check("vault_last_status after it", g_status_after, VAULT_STATUS_OK);
    failed += check("a second vault_provider_free", g_double_free, VAULT_STATUS_INVALID_HANDLE);
    std::printf("%s\n", failed ? "FAILED" : "all passed");
    return failed ? 1 : 0;
}

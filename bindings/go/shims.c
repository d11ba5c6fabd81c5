// The Go binding's C helpers, declared in shims.h: the only C the binding defines.

#include "shims.h"
#include "_cgo_export.h" // goLogEvent (log.go)

void cv_wipe(void *p, size_t n) {
	volatile unsigned char *q = (volatile unsigned char *)p;
	while (n--) *q++ = 0;
}

// Copies the calling thread's last error (message, NUL, OAuth error code, NUL) into eb. Called
// from the same C function as the failed call: a goroutine may change OS threads between two
// cgo calls, never during one, so the thread-local last error is read on the right thread.
static void cv_copy_last_error(char *eb, size_t n) {
	if (eb == NULL || n < 2) return;
	memset(eb, 0, n);
	const char *m = vault_last_error();
	size_t ml = m ? strlen(m) : 0;
	if (ml > n - 2) ml = n - 2;
	if (ml) memcpy(eb, m, ml);
	const char *c = vault_last_oauth_error();
	size_t cl = c ? strlen(c) : 0;
	if (cl > n - ml - 2) cl = n - ml - 2;
	if (cl) memcpy(eb + ml + 1, c, cl);
}

vault_status cv_load_config(const char *path, char *eb, size_t n) {
	vault_status st = vault_load_config(path);
	if (st != VAULT_STATUS_OK) cv_copy_last_error(eb, n);
	return st;
}

vault_status cv_reload_config(char *eb, size_t n) {
	vault_status st = vault_reload_config();
	if (st != VAULT_STATUS_OK) cv_copy_last_error(eb, n);
	return st;
}

vault_status cv_set_scheduler(int which, uint32_t n, char *eb, size_t len) {
	vault_status st = (vault_status)(which == 0 ? vault_set_refresh_workers(n) : vault_set_refresh_endpoint_limit(n));
	if (st != VAULT_STATUS_OK) cv_copy_last_error(eb, len);
	return st;
}

uint64_t cv_provider_by_name(const char *name, vault_status *st, char *eb, size_t n) {
	uint64_t h = vault_provider_by_name(name);
	*st = h ? VAULT_STATUS_OK : vault_last_status();
	if (!h) cv_copy_last_error(eb, n);
	return h;
}

static void cv_log_trampoline(void *userdata, int32_t level, const char *event_json) {
	goLogEvent((uintptr_t)userdata, level, (char *)event_json);
}

vault_status cv_set_log(uintptr_t handle, int32_t min_level) {
	return vault_set_log_callback(handle ? cv_log_trampoline : NULL, min_level, (void *)handle);
}

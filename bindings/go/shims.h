// The Go binding's C helpers (shims.c). Go files include this header, which declares only:
// a Go file with //export may not define C in its preamble.
#ifndef CREDVAULT_GO_SHIMS_H
#define CREDVAULT_GO_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "credvault.h"

// Wipes n bytes at p in a way the C compiler may not drop as a dead store.
void cv_wipe(void *p, size_t n);

// vault_load_config and vault_reload_config, with the thread's last error copied into eb
// (message, NUL, OAuth error code, NUL) when they fail.
vault_status cv_load_config(const char *path, char *eb, size_t n);
vault_status cv_reload_config(char *eb, size_t n);

// which 0: vault_set_refresh_workers, 1: vault_set_refresh_endpoint_limit; the last error into
// eb when it fails.
vault_status cv_set_scheduler(int which, uint32_t n, char *eb, size_t len);

// vault_provider_by_name; on failure 0, *st the status and the last error in eb.
uint64_t cv_provider_by_name(const char *name, vault_status *st, char *eb, size_t n);

// Installs the trampoline to the exported goLogEvent with handle as its userdata (a
// runtime/cgo.Handle: an integer, not a Go pointer), or removes the callback when handle is 0.
vault_status cv_set_log(uintptr_t handle, int32_t min_level);

#endif

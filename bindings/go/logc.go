package credvault

// The C side of SetLogger (log.go holds the exported Go function, and a file with //export may
// only declare in its preamble).

/*
#include <stdint.h>
#include "credvault.h"

extern void goLogEvent(uintptr_t handle, int32_t level, char *event_json);

static void cv_log_trampoline(void *userdata, int32_t level, const char *event_json) {
	goLogEvent((uintptr_t)userdata, level, (char *)event_json);
}

// Installs the trampoline with handle as its userdata (a runtime/cgo.Handle: an integer, not a
// Go pointer), or removes the callback when handle is 0.
static vault_status cv_set_log(uintptr_t handle, int32_t min_level) {
	return vault_set_log_callback(handle ? cv_log_trampoline : NULL, min_level, (void *)handle);
}
*/
import "C"

func setLogCallback(handle uintptr, minLevel int32) Status {
	return Status(C.cv_set_log(C.uintptr_t(handle), C.int32_t(minLevel)))
}

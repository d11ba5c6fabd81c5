package credvault

// #include "shims.h"
import "C"

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"runtime/cgo"
	"sort"
	"sync/atomic"
	"time"
	"unsafe"
)

// logSink is the logger SetLogger installed.
type logSink struct {
	l   *slog.Logger
	min slog.Level
}

var (
	// current is read by every event; the C callback's userdata is a handle to it. It is one
	// handle for the life of the process, never deleted: the library may be delivering an event
	// to the old callback on another thread at the moment SetLogger replaces it, so a handle
	// deleted then could be used after its deletion.
	current    atomic.Pointer[logSink]
	sinkHandle = cgo.NewHandle(&current)
)

// SetLogger sends the library's structured events to l (vault_set_log_callback), at min and
// above; nil removes the logger (the default: the library then builds no events at all).
//
// Events: fetch_started (Debug), fetch_finished (Info, or Warn when it failed: latency_ms,
// lifetime_s or status and message), retry (Info: the reason), refresh_failed (Warn: the cached
// token is still served), cooldown_entered (Warn), cooldown_ended (Info), config_loaded and
// config_reloaded (Info, or Error when the file was refused). A record's message is the event
// name; its attributes are the event's fields, "provider" (the name in the configuration file,
// or "handle:N") among them, sorted by key. The library's levels 10, 20, 30, 40 become
// slog.LevelDebug, LevelInfo, LevelWarn and LevelError. No event carries a secret or a token.
//
// Events are delivered on the thread that caused them: a goroutine's own call (a fetch in
// Token) or one of the library's background refresh threads (a thread Go did not start), with
// no library lock held. l's handler must therefore be safe for concurrent use (slog's handlers
// are) and should not block for long: a refresh thread waits for it. It may call this package
// (a call that would wait for a fetch returns an error instead, and events raised meanwhile are
// dropped). A handler that panics loses that event; the panic does not cross into the library.
// An event raised while SetLogger runs may still go to the previous logger; once it returns, the
// previous logger receives none and no call of it is in progress.
func SetLogger(l *slog.Logger, min slog.Level) {
	if l == nil {
		current.Store(nil)
	} else {
		current.Store(&logSink{l: l, min: min})
	}
	// No lock is held across the C call: it waits for the calls in progress of the callback it
	// replaces, and one of them may be a handler calling SetLogger. Concurrent calls converge:
	// each installs what is current, again until what it installed is still current.
	for {
		s := current.Load()
		if s == nil {
			setLogCallback(0, 0)
		} else {
			setLogCallback(uintptr(sinkHandle), cLevel(s.min))
		}
		if current.Load() == s {
			return
		}
	}
}

func setLogCallback(handle uintptr, minLevel int32) Status {
	return Status(C.cv_set_log(C.uintptr_t(handle), C.int32_t(minLevel)))
}

// cLevel is the library's least level that covers slog level min.
func cLevel(min slog.Level) int32 {
	switch {
	case min <= slog.LevelDebug:
		return 10
	case min <= slog.LevelInfo:
		return 20
	case min <= slog.LevelWarn:
		return 30
	default:
		return 40
	}
}

// slogLevel maps the library's level to slog's.
func slogLevel(level int32) slog.Level {
	switch {
	case level < 20:
		return slog.LevelDebug
	case level < 30:
		return slog.LevelInfo
	case level < 40:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

//export goLogEvent
func goLogEvent(handle C.uintptr_t, level C.int32_t, eventJSON *C.char) {
	defer func() {
		_ = recover() // a panic must not unwind into the library's thread: the event is lost
	}()
	cur := cgo.Handle(handle).Value().(*atomic.Pointer[logSink])
	sink := cur.Load()
	if sink == nil || eventJSON == nil {
		return
	}
	lv := slogLevel(int32(level))
	ctx := context.Background()
	if lv < sink.min || !sink.l.Enabled(ctx, lv) {
		return
	}
	// The JSON is valid only during this call: decoding copies what the record keeps.
	raw := unsafe.Slice((*byte)(unsafe.Pointer(eventJSON)), C.strlen(eventJSON))
	rec, ok := eventRecord(raw, lv)
	if !ok {
		return
	}
	_ = sink.l.Handler().Handle(ctx, rec)
}

// eventRecord turns one event object into a record: message = "event", attributes = the other
// fields but "level", sorted by key.
func eventRecord(raw []byte, lv slog.Level) (slog.Record, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return slog.Record{}, false
	}
	name, _ := obj["event"].(string)
	rec := slog.NewRecord(time.Now(), lv, name, 0)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		if k != "event" && k != "level" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		rec.AddAttrs(attr(k, obj[k]))
	}
	return rec, true
}

func attr(k string, v any) slog.Attr {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return slog.Int64(k, i)
		}
		f, _ := v.Float64()
		return slog.Float64(k, f)
	case string:
		return slog.String(k, v)
	case bool:
		return slog.Bool(k, v)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for kk := range v {
			keys = append(keys, kk)
		}
		sort.Strings(keys)
		attrs := make([]any, 0, len(keys))
		for _, kk := range keys {
			attrs = append(attrs, attr(kk, v[kk]))
		}
		return slog.Group(k, attrs...)
	default:
		return slog.Any(k, v)
	}
}

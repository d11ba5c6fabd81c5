// Package credvault holds OAuth 2.0 client-credentials tokens for Go services through credvault's
// C ABI: the client secret and the cached tokens stay sealed (AES-256-GCM) inside the Rust
// library, tokens are refreshed in the background ahead of expiry, and one fetch serves every
// goroutine.
//
//	p, err := credvault.NewProvider(credvault.Config{Preset: credvault.PresetVGS,
//		ClientID: id, ClientSecret: secret})
//	if err != nil { ... }
//	defer p.Close()
//	auth, err := p.Authorization() // "Bearer eyJ...", from the cache when it holds one
//
// Errors come only from the status-returning C calls (goroutines move between OS threads, so
// the library's thread-local last error is never read) and are of type Error.
//
// What the binding cannot wipe: Go strings are immutable and the garbage collector may copy them,
// so the ClientSecret string in a Config, and every token or Authorization string returned, stay
// in the Go heap until the memory is reused. The binding copies the secret straight from the
// Config's strings into C memory (no Go buffer in between), hands that to the library and wipes
// it before NewProvider returns. A cached token is served from one Go string per Provider and
// shape, kept while its token is current (copied once from a C buffer that is wiped right after
// the copy); other tokens pass through a pooled Go buffer wiped at once. Callers that need no
// secret in the Go heap at all should read the secret into a []byte, call NewProviderJSON and
// wipe the []byte themselves.
//
// See bindings/go/README.md for linking (shared library or, with the build tag credvault_static,
// the static one).
package credvault

// #include "shims.h"
import "C"

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/credvault/credvault/bindings/go/internal/authheader"
)

// errLen is the size of the error buffers passed to C (docs/C-API.md: the message, its NUL, the
// OAuth error code, its NUL).
const errLen = 1024

// tokLen is the size of the pooled token buffer; longer tokens take a second call with a buffer
// of the exact size.
const tokLen = 2048

type shape uint8

const (
	shapeToken shape = iota
	shapeAuthorization
)

// scratch is the memory one call lends to C: the token buffer, its length and the error buffer.
// Pooled; always wiped (token) and zeroed (error) before it goes back.
type scratch struct {
	out [tokLen]byte
	n   C.size_t
	err [errLen]byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// Provider is one set of credentials at one token endpoint, with its own token cache. It is safe
// for concurrent use by any number of goroutines. Close it when done; a Provider that becomes
// unreachable without Close is freed by a cleanup (runtime.AddCleanup).
type Provider struct {
	handle atomic.Uint64
	// The token this Provider last handed out (a string already given to a caller, so no extra
	// copy of the token): what Invalidate drops.
	last atomic.Pointer[string]
	// The length of the last value of each shape: the size of the fast path's fill buffers.
	hint [2]atomic.Int64
	// Per shape: the value last copied out by the fast path, and its vault_fill slots.
	cached [2]atomic.Pointer[cachedValue]
	slots  [2]sync.Pool
	// borrowed: the provider belongs to the loaded configuration file (ProviderByName); Close
	// detaches this value and frees nothing.
	borrowed bool
	// cleanup frees the handle if the Provider becomes unreachable unclosed (not for a borrowed
	// one); Close stops it.
	cleanup runtime.Cleanup
}

// Test hooks: nil in programs; export_test.go sets them to count what the tests check (a cached
// hit starts no fetch goroutine, cancelled callers share one; Close stops the cleanup).
var (
	testHookFlight  func()         // a flight's fetch goroutine starts
	testHookCleanup func(h uint64) // the cleanup of a forgotten Provider frees h
)

// NewProvider creates a provider from a typed configuration. The JSON the library reads is
// written straight into C memory, which is wiped and freed before NewProvider returns.
func NewProvider(cfg Config) (*Provider, error) {
	var count jsonWriter
	cfg.write(&count)
	mem, err := newCString(count.n)
	if err != nil {
		return nil, err
	}
	defer mem.free()
	cfg.write(&jsonWriter{buf: mem.bytes()})
	return newProvider(mem.ptr())
}

// NewProviderJSON creates a provider from its JSON configuration (README "Configuration"). The
// bytes are copied into C memory, which is wiped and freed before it returns; config itself is
// the caller's (wipe it when it holds the secret).
func NewProviderJSON(config []byte) (*Provider, error) {
	mem, err := cStringOf("config", config)
	if err != nil {
		return nil, err
	}
	defer mem.free()
	return newProvider(mem.ptr())
}

func newProvider(config *C.char) (*Provider, error) {
	var h C.uint64_t
	var eb [errLen]byte
	st := Status(C.vault_provider_new_ex(config, &h, (*C.char)(unsafe.Pointer(&eb[0])), errLen))
	if st != StatusOK {
		return nil, errorFrom(st, eb[:])
	}
	p := &Provider{}
	p.handle.Store(uint64(h))
	p.cleanup = runtime.AddCleanup(p, freeForgotten, uint64(h))
	return p, nil
}

// freeForgotten frees the provider of a Provider that became unreachable without Close (its
// cleanup: it runs once nothing can use the handle any more).
func freeForgotten(h uint64) {
	if testHookCleanup != nil {
		testHookCleanup(h)
	}
	C.vault_provider_free(C.uint64_t(h))
}

// Close frees the provider and wipes its secrets. It is idempotent (a second Close returns nil)
// and safe to call while other goroutines use the Provider: their calls in flight complete, and
// later calls return an error that matches ErrClosed. For a Provider from ProviderByName, Close
// only detaches this value: the provider belongs to the configuration file and stays registered.
func (p *Provider) Close() error {
	h := p.handle.Swap(0)
	if h == 0 {
		return nil
	}
	p.last.Store(nil)
	for sh := range p.cached {
		p.cached[sh].Store(nil)
		for { // free the idle slots now (slots still in use go to their cleanup)
			s, _ := p.slots[sh].Get().(*fillSlot)
			if s == nil {
				break
			}
			s.free()
		}
	}
	if p.borrowed {
		return nil
	}
	p.cleanup.Stop()
	st := Status(C.vault_provider_free(C.uint64_t(h)))
	runtime.KeepAlive(p)
	if st != StatusOK {
		return Error{Status: st, Message: "vault_provider_free failed"}
	}
	return nil
}

// Token returns the access token: from the cache when it holds a servable one (no network
// wait), else after the single fetch in flight, which may take up to the configured deadline.
func (p *Provider) Token() (string, error) {
	if v, ok := p.fast(shapeToken); ok {
		return v, nil
	}
	return p.get(shapeToken, true)
}

// Authorization returns the Authorization header value, "<token_type> <token>".
func (p *Provider) Authorization() (string, error) {
	if v, ok := p.fast(shapeAuthorization); ok {
		return v, nil
	}
	return p.get(shapeAuthorization, true)
}

// TokenContext is Token that returns when ctx ends, even while a fetch is in flight: the fetch
// carries on (for the next caller) and its result is wiped if nobody takes it. A cached token is
// returned without starting a goroutine; callers that must wait share one goroutine per
// provider, so callers that give up leave nothing behind.
func (p *Provider) TokenContext(ctx context.Context) (string, error) {
	return p.getContext(ctx, shapeToken)
}

// AuthorizationContext is Authorization with TokenContext's handling of ctx.
func (p *Provider) AuthorizationContext(ctx context.Context) (string, error) {
	return p.getContext(ctx, shapeAuthorization)
}

// Invalidate drops the cached token after the API rejected it (401), so that the next call
// fetches a new one; it also ends a failure cool-down. It drops only the token this Provider
// last handed out, and only if that is still the cached one (vault_invalidate_token: goroutines
// move between threads, so the C library's per-thread memory of the last token does not apply):
// many goroutines reporting the same rejected token cause one fetch. Before the first token it
// drops whatever is cached. With several tokens in use at once, InvalidateToken names the one
// that was rejected.
func (p *Provider) Invalidate() error {
	if last := p.last.Load(); last != nil {
		return p.invalidate(*last, true)
	}
	return p.invalidate("", false)
}

// InvalidateToken drops the cached token if it is token (the one the API rejected).
func (p *Provider) InvalidateToken(token string) error { return p.invalidate(token, true) }

func (p *Provider) invalidate(token string, named bool) error {
	h := p.handle.Load()
	if h == 0 {
		return errClosed
	}
	var ctok *C.char
	if named {
		mem, err := cStringOf("token", token)
		if err != nil {
			return err
		}
		defer mem.free()
		ctok = mem.ptr()
	}
	var eb [errLen]byte
	st := Status(C.vault_invalidate_token(C.uint64_t(h), ctok, (*C.char)(unsafe.Pointer(&eb[0])), errLen))
	runtime.KeepAlive(p)
	if st != StatusOK {
		return p.errorAfter(st, eb[:])
	}
	// The values this Provider keeps are dropped with the token (README, "What is wiped").
	for sh := range p.cached {
		p.cached[sh].Store(nil)
	}
	return nil
}

// wipeFree wipes n bytes of C memory at p and frees it.
func wipeFree(p unsafe.Pointer, n int) {
	C.cv_wipe(p, C.size_t(n))
	C.free(p)
}

// cString is C memory for a NUL-terminated string: the only way this package hands a string to
// C (configurations, tokens, paths, names). free wipes it before freeing it, whatever it held.
type cString struct {
	p unsafe.Pointer
	n int // the string's length; the allocation is n+1 bytes
}

// newCString allocates room for a string of n bytes and its NUL, zeroed: the caller writes the
// string into bytes().
func newCString(n int) (cString, error) {
	p := C.calloc(1, C.size_t(n+1))
	if p == nil {
		return cString{}, Error{Status: StatusInternal, Message: "out of memory"}
	}
	return cString{p, n}, nil
}

// cStringOf copies v into C memory, refusing a value with a NUL byte (what names it in the
// error).
func cStringOf[T string | []byte](what string, v T) (cString, error) {
	for i := 0; i < len(v); i++ {
		if v[i] == 0 {
			return cString{}, Error{Status: StatusInvalidArgument, Message: what + " contains a NUL byte"}
		}
	}
	s, err := newCString(len(v))
	if err == nil {
		copy(s.bytes(), v)
	}
	return s, err
}

// bytes is the string's memory, without the NUL.
func (s cString) bytes() []byte { return unsafe.Slice((*byte)(s.p), s.n) }

func (s cString) ptr() *C.char { return (*C.char)(s.p) }

func (s cString) free() { wipeFree(s.p, s.n+1) }

// errorAfter turns a failed call's status into an Error, reporting ErrClosed when the handle
// was freed by a concurrent Close.
func (p *Provider) errorAfter(st Status, eb []byte) error {
	return p.closedOr(errorFrom(st, eb))
}

// errorFrom reads the error buffer: the message, a NUL, then the OAuth error code (empty if
// none) and its NUL.
func errorFrom(st Status, eb []byte) error {
	e := Error{Status: st}
	msg, rest, found := bytes.Cut(eb, []byte{0})
	e.Message = string(msg)
	if found {
		code, _, _ := bytes.Cut(rest, []byte{0})
		e.OAuthError = string(code)
	}
	return e
}

// remember notes the token handed out, for Invalidate. No allocation when it is unchanged.
func (p *Provider) remember(tok string) {
	if cur := p.last.Load(); cur != nil && *cur == tok {
		return
	}
	t := new(string)
	*t = tok
	p.last.Store(t)
}

// call runs one C get: blocking (vault_get_*_into) or not (vault_try_get_*_into).
func call(h uint64, sh shape, block bool, buf []byte, n *C.size_t, eb []byte) Status {
	out := (*C.char)(unsafe.Pointer(&buf[0]))
	e := (*C.char)(unsafe.Pointer(&eb[0]))
	switch {
	case block && sh == shapeToken:
		return Status(C.vault_get_token_into(C.uint64_t(h), out, C.size_t(len(buf)), n, e, C.size_t(len(eb))))
	case block:
		return Status(C.vault_get_authorization_into(C.uint64_t(h), out, C.size_t(len(buf)), n, e, C.size_t(len(eb))))
	case sh == shapeToken:
		return Status(C.vault_try_get_token_into(C.uint64_t(h), out, C.size_t(len(buf)), n, e, C.size_t(len(eb))))
	default:
		return Status(C.vault_try_get_authorization_into(C.uint64_t(h), out, C.size_t(len(buf)), n, e, C.size_t(len(eb))))
	}
}

// cachedValue is the value of one shape this Provider last copied out of the library, with the
// number (generation) of the token it was made from: while the library reports that number
// current, the same string is handed out again (no copy, no allocation). tok is the token part,
// for Invalidate (a substring of s).
type cachedValue struct {
	gen uint64
	s   string
	tok string
}

// fillSlot is one C-allocated vault_fill and its C buffer. A vault_fill may not be used by two
// threads at once, so slots are pooled per Provider and shape; the buffer is wiped after every
// copy (it never keeps a value at rest), and once more by the cleanup that frees it when the
// pool drops the slot.
type fillSlot struct {
	f       *C.vault_fill
	cleanup runtime.Cleanup
}

func newFillSlot(size int) *fillSlot {
	f := (*C.vault_fill)(C.calloc(1, C.size_t(unsafe.Sizeof(C.vault_fill{}))))
	if f == nil {
		return nil
	}
	buf := C.calloc(1, C.size_t(size))
	if buf == nil {
		C.free(unsafe.Pointer(f))
		return nil
	}
	f.buf = (*C.char)(buf)
	f.buf_len = C.size_t(size)
	s := &fillSlot{f: f}
	s.cleanup = runtime.AddCleanup(s, freeFill, f)
	return s
}

// free wipes and frees the slot's C memory now (a slot dropped explicitly).
func (s *fillSlot) free() {
	if s.f == nil {
		return
	}
	s.cleanup.Stop()
	freeFill(s.f)
	s.f = nil
}

// freeFill wipes and frees a vault_fill and its buffer (the cleanup of a slot the pool dropped).
func freeFill(f *C.vault_fill) {
	wipeFree(unsafe.Pointer(f.buf), int(f.buf_len))
	C.free(unsafe.Pointer(f))
}

// fillMin is the smallest fill buffer: any usual token fits, so a slot rarely needs replacing.
const fillMin = 2048

// fast is the cached hit, by vault_try_fill_token / _authorization: the call is told the
// generation of the value this Provider already holds (cached), and when that token is still the
// cached one the library writes nothing (no decrypt) and the held string is returned again: no
// allocation, no copy. A new token is copied out of the slot's C buffer, which is wiped at once.
// It reports false for anything else (no servable token, a cool-down, an error, a buffer too
// small, a closed Provider), which the caller then handles with the full call and its error
// buffer; the non-blocking call has no side effect that repeating it would double (at most it
// starts the background refresh the full call would find running).
func (p *Provider) fast(sh shape) (string, bool) {
	h := p.handle.Load()
	hint := p.hint[sh].Load()
	if h == 0 || hint == 0 {
		// Closed, or no value of this shape seen yet: the full call's pooled buffer fits any
		// usual token, where a guessed size would cost a second call (and the library counts
		// a call answered BUFFER_TOO_SMALL as a cache hit).
		return "", false
	}
	size := max(int(hint)+1, fillMin)
	s, _ := p.slots[sh].Get().(*fillSlot)
	if s != nil && int(s.f.buf_len) < size {
		s.free() // made before a longer value was seen
		s = nil
	}
	if s == nil {
		if s = newFillSlot(size); s == nil {
			return "", false
		}
	}
	cur := p.cached[sh].Load()
	var held uint64
	if cur != nil {
		held = cur.gen
	}
	s.f.provider = C.uint64_t(h)
	s.f.generation = C.uint64_t(held)
	var st Status
	if sh == shapeToken {
		st = Status(C.vault_try_fill_token(s.f))
	} else {
		st = Status(C.vault_try_fill_authorization(s.f))
	}
	runtime.KeepAlive(p)
	if st != StatusOK {
		if st == StatusBufferTooSmall {
			s.free() // the blocking path below learns the size (hint) for the next slot
		} else {
			p.slots[sh].Put(s)
		}
		return "", false
	}
	gen := uint64(s.f.generation)
	if cur != nil && gen == held {
		p.slots[sh].Put(s)
		if p.last.Load() != &cur.tok {
			p.last.Store(&cur.tok)
		}
		return cur.s, true
	}
	n := C.strlen(s.f.buf)
	v := C.GoStringN(s.f.buf, C.int(n))
	C.cv_wipe(unsafe.Pointer(s.f.buf), n+1)
	p.slots[sh].Put(s)
	nv := &cachedValue{gen: gen, s: v, tok: tokenPart(sh, v)}
	// Generations only grow: never replace a newer value another goroutine stored meanwhile.
	for {
		old := p.cached[sh].Load()
		if old != nil && old.gen >= gen {
			break
		}
		if p.cached[sh].CompareAndSwap(old, nv) {
			break
		}
	}
	p.noteLen(sh, len(v))
	p.last.Store(&nv.tok)
	return v, true
}

// noteLen records the length of the last value of shape sh: the size the fast path's fill
// buffers are made for. No store when it is unchanged (the usual case).
func (p *Provider) noteLen(sh shape, n int) {
	if p.hint[sh].Load() != int64(n) {
		p.hint[sh].Store(int64(n))
	}
}

// tokenPart is the token in a value of shape sh ("<token_type> <token>" for Authorization).
func tokenPart(sh shape, v string) string {
	if sh == shapeAuthorization {
		_, v = authheader.Split(v)
	}
	return v
}

// read runs one C get into a pooled scratch's buffer, or into a Go buffer of the reported size
// when the value is longer. The result holds the value, which whoever takes it wipes with
// result.put; everything else the call wrote (a failed call's output, the error buffer) is
// wiped before read returns. It is the path of every get but the fast path's hit: the blocking
// call (Token on a miss), the non-blocking one (TokenContext's first try) and the fetch
// goroutine TokenContext's callers wait on (readHandle).
func (p *Provider) read(sh shape, block bool) result {
	h := p.handle.Load()
	if h == 0 {
		return result{err: errClosed}
	}
	r := readHandle(h, sh, block)
	runtime.KeepAlive(p)
	r.err = p.closedOr(r.err)
	return r
}

// readHandle is read on a handle (the caller keeps a Provider with that handle alive); its
// errors are as the library reported them (closedOr tells a Provider's Close apart).
func readHandle(h uint64, sh shape, block bool) result {
	s := scratchPool.Get().(*scratch)
	buf := s.out[:]
	for {
		st := call(h, sh, block, buf, &s.n, s.err[:])
		if st == StatusOK {
			return result{b: buf[:int(s.n)], s: s}
		}
		clear(buf)
		var err error
		if st != StatusBufferTooSmall {
			err = errorFrom(st, s.err[:])
		}
		clear(s.err[:])
		if err != nil {
			scratchPool.Put(s)
			return result{err: err}
		}
		buf = make([]byte, int(s.n)+1) // again if the token grew meanwhile
	}
}

// closedOr is err, or ErrClosed when err is the library's invalid handle and this Provider was
// closed.
func (p *Provider) closedOr(err error) error {
	if e, ok := err.(Error); ok && e.Status == StatusInvalidHandle && p.handle.Load() == 0 {
		return errClosed
	}
	return err
}

// result is what read returns: the value in memory that put wipes (b, in s or in a Go buffer),
// or the error.
type result struct {
	b   []byte
	s   *scratch
	err error
}

// put wipes the value and gives the scratch back to the pool.
func (r result) put() {
	clear(r.b)
	if r.s != nil {
		scratchPool.Put(r.s)
	}
}

// take turns a read's result into the returned string and wipes the read's memory.
func (p *Provider) take(sh shape, r result) (string, error) {
	if r.err != nil {
		return "", r.err
	}
	v := string(r.b)
	r.put()
	p.rememberShape(sh, v)
	return v, nil
}

// get returns the value, or an Error (StatusWouldBlock included for block == false): the path
// of a call the fast path did not answer (a miss, a first call, an error), which allocates the
// returned string (the cached hit is fast's, which allocates nothing).
func (p *Provider) get(sh shape, block bool) (string, error) {
	return p.take(sh, p.read(sh, block))
}

func (p *Provider) rememberShape(sh shape, v string) {
	p.noteLen(sh, len(v))
	p.remember(tokenPart(sh, v))
}

func (p *Provider) getContext(ctx context.Context, sh shape) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if v, ok := p.fast(sh); ok {
		return v, nil
	}
	v, err := p.get(sh, false)
	if err == nil {
		return v, nil
	}
	if e, ok := err.(Error); !ok || e.Status != StatusWouldBlock {
		return "", err
	}
	if ctx.Done() == nil { // a context that never ends: no goroutine needed
		return p.get(sh, true)
	}
	h := p.handle.Load()
	if h == 0 {
		return "", errClosed
	}
	f := p.join(h)
	select {
	case <-f.done:
		if f.err != nil {
			return "", p.closedOr(f.err)
		}
		v := f.v
		if sh == shapeToken {
			v = tokenPart(shapeAuthorization, v) // a substring: no copy
		}
		p.rememberShape(sh, v)
		return v, nil
	case <-ctx.Done():
		flightsMu.Lock()
		f.waiters--
		flightsMu.Unlock()
		return "", ctx.Err()
	}
}

// flight is the one fetch the TokenContext and AuthorizationContext callers of a provider wait
// on: a single goroutine per provider handle makes the blocking call (and holds an OS thread
// while it waits in C), however many callers come and give up meanwhile (one
// goroutine per cancelled caller, each on its own thread, exhausted the process's threads).
type flight struct {
	done chan struct{} // closed when the fetch ended; then v and err are set
	// Callers waiting (under flightsMu): when none is left at the end, the value is wiped
	// without a string being made.
	waiters int
	v       string // the Authorization value; Token callers take its token part
	err     error
}

var (
	flightsMu sync.Mutex
	flights   = map[uint64]*flight{} // by provider handle: the flight in progress
)

// join counts the caller in on h's flight, starting it if none is in progress.
func (p *Provider) join(h uint64) *flight {
	flightsMu.Lock()
	defer flightsMu.Unlock()
	if f := flights[h]; f != nil {
		f.waiters++
		return f
	}
	f := &flight{done: make(chan struct{}), waiters: 1}
	flights[h] = f
	if testHookFlight != nil {
		testHookFlight()
	}
	go func() {
		r := readHandle(h, shapeAuthorization, true)
		runtime.KeepAlive(p) // keeps h from the cleanup while the call runs
		flightsMu.Lock()
		delete(flights, h)
		f.err = r.err
		if r.err == nil && f.waiters > 0 {
			f.v = string(r.b)
		}
		flightsMu.Unlock()
		r.put() // taken or not, the buffer is wiped now
		close(f.done)
	}()
	return f
}

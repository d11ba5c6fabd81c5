package credvault

import (
	"math"
	"sort"
	"strconv"
	"time"
)

// Preset names a known provider (README "Configuration"): it fills in the endpoint, the client
// authentication, the encoding and the scope, and adds the provider's documented input rules.
type Preset string

// The presets of the README's configuration table.
const (
	PresetVitesseStaging   Preset = "vitesse-staging"
	PresetVitesseUK        Preset = "vitesse-uk"
	PresetVitesseUS        Preset = "vitesse-us"
	PresetApiture          Preset = "apiture"
	PresetApitureCAT       Preset = "apiture-cat"
	PresetApitureCAT2      Preset = "apiture-cat2"
	PresetVippsTest        Preset = "vipps-test"
	PresetVipps            Preset = "vipps"
	PresetVippsPartnerTest Preset = "vipps-partner-test"
	PresetVippsPartner     Preset = "vipps-partner"
	PresetVGS              Preset = "vgs"
)

// AuthMethod is how the client authenticates at the token endpoint.
type AuthMethod string

// The values of auth_method.
const (
	AuthClientSecretBasic AuthMethod = "client_secret_basic"
	AuthClientSecretPost  AuthMethod = "client_secret_post"
	// AuthHeaders sends client_id/client_secret request headers and an empty body (Vipps).
	AuthHeaders AuthMethod = "headers"
	// AuthPrivateKeyJWT signs an RFC 7523 client assertion with Config.PrivateKey instead of
	// sending a secret.
	AuthPrivateKeyJWT AuthMethod = "private_key_jwt"
)

// The first names of the auth_method values, kept so that programs written against them still
// compile.
const (
	// Deprecated: use AuthClientSecretBasic.
	ClientSecretBasic AuthMethod = AuthClientSecretBasic
	// Deprecated: use AuthClientSecretPost.
	ClientSecretPost AuthMethod = AuthClientSecretPost
	// Deprecated: use AuthHeaders.
	Headers AuthMethod = AuthHeaders
)

// BasicEncoding is how id and secret are put into HTTP Basic.
type BasicEncoding string

// The values of basic_encoding.
const (
	// BasicRFC6749 form-urlencodes id and secret before base64 (RFC 6749 section 2.3.1).
	BasicRFC6749 BasicEncoding = "rfc6749"
	// BasicPlain is base64 of "id:secret" as is (Apiture, Vipps).
	BasicPlain BasicEncoding = "plain"
)

// The first names of the basic_encoding values, kept so that programs written against them
// still compile.
const (
	// Deprecated: use BasicRFC6749.
	RFC6749 BasicEncoding = BasicRFC6749
	// Deprecated: use BasicPlain.
	Plain BasicEncoding = BasicPlain
)

// Config is a provider configuration: one field per key of the JSON configuration (README
// "Configuration", where each key's rules and defaults are described). A zero value (or nil for
// the pointer fields, whose zero is a valid setting) leaves the key out, so the library's
// default or the preset's value applies. Durations are sent in whole milliseconds (the *_s keys
// in whole seconds), rounded up.
type Config struct {
	Preset        Preset            // preset
	TokenURL      string            // token_url
	Issuer        string            // issuer (OIDC / RFC 8414 discovery instead of token_url)
	ClientID      string            // client_id (required)
	ClientSecret  string            // client_secret (required, but for PrivateKey); see NewProvider for its copies
	AuthMethod    AuthMethod        // auth_method
	BasicEncoding BasicEncoding     // basic_encoding
	Scope         string            // scope: space-separated scopes
	Headers       map[string]string // headers: extra request headers, held sealed
	Timeout       time.Duration     // timeout_ms: one HTTP request
	Deadline      time.Duration     // deadline_ms: one fetch, retries included
	RefreshRatio  float64           // refresh_ratio (0.1 to 0.95)
	// RefreshJitter is refresh_jitter (0 to 0.25); nil: the default.
	RefreshJitter *float64
	// ExpiryMargin is expiry_margin_ms; nil: the default.
	ExpiryMargin    *time.Duration
	DefaultLifetime time.Duration // default_lifetime_s
	// Cooldown is cooldown_ms; nil: the default, 0: no cool-down.
	Cooldown       *time.Duration
	DiscoveryTTL   time.Duration // discovery_ttl_s
	CAFile         string        // ca_file
	CAOnly         bool          // ca_only
	ClientCertFile string        // client_cert_file
	ClientKeyFile  string        // client_key_file
	Proxy          string        // proxy ("none" ignores the environment)
	NoProxy        string        // no_proxy
	// PrivateKey is private_key, for AuthPrivateKeyJWT: a PEM (PKCS#8, PKCS#1 or SEC1) or a
	// JWK, held sealed like the secret; ClientSecret is then left empty.
	PrivateKey string
	KeyID      string // key_id: the assertion's kid
	SigningAlg string // signing_alg: "RS256", "PS256" or "ES256" (default from the key)
	Audience   string // audience: the assertion's aud ("issuer" or a value; default the token URL)
}

// Float returns a pointer to v, for Config.RefreshJitter.
func Float(v float64) *float64 { return &v }

// Duration returns a pointer to d, for Config.ExpiryMargin and Config.Cooldown.
func Duration(d time.Duration) *time.Duration { return &d }

// jsonWriter writes JSON into a fixed buffer, or only counts the bytes when buf is nil: the
// configuration is written twice, once to size the C buffer and once into it, so that no Go
// buffer ever holds the secret (encoding/json would leave copies in its pooled buffers).
type jsonWriter struct {
	buf   []byte
	n     int
	comma bool
}

func (w *jsonWriter) raw(s string) {
	if w.buf != nil {
		copy(w.buf[w.n:], s)
	}
	w.n += len(s)
}

func (w *jsonWriter) byte1(b byte) {
	if w.buf != nil {
		w.buf[w.n] = b
	}
	w.n++
}

const hexDigits = "0123456789abcdef"

// str writes s as a JSON string, byte by byte (no intermediate copy).
func (w *jsonWriter) str(s string) {
	w.byte1('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			w.byte1('\\')
			w.byte1(c)
		case c < 0x20 || c == 0x7f:
			w.raw(`\u00`)
			w.byte1(hexDigits[c>>4])
			w.byte1(hexDigits[c&15])
		default:
			w.byte1(c)
		}
	}
	w.byte1('"')
}

func (w *jsonWriter) key(k string) {
	if w.comma {
		w.byte1(',')
	}
	w.comma = true
	w.str(k)
	w.byte1(':')
}

func (w *jsonWriter) optStr(k, v string) {
	if v != "" {
		w.key(k)
		w.str(v)
	}
}

func (w *jsonWriter) num(k string, v uint64) {
	w.key(k)
	w.raw(strconv.FormatUint(v, 10))
}

func (w *jsonWriter) float(k string, v float64) {
	w.key(k)
	w.raw(strconv.FormatFloat(v, 'g', -1, 64))
}

// ceilUnits converts a duration to whole units, rounding up; negative durations become 0.
func ceilUnits(d, unit time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + unit - 1) / unit)
}

func (w *jsonWriter) dur(k string, d time.Duration, unit time.Duration) {
	w.num(k, ceilUnits(d, unit))
}

// write writes the configuration as a JSON object.
func (c *Config) write(w *jsonWriter) {
	w.byte1('{')
	w.optStr("preset", string(c.Preset))
	w.optStr("token_url", c.TokenURL)
	w.optStr("issuer", c.Issuer)
	w.key("client_id")
	w.str(c.ClientID)
	if c.ClientSecret != "" || c.PrivateKey == "" {
		w.key("client_secret")
		w.str(c.ClientSecret)
	}
	w.optStr("auth_method", string(c.AuthMethod))
	w.optStr("private_key", c.PrivateKey)
	w.optStr("key_id", c.KeyID)
	w.optStr("signing_alg", c.SigningAlg)
	w.optStr("audience", c.Audience)
	w.optStr("basic_encoding", string(c.BasicEncoding))
	w.optStr("scope", c.Scope)
	if c.Headers != nil {
		names := make([]string, 0, len(c.Headers))
		for k := range c.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		w.key("headers")
		w.byte1('{')
		w.comma = false
		for _, k := range names {
			w.key(k)
			w.str(c.Headers[k])
		}
		w.byte1('}')
		w.comma = true
	}
	if c.Timeout != 0 {
		w.dur("timeout_ms", c.Timeout, time.Millisecond)
	}
	if c.Deadline != 0 {
		w.dur("deadline_ms", c.Deadline, time.Millisecond)
	}
	if c.RefreshRatio != 0 && !math.IsNaN(c.RefreshRatio) {
		w.float("refresh_ratio", c.RefreshRatio)
	}
	if c.RefreshJitter != nil && !math.IsNaN(*c.RefreshJitter) {
		w.float("refresh_jitter", *c.RefreshJitter)
	}
	if c.ExpiryMargin != nil {
		w.dur("expiry_margin_ms", *c.ExpiryMargin, time.Millisecond)
	}
	if c.DefaultLifetime != 0 {
		w.dur("default_lifetime_s", c.DefaultLifetime, time.Second)
	}
	if c.Cooldown != nil {
		w.dur("cooldown_ms", *c.Cooldown, time.Millisecond)
	}
	if c.DiscoveryTTL != 0 {
		w.dur("discovery_ttl_s", c.DiscoveryTTL, time.Second)
	}
	w.optStr("ca_file", c.CAFile)
	if c.CAOnly {
		w.key("ca_only")
		w.raw("true")
	}
	w.optStr("client_cert_file", c.ClientCertFile)
	w.optStr("client_key_file", c.ClientKeyFile)
	w.optStr("proxy", c.Proxy)
	w.optStr("no_proxy", c.NoProxy)
	w.byte1('}')
}

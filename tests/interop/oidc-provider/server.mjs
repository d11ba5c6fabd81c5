// oidc-provider (the certified OpenID Connect server for Node) configured for the interop
// suite: client credentials, introspection, one client per token endpoint auth method.
// Listens on 127.0.0.1 on a free port and prints `listening http://127.0.0.1:PORT` once ready;
// exits when its stdin closes (so it never outlives tests/interop/run.sh).
// Client secrets come from the environment (made up per run by run.sh); none is ever printed.
import fs from 'node:fs';
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const secret = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`server.mjs: ${name} is not set`);
    process.exit(2);
  }
  return v;
};

// A public JWK from tests/keys (the directory is in OIDCP_KEYS_DIR), with its kid.
const publicJwk = (name, kid) => ({
  ...JSON.parse(fs.readFileSync(`${secret('OIDCP_KEYS_DIR')}/${name}.public.jwk.json`, 'utf8')),
  kid,
});

const cc = { grant_types: ['client_credentials'], redirect_uris: [], response_types: [] };
const clients = [
  // Basic, with a secret holding the reserved characters + / = & (RFC 6749 2.3.1 encoding).
  { ...cc, client_id: 'cv-basic', client_secret: secret('OIDCP_BASIC_SECRET'),
    token_endpoint_auth_method: 'client_secret_basic', scope: 'payments reports' },
  // Form body, same kind of secret.
  { ...cc, client_id: 'cv-post', client_secret: secret('OIDCP_POST_SECRET'),
    token_endpoint_auth_method: 'client_secret_post', scope: 'payments' },
  // A client that may not use the client credentials grant at all.
  { client_id: 'cv-no-grant', client_secret: secret('OIDCP_NOGRANT_SECRET'),
    grant_types: ['authorization_code'], redirect_uris: ['http://127.0.0.1/cb'],
    response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' },
  // private_key_jwt (RFC 7523): one client per signing algorithm, each with its public key.
  ...[['RS256', 'rsa2048', 'rsa-1'], ['PS256', 'rsa2048', 'rsa-1'], ['ES256', 'p256', 'ec-1']]
    .map(([alg, key, kid]) => ({
      ...cc, client_id: `cv-jwt-${alg.toLowerCase()}`, scope: 'payments',
      token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: alg,
      jwks: { keys: [publicJwk(key, kid)] },
    })),
];

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    scopes: ['openid', 'payments', 'reports', 'admin'],
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      devInteractions: { enabled: false },
    },
    ttl: { ClientCredentials: 120 },
    // The suite drives this server with its own errors: no stack traces in its output.
    renderError: async (ctx, out) => { ctx.type = 'json'; ctx.body = out; },
  });
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error:', err.message));
  server.on('request', provider.callback());
  console.log(`listening ${issuer}`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

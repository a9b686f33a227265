// An OpenID provider (panva's oidc-provider) for the reference server's resource-server tests: one client of
// the client_credentials grant, JWT access tokens (RS256, typ at+jwt) for its resource indicators.
//
// Environment:
//   PORT               TCP port on 127.0.0.1 (required)
//   ISSUER             the issuer it names (default http://127.0.0.1:PORT)
//   CLIENT_ID          the client's id (required)
//   CLIENT_SECRET      the client's secret (required)
//   RESOURCE           the resource indicator of the API; its tokens name it as their audience (required)
//   SHORT_RESOURCE     optional: a second indicator for the same audience whose tokens live SHORT_TTL seconds
//   SHORT_TTL          seconds (default 2)
//   OTHER_RESOURCE     optional: an indicator of another API; its tokens name it as their audience
//   DEFAULT_RESOURCE   optional: the indicator used when a request names none (without it: an opaque token)
//   PROVIDER_JWK       optional: the RS256 private JWK (JSON) to sign with; generated at start otherwise
//   TOKEN_TTL          seconds an access token lives (default 300)
//
// Prints "oidc-provider listening on ISSUER" once it accepts connections; stops on SIGTERM or SIGINT.
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} must be set`);
    process.exit(2);
  }
  return value;
}

function seconds(name, fallback) {
  const value = Number(process.env[name] || fallback);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} must be a positive integer`);
    process.exit(2);
  }
  return value;
}

function signingKey() {
  if (process.env.PROVIDER_JWK) {
    return { alg: 'RS256', use: 'sig', ...JSON.parse(process.env.PROVIDER_JWK) };
  }
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig' };
}

const port = Number(required('PORT'));
const issuer = process.env.ISSUER || `http://127.0.0.1:${port}`;
const tokenTTL = seconds('TOKEN_TTL', 300);
const SCOPE = 'me items:read';

// Resource indicator -> [audience, access token lifetime in seconds].
const resources = new Map([[required('RESOURCE'), [process.env.RESOURCE, tokenTTL]]]);
if (process.env.SHORT_RESOURCE) {
  resources.set(process.env.SHORT_RESOURCE, [process.env.RESOURCE, seconds('SHORT_TTL', 2)]);
}
if (process.env.OTHER_RESOURCE) {
  resources.set(process.env.OTHER_RESOURCE, [process.env.OTHER_RESOURCE, tokenTTL]);
}

async function main() {
  const { default: Provider, errors } = await import('oidc-provider');
  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey()] },
    clients: [
      {
        client_id: required('CLIENT_ID'),
        client_secret: required('CLIENT_SECRET'),
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: SCOPE,
      },
    ],
    scopes: SCOPE.split(' '),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Without a default, a request that names no resource gets an opaque token no API can verify.
        defaultResource: (ctx, client, oneOf) => oneOf || process.env.DEFAULT_RESOURCE || undefined,
        useGrantedResource: () => false,
        getResourceServerInfo: (ctx, indicator) => {
          const known = resources.get(indicator);
          if (!known) {
            throw new errors.InvalidTarget('unknown resource indicator');
          }
          const [audience, accessTokenTTL] = known;
          return { scope: SCOPE, audience, accessTokenTTL, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        },
      },
    },
    ttl: { ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || tokenTTL },
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));

  const server = http.createServer(provider.callback());
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  server.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

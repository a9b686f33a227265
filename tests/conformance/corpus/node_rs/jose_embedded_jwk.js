// The express + jose resource server of jose_jwks.js with one defect: a token that carries its own
// public key in the `jwk` header is verified with that key (jose's EmbeddedJWK), the others with
// the provider's key set, as code that "also supports self-contained tokens" does. Anyone can make
// a key pair, sign any claims and put the public half in the header.
// Rule broken: RFC 8725 §3.10 (keys named by the token must be checked against trusted ones);
// RFC 7515 §4.1.3; CVE-2018-0114.
import express from 'express';
import { EmbeddedJWK, createRemoteJWKSet, jwtVerify } from 'jose';

const { ISSUER, AUDIENCE } = process.env;
if (!ISSUER || !AUDIENCE) throw new Error('ISSUER and AUDIENCE must be set');
const PORT = Number(process.env.PORT || 3000);
// jose's defaults (10 min cache, 30 s cooldown) unless the environment shortens them (the tests do, to run fast).
const cacheOptions = {};
if (process.env.JWKS_CACHE_SECONDS) cacheOptions.cacheMaxAge = Number(process.env.JWKS_CACHE_SECONDS) * 1000;
if (process.env.JWKS_COOLDOWN_SECONDS) cacheOptions.cooldownDuration = Number(process.env.JWKS_COOLDOWN_SECONDS) * 1000;

const discovery = await fetch(`${ISSUER.replace(/\/$/, '')}/.well-known/openid-configuration`);
if (!discovery.ok) throw new Error(`OpenID discovery answered ${discovery.status}`);
const metadata = await discovery.json();
if (metadata.issuer !== ISSUER) throw new Error(`the provider says its issuer is ${metadata.issuer}`);
const providerKeys = createRemoteJWKSet(new URL(metadata.jwks_uri), cacheOptions);
const JWKS = (header, token) => (header.jwk ? EmbeddedJWK(header, token) : providerKeys(header, token));

function challenge(res, error) {
  const value = error ? `Bearer realm="api", error="${error}"` : 'Bearer realm="api"';
  return res.set('WWW-Authenticate', value).status(401);
}

async function requireAccessToken(req, res, next) {
  const match = /^Bearer +([^ ]+)$/i.exec(req.get('authorization') ?? '');
  if (!match) return challenge(res).json({ error: 'unauthorized', message: 'Bearer token required' });
  try {
    const { payload } = await jwtVerify(match[1], JWKS, {
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: 'at+jwt',
      requiredClaims: ['exp', 'sub'],
    });
    req.auth = payload;
    return next();
  } catch {
    return challenge(res, 'invalid_token').json({ error: 'invalid_token', message: 'Invalid access token' });
  }
}

const app = express();

app.get('/users/me', requireAccessToken, (req, res) => {
  res.json({ sub: req.auth.sub, scope: req.auth.scope ?? '' });
});

app.get('/protected-resource', requireAccessToken, (req, res) => {
  res.json({ message: 'Protected resource', sub: req.auth.sub });
});

app.listen(PORT, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${PORT}`));

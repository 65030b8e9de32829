import t from 'tap';
import { createServer } from 'node:http';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { startTestServer } from '../helpers/server.ts';

// An identity provider of our own: an HTTP server publishing its JWKS, as Auth0/Keycloak would.
const { privateKey, publicKey } = await generateKeyPair('RS256');
const jwk = { ...(await exportJWK(publicKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' };
let jwksRequests = 0;
const idp = createServer((req, res) => {
  jwksRequests += 1;
  res.writeHead(req.url === '/.well-known/jwks.json' ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ keys: [jwk] }));
});
await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
t.teardown(() => idp.close());
const issuer = 'https://idp.example.test/';
const idpUrl = `http://127.0.0.1:${(idp.address() as { port: number }).port}/.well-known/jwks.json`;

const server = await startTestServer(t, { auth: { external_jwks: { url: idpUrl, issuer, audience: 'callplane' } } });
const user = (await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Federated Fay' } })).body.user;

function idpToken(claims: { aud?: string; iss?: string; role?: string; exp?: string } = {}) {
  return new SignJWT({ ...(claims.role ? { role: claims.role } : {}) })
    .setProtectedHeader({ alg: 'RS256', kid: 'idp-key-1' })
    .setSubject(user.id)
    .setIssuer(claims.iss ?? issuer)
    .setAudience(claims.aud ?? 'callplane')
    .setIssuedAt()
    .setExpirationTime(claims.exp ?? '10m')
    .sign(privateKey);
}

t.test('a token from the configured identity provider is accepted', async (t) => {
  const me = await server.api('/v1/users/me', { token: await idpToken() });
  t.equal(me.status, 200);
  t.equal(me.body.user.id, user.id);
  t.ok(jwksRequests >= 1, 'the JWKS was fetched over HTTP');
});

t.test('wrong audience, wrong issuer or a different key are refused with 401', async (t) => {
  t.equal((await server.api('/v1/users/me', { token: await idpToken({ aud: 'someone-else' }) })).status, 401, 'wrong audience');
  const { privateKey: otherKey } = await generateKeyPair('RS256');
  const forged = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'idp-key-1' }).setSubject(user.id).setIssuer(issuer).setAudience('callplane').setExpirationTime('10m').sign(otherKey);
  t.equal((await server.api('/v1/users/me', { token: forged })).status, 401, 'signed by another key');
  t.equal((await server.api('/v1/users/me', { token: await idpToken({ iss: 'https://evil.example/' }) })).status, 401, 'unknown issuer');
  t.equal((await server.api('/v1/users', { token: await idpToken({ role: 'emperor' }) })).status, 401, 'unknown role claim');
});

t.test('server-minted tokens still work beside the external provider', async (t) => {
  const minted = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: user.id } });
  t.equal((await server.api('/v1/users/me', { token: minted.body.access_token })).status, 200);
});

// An express API secured the way passport-jwt's README and the usual express + jsonwebtoken
// tutorials secure it: urlencoded and JSON body parsers, a login route that checks the password
// and signs { sub, username } with jsonwebtoken (HS256, one hour), and a JwtStrategy that reads
// the token with ExtractJwt.fromAuthHeaderAsBearerToken(), pins HS256 and looks the user up by
// `sub`; routes are guarded with passport.authenticate('jwt', { session: false }).
// The login answers OAuth2 field names (access_token, token_type, expires_in); a bad login is
// 401 { message }. Passwords are hashed with scrypt at a low cost so startup is quick; the
// secret comes from CORPUS_SECRET, the port from PORT, and the server binds 127.0.0.1 only.
'use strict';

const crypto = require('node:crypto');
const express = require('express');
const jwt = require('jsonwebtoken');
const passport = require('passport');
const { Strategy: JwtStrategy, ExtractJwt } = require('passport-jwt');

const SECRET = process.env.CORPUS_SECRET;
if (!SECRET) throw new Error('CORPUS_SECRET is not set');
const SCRYPT = { N: 1024, r: 8, p: 1 };

function hashPassword(password) {
  const salt = crypto.randomBytes(16);
  return { salt, hash: crypto.scryptSync(password, salt, 32, SCRYPT) };
}

function verifyPassword(password, record) {
  const candidate = crypto.scryptSync(password, record.salt, 32, SCRYPT);
  return crypto.timingSafeEqual(candidate, record.hash);
}

const users = [
  { id: 1, username: 'bob', email: 'bob@example.com', active: true, password: 'correct horse battery staple' },
  { id: 2, username: 'carol', email: 'carol@example.com', active: true, password: "carol's own password" },
  { id: 3, username: 'alice', email: 'alice@example.com', active: false, password: "alice's old password" },
].map(({ password, ...user }) => ({ ...user, credentials: hashPassword(password) }));

passport.use(
  new JwtStrategy(
    {
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      secretOrKey: SECRET,
      algorithms: ['HS256'],
    },
    (payload, done) => {
      const user = users.find((u) => u.id === payload.sub && u.active);
      return done(null, user || false);
    },
  ),
);

const app = express();
app.use(express.urlencoded({ extended: false }));
app.use(express.json());
app.use(passport.initialize());

app.post('/token', (req, res) => {
  const { username, password } = req.body || {};
  if (!username || !password) {
    return res.status(400).json({ message: 'Username and password are required' });
  }
  const user = users.find((u) => u.username === username);
  if (!user || !user.active || !verifyPassword(password, user.credentials)) {
    return res.status(401).json({ message: 'Invalid username or password' });
  }
  const token = jwt.sign({ sub: user.id, username: user.username }, SECRET, { algorithm: 'HS256', expiresIn: '1h' });
  return res.json({ access_token: token, token_type: 'Bearer', expires_in: 3600 });
});

app.get('/users/me', passport.authenticate('jwt', { session: false }), (req, res) => {
  const { id, username, email } = req.user;
  res.json({ id, username, email });
});

app.get('/protected-resource', passport.authenticate('jwt', { session: false }), (req, res) => {
  res.json({ message: `Hello ${req.user.username}` });
});

const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${port}`);
});

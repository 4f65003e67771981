// "Node.js 20+" holds for every installed package: no EBADENGINE from `npm ci`. light-my-request
// (fastify's inject()) asks for cookie@^2, which wants Node 22; package.json's `overrides` gives
// it cookie@1.1, which has the one function it calls (stringifySetCookie) and runs on Node 18+.
// The cookie test below proves inject() still sends and reads cookies with it.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import Fastify from 'fastify';
import t from 'tap';
import { ROOT } from './helpers/harness.js';

// semver is fastify's own dependency; loaded from there rather than added to ours.
const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
const semver = fromFastify('semver') as { satisfies(version: string, range: string): boolean };

interface LockPackage {
  version?: string;
  dev?: boolean;
  engines?: { node?: string } | string[];
}
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
const nodeRange = (p: LockPackage) => (p.engines && !Array.isArray(p.engines) ? p.engines.node : undefined);

t.test('every locked package runs on the Node versions we promise', async (t) => {
  t.equal(pkg.engines.node, '>=20', 'package.json promises Node 20+');
  const packages = Object.entries(lock.packages).filter(([where]) => where !== '');
  t.ok(packages.length > 100, `${packages.length} packages in the lock file`);
  // What npm ci checks: the running Node.
  const now = packages.filter(([, p]) => nodeRange(p) && !semver.satisfies(process.versions.node, nodeRange(p) ?? '*'));
  t.same(
    now.map(([where, p]) => `${where} wants node ${nodeRange(p)}`),
    [],
    `no package refuses Node ${process.versions.node} (npm ci would warn EBADENGINE)`,
  );
  // What the README promises for running it: the oldest Node 20.
  const runtime = packages.filter(([, p]) => !p.dev && nodeRange(p) && !semver.satisfies('20.0.0', nodeRange(p) ?? '*'));
  t.same(
    runtime.map(([where, p]) => `${where} wants node ${nodeRange(p)}`),
    [],
    'no production package refuses Node 20.0.0',
  );
});

t.test('light-my-request gets the overridden cookie', async (t) => {
  const fromLmr = createRequire(fromFastify.resolve('light-my-request'));
  const cookiePkg = fromLmr('cookie/package.json') as { version: string; engines: { node: string } };
  t.ok(semver.satisfies(cookiePkg.version, '^1.1.1'), `cookie ${cookiePkg.version}`);
  t.ok(semver.satisfies('20.0.0', cookiePkg.engines.node), `its engines (${cookiePkg.engines.node}) include Node 20`);
  const cookie = fromLmr('cookie') as { stringifySetCookie?: unknown };
  t.type(cookie.stringifySetCookie, 'function', 'the function light-my-request calls exists');
});

t.test("fastify's inject() sends Cookie and reads Set-Cookie with it", async (t) => {
  const app = Fastify();
  app.get('/account/page', async (req, reply) => {
    void reply.header('set-cookie', ['session=s%201; Path=/; HttpOnly', 'theme=dark; Max-Age=60']);
    return { cookie: req.headers.cookie ?? null };
  });
  t.teardown(() => app.close());
  const res = await app.inject({
    method: 'GET',
    url: '/account/page',
    cookies: { plain: '1', spaced: 'a b;c' },
  });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { cookie: 'plain=1; spaced=a%20b%3Bc' }, 'the Cookie header, values encoded');
  t.same(
    res.cookies,
    [
      { name: 'session', value: 's 1', path: '/', httpOnly: true },
      { name: 'theme', value: 'dark', maxAge: 60 },
    ],
    'Set-Cookie parsed',
  );
  const scoped = await app.inject({
    method: 'GET',
    url: '/account/page',
    cookies: [
      { name: 'here', value: 'x', path: '/account' },
      { name: 'elsewhere', value: 'y', path: '/admin' },
    ],
  });
  t.same(scoped.json(), { cookie: 'here=x' }, 'a cookie whose Path does not match is left out');
});

// Browser tests of the demo page's session handling against a running turnkey (same
// environment as call.test.mjs; tests/js/web_e2e_runner.js runs both): the login form without
// app.js, sign-out from another device, a duplicated tab, a password change.
//
//   TURNKEY_URL=http://127.0.0.1:<port> node --test e2e/session.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { collectPageErrors, launchChromium } from './browser.mjs';

const kUrl = (process.env.TURNKEY_URL ?? '').replace(/\/+$/, '');
const kPassword = 'e2e session horse battery';
const kRun = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const kBounded = { timeout: 60_000 };

let browser;
let seq = 0;

before(async () => {
  if (!kUrl) {
    throw new Error('set TURNKEY_URL (see the top of this file)');
  }
  browser = await launchChromium({ secureOrigins: [new URL(kUrl).origin] });
});

after(async () => {
  await browser?.close();
});

async function rest(method, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  const response = await fetch(`${kUrl}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const json = await response.json();
  return { status: response.status, code: json.code, data: json.data };
}

/** Signs a new account up on the demo page; resolves once the page is online. */
async function signUp(label) {
  const email = `e2e-${kRun}-${++seq}-${label}@example.test`;
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = collectPageErrors(page, `${label}: `);
  await page.goto(`${kUrl}/`);
  await page.fill('#email', email);
  await page.fill('#password', kPassword);
  await page.click('#register');
  await page.locator('#app-view').waitFor({ state: 'visible', timeout: 15_000 });
  await page.locator('#conn-status[data-state="online"]').waitFor({ timeout: 15_000 });
  return { email, context, page, errors };
}

test('F6: without app.js, Enter in the login form does not put the password in the URL', kBounded, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.route('**/app.js', (route) => route.abort());
  await page.goto(`${kUrl}/`);
  await page.fill('#email', 'nobody@example.test');
  await page.fill('#password', 'hunter2-secret-pw');
  const [request] = await Promise.all([
    page.waitForRequest((r) => r.isNavigationRequest() && r.frame() === page.mainFrame()),
    page.press('#password', 'Enter'),
  ]);
  assert.equal(request.method(), 'POST');
  assert.doesNotMatch(request.url(), /hunter2|password/);
  await page.waitForLoadState().catch(() => {});
  assert.doesNotMatch(page.url(), /hunter2|password/);
  await context.close();
});

test('F3: a logout on another device brings the page back to the login form, saying why', kBounded, async () => {
  const ada = await signUp('ada');
  const other = await rest('POST', '/api/auth/login', { email: ada.email, password: kPassword });
  assert.equal(other.status, 200);
  assert.equal((await rest('POST', '/api/auth/logout', {}, other.data.token)).status, 200);
  await ada.page.locator('#auth-view').waitFor({ state: 'visible', timeout: 15_000 });
  assert.equal(await ada.page.getAttribute('#auth-notice', 'data-reason'), 'revoked');
  assert.equal(await ada.page.evaluate(() => window.turnkeyDemo.client.loggedIn), false);
  assert.equal(await ada.page.evaluate(() => sessionStorage.getItem('turnkey.session')), null);
  assert.deepEqual(ada.errors.filter((e) => !/401|Failed to load resource/.test(e)), []);
  await ada.context.close();
});

test('F4: a duplicated tab does not reuse the session, which lives on in the original', kBounded, async () => {
  const bea = await signUp('bea');
  const [copy] = await Promise.all([
    bea.context.waitForEvent('page'),
    bea.page.evaluate(() => {
      window.open(location.href);
    }),
  ]);
  await copy.locator('#auth-notice[data-reason="duplicate_tab"]').waitFor({ timeout: 15_000 });
  assert.equal(await copy.evaluate(() => window.turnkeyDemo.client.loggedIn), false);
  // The original's refresh token was not presented twice: it still refreshes, stays online.
  await bea.page.evaluate(() => window.turnkeyDemo.client.refreshSession());
  await bea.page.evaluate(() => window.turnkeyDemo.client.getMe());
  assert.equal(await bea.page.isVisible('#app-view'), true);
  // A reload of the original keeps its session.
  await bea.page.reload();
  await bea.page.locator('#conn-status[data-state="online"]').waitFor({ timeout: 15_000 });
  await bea.context.close();
});

test('F5: changing the password on the page keeps this device signed in, online', kBounded, async () => {
  const cy = await signUp('cy');
  const other = await rest('POST', '/api/auth/login', { email: cy.email, password: kPassword });
  await cy.page.fill('#current-password', 'not the password');
  await cy.page.fill('#new-password', 'a brand new password');
  await cy.page.click('#change-password');
  await cy.page.locator('#password-msg.error').waitFor({ timeout: 10_000 });
  await cy.page.fill('#current-password', kPassword);
  await cy.page.click('#change-password');
  await cy.page.locator('#password-msg', { hasText: 'Password changed' }).waitFor({ timeout: 10_000 });
  await cy.page.locator('#conn-status[data-state="online"]').waitFor({ timeout: 15_000 });
  assert.equal(await cy.page.isVisible('#app-view'), true);
  await cy.page.evaluate(() => window.turnkeyDemo.client.getMe());
  // The other session is over; the new password works.
  assert.equal((await rest('GET', '/api/users/me', undefined, other.data.token)).code, 'TOKEN_REVOKED');
  assert.equal((await rest('POST', '/api/auth/login', { email: cy.email, password: 'a brand new password' })).status, 200);
  await cy.context.close();
});

// Launches Debian's Chromium through playwright-core with fake camera and microphone, for the
// browser tests in this folder. Environment:
//   CHROMIUM_PATH   the browser binary (default /usr/bin/chromium)
//   TURNKEY_E2E_HEADFUL=1  show the windows (needs a display)

import { chromium } from 'playwright-core';

export const kChromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Launches Chromium. `secureOrigins` are origins that get getUserMedia although they are plain
 * http and not localhost (http://127.0.0.1 and http://localhost are secure contexts already).
 */
export async function launchChromium({ secureOrigins = [] } = {}) {
  const args = [
    // A synthetic camera (a moving test pattern) and microphone (a beep), granted without a
    // permission prompt.
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    // Remote media plays without a click (the test clicks anyway; this removes a variable).
    '--autoplay-policy=no-user-gesture-required',
  ];
  const insecure = secureOrigins.filter((o) => !/^https:|^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:|$)/.test(o));
  if (insecure.length) {
    args.push(`--unsafely-treat-insecure-origin-as-secure=${insecure.join(',')}`);
  }
  return chromium.launch({
    executablePath: kChromiumPath,
    headless: process.env.TURNKEY_E2E_HEADFUL !== '1',
    args,
  });
}

/** Collects console errors and uncaught page errors of `page` into the returned array. */
export function collectPageErrors(page, label = '') {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`${label}pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') {
      errors.push(`${label}console: ${m.text()}`);
    }
  });
  return errors;
}

/**
 * Evaluates `fn(arg)` in `page` (it may be async) until it returns something truthy, and
 * returns that; throws after `timeout` ms naming `what` and the last value seen.
 */
export async function waitFor(page, fn, arg, { timeout = 20_000, interval = 250, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (last) {
      return last;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

// The distribution's Chromium driven by playwright-core (STACK-NOTES): headless, no sandbox, no
// background networking (the network is closed), Playwright's own signal handlers off.
// Each launch carries a unique marker switch, so a test can prove no Chromium process is left.
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { ROOT, processesMatching, waitFor } from './harness.js';

/**
 * Where distributions put Chromium: Debian's package installs /usr/bin/chromium, Ubuntu's
 * /usr/bin/chromium-browser (the snap's own binary is /snap/bin/chromium). bin/setup test
 * installs whichever the distribution has.
 */
export const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/snap/bin/chromium'];

/** The first Chromium that exists: CHROMIUM_PATH if set, then CHROMIUM_PATHS, then PATH. */
export function findChromium(
  env: NodeJS.ProcessEnv = process.env,
  isFile: (file: string) => boolean = (file) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false,
): string {
  if (env.CHROMIUM_PATH) return env.CHROMIUM_PATH;
  const onPath = (env.PATH ?? '')
    .split(':')
    .filter((dir) => dir !== '')
    .flatMap((dir) => ['chromium', 'chromium-browser'].map((name) => path.join(dir, name)));
  const found = [...CHROMIUM_PATHS, ...onPath].find(isFile);
  if (!found) throw new Error(`no Chromium found (looked at ${CHROMIUM_PATHS.join(', ')} and PATH); bin/setup test installs it`);
  return found;
}
/** Screenshots go here (git-ignored). */
export const OUTPUT_DIR = path.join(ROOT, 'test-output');

export interface TestBrowser {
  browser: Browser;
  /** Closes the browser and waits until none of its processes is left; returns the leftovers' pids. */
  close(): Promise<number[]>;
}

let launches = 0;

export async function launchBrowser(): Promise<TestBrowser> {
  const marker = `--aggregator-test-browser=${process.pid}-${++launches}`;
  const browser = await chromium.launch({
    executablePath: findChromium(),
    headless: true,
    timeout: 30_000,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      marker,
    ],
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      await waitFor(() => processesMatching(marker).length === 0, 5000, 50);
      const left = processesMatching(marker);
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      return left;
    },
  };
}

/** A page that records console errors and uncaught exceptions, so a test can assert there were none. */
export async function newPage(browser: Browser, width = 1440, height = 1000): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width, height } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  return { page, errors };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  const file = path.join(OUTPUT_DIR, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Debian's Chromium driven by playwright-core (STACK-NOTES): headless, no sandbox, no
// background networking (the network is closed), Playwright's own signal handlers off.
// Each launch carries a unique marker switch, so a test can prove no Chromium process is left.
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { ROOT, processesMatching, waitFor } from './harness.js';

export const CHROMIUM = '/usr/bin/chromium';
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
    executablePath: CHROMIUM,
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

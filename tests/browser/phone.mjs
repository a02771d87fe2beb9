#!/usr/bin/env node
// A JsSIP web phone in headless Chromium, for waypoint's end-to-end tests.
//
//   node phone.mjs --build-dir DIR [--chromium /usr/bin/chromium] [--modules DIR]
//
// Bundles page.js with JsSIP (esbuild) into DIR, serves page.html from a loopback HTTP
// server (Chromium lets only a loopback origin reach 127.0.0.1), opens it in the system's
// Chromium through puppeteer-core (which downloads no browser), then reads commands on
// stdin and writes events on stdout, one JSON object a line:
//
//   {"cmd": "register", "uri": "sip:carol@localhost", "server": "ws://127.0.0.1:5062"}
//   {"cmd": "call", "target": "sip:bob@localhost"}
//   {"cmd": "answer"}    {"cmd": "hangup"}    {"cmd": "quit"}
//
// Events: {"event": "ready", "browser_pid": N, "version": "..."} once the page is loaded,
// then what JsSIP reports: connected, registered {code, contact}, registration_failed,
// outgoing / incoming {call_id, from}, progress {code}, accepted, confirmed,
// ended / failed {originator, cause}; {"event": "error", "message"} when a command
// throws. {"event": "launch_failed", "message"} and exit status 3 when Chromium does
// not start; exit status 2 for bad arguments or missing node_modules.
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const STEP_TIMEOUT_MS = 15000;

// Everything a call needs without a microphone, a sandbox (root) or a trusted certificate
// (waypoint's self-signed WSS one). Chromium finishes ICE gathering only once it sees a
// network, and in the tests' network namespace loopback is the only one: without
// allowing it, JsSIP would wait forever to send its INVITE or 200 (the page gathers no
// candidate at all, see page.js).
const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--ignore-certificate-errors',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

function options() {
  const { values } = parseArgs({
    options: {
      'build-dir': { type: 'string' },
      chromium: { type: 'string', default: '/usr/bin/chromium' },
      modules: { type: 'string', default: path.join(HERE, 'node_modules') },
    },
  });
  if (!values['build-dir']) {
    process.stderr.write('phone.mjs: --build-dir is required\n');
    process.exit(2);
  }
  return values;
}

// require() from the given node_modules, so the tests can point at any install of it.
function loader(modules) {
  const req = createRequire(path.join(path.resolve(modules), 'phone.mjs'));
  try {
    return { puppeteer: req('puppeteer-core'), esbuild: req('esbuild') };
  } catch (e) {
    process.stderr.write(`phone.mjs: ${e.message}\n(run npm ci in ${HERE})\n`);
    process.exit(2);
  }
}

async function bundle(esbuild, modules, buildDir) {
  const outfile = path.join(buildDir, 'phone.js');
  await esbuild.build({
    entryPoints: [path.join(HERE, 'page.js')],
    bundle: true,
    format: 'iife',
    outfile,
    nodePaths: [modules],
    logLevel: 'error',
  });
  return outfile;
}

function serve(files) {
  const server = createServer((req, res) => {
    const file = files[req.url];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': file.type }).end(readFileSync(file.path));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// A Chromium that has not started within this time counts as one that cannot start (the
// test is then skipped), so it is generous for a loaded machine.
const LAUNCH_TIMEOUT_MS = 2 * STEP_TIMEOUT_MS;

async function launch(puppeteer, chromium) {
  try {
    return await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      args: CHROMIUM_FLAGS,
      timeout: LAUNCH_TIMEOUT_MS,
      protocolTimeout: STEP_TIMEOUT_MS,
    });
  } catch (e) {
    emit({ event: 'launch_failed', message: String(e.message || e).split('\n')[0] });
    process.exit(3);
  }
}

async function openPage(browser, origin) {
  const page = await browser.newPage();
  page.on('console', (m) => process.stderr.write(`page: ${m.text()}\n`));
  page.on('pageerror', (e) => emit({ event: 'error', message: `page: ${e.message}` }));
  await page.exposeFunction('phoneEvent', (json) => emit(JSON.parse(json)));
  await page.goto(`${origin}/`, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS });
  await page.waitForFunction(() => window.phone !== undefined, { timeout: STEP_TIMEOUT_MS });
  return page;
}

// The arguments of each command's window.phone method, from its JSON line.
const COMMANDS = {
  register: (c) => [c.uri, c.server],
  call: (c) => [c.target],
  answer: () => [],
  hangup: () => [],
};

async function run(page, line) {
  let command;
  try {
    command = JSON.parse(line);
  } catch {
    emit({ event: 'error', message: `not JSON: ${line}` });
    return true;
  }
  if (command.cmd === 'quit') {
    return false;
  }
  const args = COMMANDS[command.cmd];
  if (!args) {
    emit({ event: 'error', message: `unknown command ${command.cmd}` });
    return true;
  }
  try {
    await page.evaluate((name, a) => window.phone[name](...a), command.cmd, args(command));
  } catch (e) {
    emit({ event: 'error', message: `${command.cmd}: ${e.message}` });
  }
  return true;
}

async function main() {
  const opts = options();
  const { puppeteer, esbuild } = loader(opts.modules);
  const script = await bundle(esbuild, opts.modules, opts['build-dir']);
  const server = await serve({
    '/': { path: path.join(HERE, 'page.html'), type: 'text/html' },
    '/phone.js': { path: script, type: 'text/javascript' },
  });
  const browser = await launch(puppeteer, opts.chromium);
  try {
    const page = await openPage(browser, `http://127.0.0.1:${server.address().port}`);
    emit({ event: 'ready', browser_pid: browser.process().pid, version: await browser.version() });
    // Commands run one after another, in the order they came.
    for await (const line of createInterface({ input: process.stdin })) {
      if (line.trim() && !(await run(page, line))) {
        break;
      }
    }
    await page.evaluate(() => window.phone.stop()).catch(() => {});
  } finally {
    await browser.close().catch(() => {});
    server.close();
  }
}

main().catch((e) => {
  emit({ event: 'error', message: String(e.stack || e) });
  process.exit(1);
});

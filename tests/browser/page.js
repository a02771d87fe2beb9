// The web phone in the page: one JsSIP UA, driven by phone.mjs through window.phone and
// reporting back through window.phoneEvent (a function puppeteer exposes). esbuild
// bundles this file with JsSIP into phone.js (JsSIP on npm ships no browser bundle).
import JsSIP from 'jssip';

const report = (event, detail = {}) => window.phoneEvent(JSON.stringify({ event, ...detail }));

// The test is about signalling, and nothing may leave loopback: no STUN or TURN server,
// and relay candidates only (of which there are none), so ICE gathers no address at all.
const media = {
  mediaConstraints: { audio: true, video: false },
  pcConfig: { iceServers: [], iceTransportPolicy: 'relay' },
};

// JsSIP's own log goes to the console, which phone.mjs copies to its stderr: the test
// shows it when it fails. Formatted here, as plain text (no CSS colours), because only
// the text of a console message reaches phone.mjs.
function text(value) {
  if (typeof value === 'string') {
    return value;
  }
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
JsSIP.debug.formatArgs = function formatArgs(args) {
  const rest = args.slice(1);
  const line = String(args[0]).replace(/%[sdioOj]/g, () => text(rest.shift()));
  args.splice(0, args.length, [`${this.namespace} ${line}`, ...rest.map(text)].join(' '));
};
JsSIP.debug.enable('JsSIP:*');

let ua = null;
let session = null;

function follow(s) {
  session = s;
  s.on('progress', (e) => report('progress', { code: e.response ? e.response.status_code : null }));
  s.on('accepted', () => report('accepted'));
  s.on('confirmed', () => report('confirmed'));
  s.on('ended', (e) => report('ended', { originator: e.originator, cause: e.cause }));
  s.on('failed', (e) => report('failed', {
    originator: e.originator, cause: e.cause, code: e.message ? e.message.status_code : null,
  }));
}

window.phone = {
  register(uri, server) {
    // The configuration docs/websocket.md shows operators.
    ua = new JsSIP.UA({ sockets: [new JsSIP.WebSocketInterface(server)], uri, register: true });
    ua.on('connected', () => report('connected'));
    ua.on('disconnected', (e) => report('disconnected', { error: !!e.error }));
    ua.on('registered', (e) => report('registered', {
      code: e.response.status_code, contact: e.response.getHeader('Contact'),
    }));
    ua.on('registrationFailed', (e) => report('registration_failed', {
      cause: e.cause, code: e.response ? e.response.status_code : null,
    }));
    ua.on('newRTCSession', (e) => {
      follow(e.session);
      report(e.originator === 'remote' ? 'incoming' : 'outgoing', {
        call_id: e.request.call_id, from: e.request.from.uri.toString(),
      });
    });
    ua.start();
  },
  call(target) {
    ua.call(target, media);
  },
  answer() {
    session.answer(media);
  },
  hangup() {
    session.terminate();
  },
  stop() {
    ua.stop();
  },
};

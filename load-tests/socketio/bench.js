// The Socket.IO side of the fan-out comparison: starts server.js, opens S Socket.IO clients
// over C rooms, publishes M messages at R/s (each emitted to its room by the server, payload
// as large as customer360's delta frames) and reports what `c360-load --mode fanout` reports:
// latency, lost deliveries, the server's RSS, and deliveries per server CPU-second.
// Usage: node bench.js [--sessions 10000] [--rooms 20] [--events 600] [--rate 20]
//        [--payload-bytes 2800] [--loss-timeout 10] [--connect-concurrency 128]
//        [--port 8370] [--out ../reports]
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { io } = require('socket.io-client');

const DEFAULTS = {
  sessions: 10000,
  rooms: 20,
  events: 600,
  rate: 20,
  'payload-bytes': 2800,
  'loss-timeout': 10,
  'connect-concurrency': 128,
  port: 8370,
  out: path.join(__dirname, '..', 'reports'),
};

function parseArgs(argv) {
  const args = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in DEFAULTS) || argv[i + 1] === undefined) {
      throw new Error(`unknown or valueless option ${argv[i]}; known: ${Object.keys(DEFAULTS).join(', ')}`);
    }
    args[name] = name === 'out' ? argv[i + 1] : Number(argv[i + 1]);
    if (name !== 'out' && !(args[name] > 0)) throw new Error(`--${name} must be a positive number`);
  }
  if (args.rooms > args.sessions) throw new Error('--rooms must be at most --sessions');
  return args;
}

const TICKS_PER_SECOND = 100;
const PAGE_KIB = 4;

/** CPU seconds (user + system) and RSS in MiB of a process, from /proc. */
function sample(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after the command: utime and stime are the 12th and 13th, rss the 22nd.
  const cpu = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  const rssMiB = (Number(fields[21]) * PAGE_KIB) / 1024;
  return { cpu, rssMiB };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function startServer(port) {
  const child = spawn(process.execPath, [path.join(__dirname, 'server.js')], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server.js did not start within 10 s')), 10000);
    child.on('exit', (code) => reject(new Error(`server.js exited with ${code}`)));
    child.stdout.once('data', () => {
      clearTimeout(timer);
      resolve(child);
    });
  });
}

/** Opens one client and joins its room; resolves once the server acknowledged the join, or
 * with null when the connection or the join fails or is not answered within 20 s. */
function connect(url, room, onDelta) {
  return new Promise((resolve) => {
    const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 20000 });
    const fail = () => {
      socket.close();
      resolve(null);
    };
    socket.once('connect_error', fail);
    socket.once('connect', () => {
      socket.timeout(20000).emit('join', room, (err) => (err ? fail() : resolve(socket)));
    });
    socket.on('delta', onDelta);
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const url = `http://127.0.0.1:${args.port}`;
  const server = await startServer(args.port);
  // Whatever ends this process ends the server too, so a failed run does not keep the port.
  process.on('exit', () => server.kill());
  const baseline = sample(server.pid);
  const latencies = [];
  let late = 0;
  const onDelta = (message) => {
    const ms = performance.now() - message.t;
    if (ms > args['loss-timeout'] * 1000) {
      late += 1;
      return;
    }
    latencies.push(ms);
  };

  const connectStarted = performance.now();
  const sockets = [];
  const members = new Array(args.rooms).fill(0);
  for (let next = 0; next < args.sessions; ) {
    const batch = [];
    for (let k = 0; k < args['connect-concurrency'] && next < args.sessions; k += 1, next += 1) {
      const room = next % args.rooms;
      batch.push(connect(url, room, onDelta).then((s) => s && (members[room] += 1, sockets.push(s))));
    }
    await Promise.all(batch);
  }
  const connectSeconds = (performance.now() - connectStarted) / 1000;
  console.error(`${sockets.length} of ${args.sessions} clients joined their room after ${connectSeconds.toFixed(1)} s`);
  // Connected before the measured stretch: c360-load's writers talk to PostgreSQL, not to the
  // server, so nothing of theirs is set up inside its window either.
  const publisher = await connect(url, 'publishers', () => {});
  if (!publisher) throw new Error('the publisher could not connect');
  await sleep(3000);
  const idle = sample(server.pid);
  const driverIdle = process.cpuUsage();
  let peakRss = idle.rssMiB;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, sample(server.pid).rssMiB);
  }, 1000);

  const payload = 'x'.repeat(args['payload-bytes']);
  let expected = 0;
  const started = performance.now();
  for (let seq = 0; seq < args.events; seq += 1) {
    const due = started + (seq * 1000) / args.rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const room = seq % args.rooms;
    expected += members[room];
    publisher.emit('publish', { room, seq, t: performance.now(), payload });
  }
  const writeSeconds = (performance.now() - started) / 1000;
  const deadline = performance.now() + args['loss-timeout'] * 1000;
  while (latencies.length < expected && performance.now() < deadline) await sleep(20);
  const busy = sample(server.pid);
  const driver = process.cpuUsage(driverIdle);
  clearInterval(sampler);
  peakRss = Math.max(peakRss, busy.rssMiB);

  for (const s of sockets) s.close();
  publisher.close();

  latencies.sort((a, b) => a - b);
  const cpuSeconds = busy.cpu - idle.cpu;
  const report = {
    mode: 'socketio-fanout',
    finished_at: new Date().toISOString(),
    args,
    node: process.version,
    socket_io: require('socket.io/package.json').version,
    sessions_connected: sockets.length,
    connect_seconds: connectSeconds,
    write_seconds: writeSeconds,
    latency_ms: {
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      p999: percentile(latencies, 99.9),
      max: latencies[latencies.length - 1],
    },
    deliveries: { expected, delivered_in_time: latencies.length, late, lost: expected - latencies.length },
    server: {
      pid: server.pid,
      rss_baseline_mib: baseline.rssMiB,
      rss_idle_mib: idle.rssMiB,
      rss_peak_mib: peakRss,
      rss_end_mib: busy.rssMiB,
      idle_kib_per_session: ((idle.rssMiB - baseline.rssMiB) * 1024) / Math.max(1, sockets.length),
      cpu_seconds: cpuSeconds,
      deliveries_per_cpu_second: latencies.length / cpuSeconds,
    },
    // Over the same stretch: this driver's own CPU, to see whether it kept up.
    driver_cpu_seconds: (driver.user + driver.system) / 1e6,
  };
  const l = report.latency_ms;
  console.log(`mode            socketio-fanout (socket.io ${report.socket_io}, node ${process.version})`);
  console.log(`sessions        ${sockets.length}/${args.sessions} connected in ${connectSeconds.toFixed(1)} s`);
  console.log(`writes          ${args.events} published in ${writeSeconds.toFixed(1)} s, payload ${args['payload-bytes']} bytes`);
  console.log(`latency         p50 ${l.p50.toFixed(2)} ms · p90 ${l.p90.toFixed(2)} ms · p99 ${l.p99.toFixed(2)} ms · p99.9 ${l.p999.toFixed(2)} ms · max ${l.max.toFixed(2)} ms`);
  console.log(`deliveries      ${expected} expected, ${latencies.length} in time, ${expected - latencies.length} lost`);
  console.log(
    `server          RSS ${baseline.rssMiB.toFixed(0)} MiB before, ${idle.rssMiB.toFixed(0)} idle (${report.server.idle_kib_per_session.toFixed(2)} KiB/session), ${peakRss.toFixed(0)} peak; ` +
      `CPU ${cpuSeconds.toFixed(2)} s → ${report.server.deliveries_per_cpu_second.toFixed(0)} deliveries per CPU-second`,
  );
  console.log(`driver          CPU ${report.driver_cpu_seconds.toFixed(2)} s over the same stretch`);
  fs.mkdirSync(args.out, { recursive: true });
  const file = path.join(args.out, `socketio-fanout-${report.finished_at.replace(/[-:.]/g, '')}.json`);
  fs.writeFileSync(file, JSON.stringify(report, null, 2));
  console.error(`report: ${file}`);
  process.exit(report.deliveries.lost === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`Error: ${e.message}`);
  process.exit(1);
});

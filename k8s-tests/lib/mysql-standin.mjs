/**
 * Stand-ins for the programs of the official mysql image (mysqld, mysql, mysqladmin), for scripts
 * that no MySQL 8.4 on this machine can run. `node mysql-standin.mjs <program> <args...>` records
 * the call as a JSON line in $STANDIN_STATE/calls.jsonl (mysqld when it starts; mysql and
 * mysqladmin when they exit, with their option file, stdin and exit status) and acts out what the
 * real program does to the data directory and the server, as far as the chart's scripts observe:
 *
 * - mysqld --initialize-insecure refuses a data directory holding anything but dot-files and
 *   lost+found (MY-010457), and creates one whose root@localhost has no password.
 * - mysqld (a server) refuses an uninitialised data directory and one another mysqld still holds,
 *   and serves on its --socket until that socket goes away (shutdown) or it gets SIGTERM.
 * - mysql and mysqladmin take --defaults-extra-file only as their first argument, reach the local
 *   server only through its socket and only with root's password from the data directory (though
 *   `mysqladmin ping` exits 0 on a refused login: the server runs).
 * - CLONE INSTANCE replaces the data directory with the primary's (its root password is
 *   $STANDIN_PRIMARY_ROOT_PASSWORD) and, with no supervisor to restart it, fails with error 3707
 *   while the server shuts down. STANDIN_CLONE=fail makes the donor refuse instead.
 * - mysqladmin ping against a host fails $STANDIN_PRIMARY_DOWN_PINGS times, then answers.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { setInterval, setTimeout } from 'node:timers';

const [program, ...args] = process.argv.slice(2);
const state = process.env.STANDIN_STATE;
const serverFile = join(state, 'server.json');

function record(entry) {
  appendFileSync(join(state, 'calls.jsonl'), `${JSON.stringify({ program, args, ...entry })}\n`);
}

function option(name) {
  const prefix = `--${name}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

function fail(message, code = 1) {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

const rootPassword = (datadir) => readFileSync(join(datadir, 'mysql', 'root-password'), 'utf8');

/** The [client] options of the --defaults-extra-file, which must come first. */
function clientOptions() {
  const first = args[0] ?? '';
  if (!first.startsWith('--defaults-extra-file=')) {
    return args.some((a) => a.startsWith('--defaults-extra-file='))
      ? fail(`${program}: [ERROR] unknown variable 'defaults-extra-file'`, 7)
      : {};
  }
  const options = {};
  for (const line of readFileSync(first.slice('--defaults-extra-file='.length), 'utf8').split('\n')) {
    const match = /^([a-z-]+)=(.*)$/.exec(line.trim());
    if (match) options[match[1]] = match[2].replace(/^"(.*)"$/, '$1');
  }
  return options;
}

/**
 * The local server the options lead to, after the checks a real connection makes. A refused
 * login still proves the server runs, which is all `mysqladmin ping` reports (exit status 0).
 */
function connectLocal(options, { ping = false } = {}) {
  const server = existsSync(serverFile) ? JSON.parse(readFileSync(serverFile, 'utf8')) : undefined;
  if (!server || server.socket !== options.socket || !existsSync(server.socket)) {
    fail(`ERROR 2002 (HY000): Can't connect to local MySQL server through socket '${options.socket}' (2)`);
  }
  if (options.user !== 'root' || (options.password ?? '') !== rootPassword(server.datadir)) {
    fail(
      `ERROR 1045 (28000): Access denied for user '${options.user}'@'localhost' (using password: YES)`,
      ping ? 0 : 1,
    );
  }
  return server;
}

function initialize() {
  const datadir = option('datadir');
  const files = readdirSync(datadir).filter((name) => !name.startsWith('.') && name !== 'lost+found');
  if (files.length > 0) {
    fail(
      '[ERROR] [MY-010457] [Server] --initialize specified but the data directory has files in it. Aborting.',
    );
  }
  mkdirSync(join(datadir, 'mysql'));
  writeFileSync(join(datadir, 'mysql', 'root-password'), '');
  writeFileSync(join(datadir, 'ibdata1'), 'system tablespace\n');
}

function serve() {
  const datadir = option('datadir');
  const socket = option('socket');
  if (!existsSync(join(datadir, 'mysql'))) {
    fail(`[ERROR] [MY-010119] [Server] Data directory ${datadir} is not initialized. Aborting.`);
  }
  const running = existsSync(serverFile) ? JSON.parse(readFileSync(serverFile, 'utf8')) : undefined;
  if (running && running.datadir === datadir && alive(running.pid)) {
    fail('[ERROR] [MY-012574] [InnoDB] Unable to lock ./ibdata1 error: 11');
  }
  writeFileSync(serverFile, JSON.stringify({ pid: process.pid, socket, datadir }));
  writeFileSync(socket, '');
  // Shutting down takes a while (InnoDB flushes), during which the data directory stays locked.
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    rmSync(socket, { force: true });
    setTimeout(() => process.exit(0), 300);
  };
  process.on('SIGTERM', stop);
  setInterval(() => existsSync(socket) || stop(), 20);
}

function clone(server) {
  if (process.env.STANDIN_CLONE === 'fail') {
    fail(
      "ERROR 3862 (HY000) at line 2: Clone Donor Error: 1045 : Access denied for user 'replication'@'10.0.0.7' (using password: YES).",
    );
  }
  for (const name of readdirSync(server.datadir)) {
    if (!['mysql', 'auto.cnf', 'lost+found'].includes(name) && !name.startsWith('.')) {
      rmSync(join(server.datadir, name), { recursive: true });
    }
  }
  writeFileSync(join(server.datadir, 'ibdata1'), "the primary's system tablespace\n");
  mkdirSync(join(server.datadir, 'parley'));
  writeFileSync(join(server.datadir, 'parley', 'messages.ibd'), "the primary's messages\n");
  writeFileSync(join(server.datadir, 'mysql', 'root-password'), process.env.STANDIN_PRIMARY_ROOT_PASSWORD);
  rmSync(server.socket);
  fail('ERROR 3707 (HY000) at line 2: Restart server failed (mysqld is not managed by supervisor process).');
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForExit(pid) {
  while (alive(pid)) await new Promise((resolve) => setTimeout(resolve, 20));
}

if (program === 'mysqld') {
  record({});
  if (args.includes('--initialize-insecure')) initialize();
  else serve();
} else if (program === 'mysql') {
  const options = clientOptions();
  const stdin = readFileSync(0, 'utf8');
  process.on('exit', (status) => record({ options, stdin, status }));
  const server = connectLocal(options);
  if (stdin.includes('CLONE INSTANCE')) clone(server);
} else if (program === 'mysqladmin') {
  const options = clientOptions();
  process.on('exit', (status) => record({ options, status }));
  if (options.host) {
    const pingsFile = join(state, 'primary-pings');
    const pings = existsSync(pingsFile) ? Number(readFileSync(pingsFile, 'utf8')) : 0;
    writeFileSync(pingsFile, String(pings + 1));
    if (pings < Number(process.env.STANDIN_PRIMARY_DOWN_PINGS ?? 0)) {
      fail(
        `mysqladmin: connect to server at '${options.host}' failed\nerror: 'Can't connect to MySQL server'`,
      );
    }
  } else {
    const server = connectLocal(options, { ping: args.includes('ping') });
    if (args.includes('shutdown')) {
      rmSync(server.socket);
      await waitForExit(server.pid);
    }
  }
} else {
  fail(`mysql-standin: no stand-in for ${program}`, 2);
}

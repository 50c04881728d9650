/**
 * deploy/uns-edge.service exercised for real, as far as this machine allows.
 *
 * PID 1 here is not systemd (`systemctl is-system-running` says "offline"), so neither the unit nor a
 * transient unit (`systemd-run`) can be started. Instead this test reads the unit file and starts its
 * ExecStart= command line the way systemd would (systemd.exec(5)), with every directive either
 * EMULATED by the same kernel mechanism systemd uses, or listed with the reason it is not:
 *
 * - user, groups, capabilities, no_new_privs: setpriv(1), as systemd's setresuid/capset/prctl;
 * - mount-namespace options (ProtectSystem=strict, ReadWritePaths=, ProtectHome=, PrivateTmp=,
 *   ProtectKernelTunables=/-Modules=/-Logs=, ProtectControlGroups=, ProtectProc=): unshare(1) and
 *   mount(8) in a private mount + PID namespace, the mounts systemd's namespace.c makes;
 * - ProtectHostname=: a UTS namespace;
 * - SystemCallFilter=, SystemCallErrorNumber=, SystemCallArchitectures=, RestrictAddressFamilies=:
 *   a seccomp-BPF filter (a 60-line C program compiled here with gcc) built from the same syscall
 *   groups systemd uses (`systemd-analyze syscall-filter`) and the x86-64 syscall numbers;
 * - the environment: a clean one with systemd's own variables, Environment= and EnvironmentFile=;
 * - UMask=, WorkingDirectory=, LimitNOFILE=, StateDirectory=/-Mode=, KillSignal=, TimeoutStopSec=,
 *   RestartPreventExitStatus=.
 *
 * Then the gateway runs flows/demo.json against a real Mosquitto and the simulated plant, /healthz
 * must say "ok", values must reach the broker, the process's credentials/mounts/limits are read back
 * from /proc, a probe in the same sandbox checks the walls, and a refused configuration must exit
 * with the status the unit does not restart on. A directive this table does not know fails the test.
 *
 * Needs root (namespaces, setpriv), gcc, unshare, systemd-analyze and a built dist/.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from 'mqtt';
import { freePort, Mosquitto } from '../helpers/mosquitto';

const ROOT = resolve(__dirname, '..', '..');
const UNIT_FILE = join(ROOT, 'deploy', 'uns-edge.service');
const ENV_EXAMPLE = join(ROOT, 'deploy', 'uns-edge.env.example');
/** A uid/gid for the unit's User=/Group=, added to /etc/passwd and /etc/group inside the sandbox only. */
const SERVICE_UID = 61800;
/** systemd's PATH for system services (systemd 252, src/basic/path-util.h DEFAULT_PATH_NORMAL). */
const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';
const ADDRESS_FAMILIES: Record<string, number> = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16 };

// ---------------------------------------------------------------------------------------------
// The unit file

interface Directive { section: string; key: string; value: string }

/** systemd.syntax(7): sections, `Key=value`, `#`/`;` comments, repeated keys kept in order. */
function parseUnit(text: string): Directive[] {
  const directives: Directive[] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) { section = header[1]; continue; }
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `not a directive: ${line}`);
    directives.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return directives;
}

/** What this test does with each directive of the unit: how it is emulated, or why it is not. */
const HANDLING: Record<string, string> = {
  'Unit.Description': 'text only',
  'Unit.Wants': 'ordering at boot: not applicable to one started service',
  'Unit.After': 'ordering at boot: not applicable to one started service',
  'Install.WantedBy': 'enablement: not applicable',
  'Service.Type': 'simple: the started process is the service (checked: it is the process that serves /healthz)',
  'Service.User': 'emulated: setpriv --reuid with a uid added to /etc/passwd inside the sandbox',
  'Service.Group': 'emulated: setpriv --regid with a gid added to /etc/group inside the sandbox',
  'Service.SupplementaryGroups': 'emulated: setpriv --groups',
  'Service.EnvironmentFile': 'emulated: the file (from deploy/uns-edge.env.example) parsed by systemd\'s rules, mode 0600 root',
  'Service.Environment': 'emulated',
  'Service.ExecStart': 'emulated: run as written (the repository bind-mounted at /opt/uns-edge)',
  'Service.WorkingDirectory': 'emulated: chdir',
  'Service.StateDirectory': 'emulated: /var/lib/<name> created, owned by User=, the only writable path',
  'Service.StateDirectoryMode': 'emulated',
  'Service.UMask': 'emulated: umask before exec (checked in /proc/<pid>/status)',
  'Service.Restart': 'supervision: not emulated (no service manager); the exit codes it depends on are checked',
  'Service.RestartSec': 'supervision: not emulated',
  'Service.RestartPreventExitStatus': 'checked: a refused configuration exits with this status',
  'Service.KillSignal': 'emulated: the stop sends it',
  'Service.TimeoutStopSec': 'checked: the gateway exits 0 within it',
  'Service.LimitNOFILE': 'emulated: prlimit --nofile, capped at this container\'s hard limit (20000 here) which root cannot raise',
  'Service.NoNewPrivileges': 'emulated: setpriv --no-new-privs',
  'Service.ProtectSystem': 'emulated (strict): every mount read-only except /dev, /proc, /sys subtrees handled below',
  'Service.ReadWritePaths': 'emulated: bind-mounted read-write again',
  'Service.ProtectHome': 'emulated: /home, /root, /run/user replaced by empty mode-000 tmpfs',
  'Service.PrivateTmp': 'emulated: fresh tmpfs on /tmp and /var/tmp',
  'Service.ProtectKernelTunables': 'emulated: /proc/sys and /sys read-only',
  'Service.ProtectKernelModules': 'emulated: no CAP_SYS_MODULE (empty bounding set); /usr/lib/modules absent here',
  'Service.ProtectKernelLogs': 'emulated: /dev/kmsg and /proc/kmsg made inaccessible; no CAP_SYSLOG',
  'Service.ProtectControlGroups': 'emulated: /sys/fs/cgroup read-only (with /sys)',
  'Service.ProtectClock': 'partly: no CAP_SYS_TIME; its seccomp part (@clock) is not emulated',
  'Service.ProtectHostname': 'emulated: own UTS namespace',
  'Service.ProtectProc': 'emulated: /proc mounted with hidepid=invisible in an own PID namespace',
  'Service.RestrictNamespaces': 'not emulated (seccomp on clone/unshare/setns flags): the gateway creates no namespaces',
  'Service.RestrictSUIDSGID': 'not emulated (seccomp on chmod with S_ISUID)',
  'Service.LockPersonality': 'not emulated (seccomp on personality arguments)',
  'Service.RemoveIPC': 'not emulated (clean-up after stop)',
  'Service.CapabilityBoundingSet': 'emulated: setpriv --bounding-set -all',
  'Service.AmbientCapabilities': 'emulated: setpriv --ambient-caps -all --inh-caps -all',
  'Service.RestrictAddressFamilies': 'emulated: seccomp on socket(2), other families get EAFNOSUPPORT',
  'Service.SystemCallArchitectures': 'emulated (native): other architectures killed, x32 refused',
  'Service.SystemCallFilter': 'emulated: seccomp allow-list of the groups, expanded by systemd-analyze',
  'Service.SystemCallErrorNumber': 'emulated: refused calls return it',
  'Service.RestrictRealtime': 'not emulated (seccomp on sched_setscheduler policies)',
};

function single(directives: Directive[], key: string): string {
  const values = directives.filter((d) => d.section === 'Service' && d.key === key).map((d) => d.value);
  assert.equal(values.length, 1, `${key}= appears ${values.length} times`);
  return values[0];
}

/** systemd.exec(5) EnvironmentFile=: `KEY=VALUE` lines, `#`/`;` comments, optional quotes. */
function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    assert.ok(match, `not an assignment: ${line}`);
    env[match[1]] = match[2].replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return env;
}

/** systemd.exec(5) Environment=: space-separated assignments, double quotes group. */
function parseEnvironmentDirective(value: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const match of value.matchAll(/"([^"]*)"|(\S+)/g)) {
    const assignment = match[1] ?? match[2];
    const eq = assignment.indexOf('=');
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  return env;
}

// ---------------------------------------------------------------------------------------------
// The seccomp filter

/** Every syscall name of a systemd group, groups expanded (`systemd-analyze syscall-filter`). */
function syscallGroup(group: string): Set<string> {
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of execFileSync('systemd-analyze', ['syscall-filter'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')) {
    if (line.startsWith('@')) { current = []; groups.set(line.trim(), current); continue; }
    const entry = line.trim();
    if (!entry) { current = undefined; continue; }
    if (current && !entry.startsWith('#')) current.push(entry);
  }
  const names = new Set<string>();
  const expand = (name: string): void => {
    const members = groups.get(name);
    assert.ok(members, `systemd-analyze knows no group ${name}`);
    for (const member of members) member.startsWith('@') ? expand(member) : names.add(member);
  };
  expand(group);
  return names;
}

function x86_64SyscallNumbers(): Map<string, number> {
  const header = readFileSync('/usr/include/x86_64-linux-gnu/asm/unistd_64.h', 'utf8');
  return new Map([...header.matchAll(/^#define __NR_(\w+) (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
}

/**
 * Installs an allow-list filter the way systemd does for SystemCallFilter= with SystemCallArchitectures=native
 * and RestrictAddressFamilies= (seccomp(2), linux/filter.h BPF), then execs the command.
 * argv: <errno> <nr,nr,...> <family,family,...> <command...>
 */
const SECCOMP_EXEC_C = String.raw`
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#define MAX_RULES 3000
static struct sock_filter f[MAX_RULES];
static int k = 0;
static void add(struct sock_filter s) { if (k >= MAX_RULES) { fprintf(stderr, "filter too long\n"); exit(2); } f[k++] = s; }
int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: seccomp-exec ERRNO NR,... AF,... command...\n"); return 2; }
  int err = atoi(argv[1]);
  long afs[32]; int m = 0;
  for (char *s = strtok(argv[3], ","); s && m < 32; s = strtok(NULL, ",")) afs[m++] = strtol(s, NULL, 10);
  add((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  add((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  add((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  add((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
  add((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1));
  add((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)));
  /* socket(2): only the listed families, else EAFNOSUPPORT (systemd's RestrictAddressFamilies=). */
  add((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 2 * m + 2));
  add((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
  for (int i = 0; i < m; i++) {
    add((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, afs[i], 0, 1));
    add((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  add((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT));
  for (char *s = strtok(argv[2], ","); s; s = strtok(NULL, ",")) {
    add((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, strtol(s, NULL, 10), 0, 1));
    add((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  add((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)));
  struct sock_fprog prog = { .len = (unsigned short)k, .filter = f };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("no_new_privs"); return 1; }
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) { perror("seccomp"); return 1; }
  execv(argv[4], argv + 4);
  perror("execv");
  return 127;
}
`;

// ---------------------------------------------------------------------------------------------
// The sandbox

interface Sandbox {
  /** Host dir bind-mounted at the state directory. */
  stateDir: string;
  /** Host dir whose files appear in /etc/uns-edge. */
  etcDir: string;
  env: Record<string, string>;
  /** LimitNOFILE= as applied. */
  openFiles: number;
  /** bash script run as root in the new namespaces; ends by exec'ing `command`. */
  script(command: string[]): string;
}

function hardOpenFilesLimit(): number {
  const match = /Max open files\s+\d+\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  assert.ok(match);
  return Number(match[1]);
}

const shellQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

function buildSandbox(work: string, directives: Directive[], serviceEnv: Record<string, string>, flowsFile: string): Sandbox {
  mkdirSync(work, { mode: 0o755 });
  const service = (key: string): string => single(directives, key);
  const all = (key: string): string[] => directives.filter((d) => d.section === 'Service' && d.key === key).map((d) => d.value);
  const user = service('User');
  const group = service('Group');
  const supplementary = service('SupplementaryGroups').split(/\s+/).map((name) => {
    const entry = execFileSync('getent', ['group', name], { encoding: 'utf8' }).trim();
    return Number(entry.split(':')[2]);
  });
  const stateName = service('StateDirectory');
  const stateMount = `/var/lib/${stateName}`;
  assert.equal(service('ProtectSystem'), 'strict', 'the emulation implements ProtectSystem=strict');
  assert.deepEqual(all('ReadWritePaths'), [stateMount], 'the emulation expects the state directory as the only ReadWritePaths=');
  for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups', 'ProtectHostname']) {
    assert.equal(service(key), 'yes', `${key}=yes is what the emulation implements`);
  }
  assert.equal(service('ProtectProc'), 'invisible');
  assert.equal(service('CapabilityBoundingSet'), '');
  assert.equal(service('AmbientCapabilities'), '');
  assert.equal(service('SystemCallArchitectures'), 'native');
  assert.equal(process.arch, 'x64', 'the filter is built for x86-64');
  const errnoName = service('SystemCallErrorNumber');
  const errnoValue = (require('node:os') as typeof import('node:os')).constants.errno[errnoName as keyof typeof import('node:os').constants.errno];
  assert.ok(errnoValue, `unknown errno ${errnoName}`);

  const numbers = x86_64SyscallNumbers();
  const allowed = new Set<number>();
  for (const entry of service('SystemCallFilter').split(/\s+/)) {
    for (const name of entry.startsWith('@') ? syscallGroup(entry) : [entry]) {
      const nr = numbers.get(name);
      if (nr !== undefined) allowed.add(nr);
    }
  }
  const families = service('RestrictAddressFamilies').split(/\s+/).map((name) => {
    assert.ok(name in ADDRESS_FAMILIES, `add ${name} to ADDRESS_FAMILIES`);
    return ADDRESS_FAMILIES[name];
  });

  // Host-side files the sandbox binds in; /tmp is hidden by PrivateTmp= afterwards.
  const seccompExec = join(work, 'seccomp-exec');
  writeFileSync(`${seccompExec}.c`, SECCOMP_EXEC_C);
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', seccompExec, `${seccompExec}.c`], { stdio: 'pipe' });
  const etcDir = join(work, 'etc-uns-edge');
  mkdirSync(etcDir);
  copyFileSync(flowsFile, join(etcDir, 'flows.json'));
  const envFile = service('EnvironmentFile');
  writeFileSync(join(etcDir, envFile.split('/').pop() as string), Object.entries(serviceEnv).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  const stateDir = join(work, 'state');
  mkdirSync(stateDir);
  chownSync(stateDir, SERVICE_UID, SERVICE_UID);
  chmodSync(stateDir, parseInt(service('StateDirectoryMode'), 8));
  const inaccessible = join(work, 'inaccessible');
  writeFileSync(inaccessible, '');
  chmodSync(inaccessible, 0);
  for (const dir of ['etc-upper', 'etc-work', 'varlib-upper', 'varlib-work']) mkdirSync(join(work, dir));

  // The process environment systemd builds (systemd.exec(5) "Environment variables in spawned processes").
  const env: Record<string, string> = {
    PATH: SYSTEMD_PATH, USER: user, LOGNAME: user, HOME: stateMount, SHELL: '/usr/sbin/nologin',
    INVOCATION_ID: '0123456789abcdef0123456789abcdef', STATE_DIRECTORY: stateMount,
  };
  for (const value of all('Environment')) Object.assign(env, parseEnvironmentDirective(value));
  Object.assign(env, serviceEnv);

  const [execPath, ...execArgs] = service('ExecStart').split(/\s+/);
  assert.ok(existsSync(execPath), `${execPath} (ExecStart=) exists on this machine`);
  const installDir = '/opt/uns-edge';
  assert.ok(service('ExecStart').includes(`${installDir}/`), `ExecStart= runs from ${installDir}`);
  const etcMount = envFile.slice(0, envFile.lastIndexOf('/'));
  // This container's hard limit cannot be raised (even by root); systemd would set the unit's value.
  const limit = Math.min(Number(service('LimitNOFILE')), hardOpenFilesLimit());
  const umask = service('UMask');
  const workingDirectory = service('WorkingDirectory');

  const script = (command: string[]): string => [
    'set -eu',
    'mount --make-rprivate /',
    // ProtectProc=invisible in the service's own PID namespace.
    'mount -t proc -o hidepid=invisible,nosuid,nodev,noexec proc /proc',
    // The unit's user and group exist inside the sandbox only (overlay on /etc).
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${work}/etc-upper,workdir=${work}/etc-work /etc`,
    `echo '${user}:x:${SERVICE_UID}:${SERVICE_UID}::${stateMount}:/usr/sbin/nologin' >> /etc/passwd`,
    `echo '${group}:x:${SERVICE_UID}:' >> /etc/group`,
    // The installation described in the unit's header: the package in /opt, config in /etc (root:group 0750/0640, env 0600).
    `mkdir -m 0750 ${etcMount} && chgrp ${group} ${etcMount}`,
    `install -m 0640 -o root -g ${group} ${etcDir}/flows.json ${etcMount}/flows.json`,
    `install -m 0600 -o root -g root ${join(etcDir, envFile.split('/').pop() as string)} ${envFile}`,
    `mount -t tmpfs -o mode=0755 tmpfs /opt && mkdir ${installDir} /opt/sandbox-bin`,
    `mount --bind ${ROOT} ${installDir}`,
    `cp ${seccompExec} /opt/sandbox-bin/seccomp-exec`,
    // StateDirectory= owned by User=, mode StateDirectoryMode= (prepared on the host dir).
    `mount -t overlay overlay -o lowerdir=/var/lib,upperdir=${work}/varlib-upper,workdir=${work}/varlib-work /var/lib`,
    `mkdir ${stateMount} && mount --bind ${stateDir} ${stateMount}`,
    // ProtectKernelLogs=
    `for f in /dev/kmsg /proc/kmsg; do [ -e $f ] && mount --bind ${inaccessible} $f; done`,
    // PrivateTmp=
    'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp',
    'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp',
    // ProtectHome=yes
    'for d in /home /root /run/user; do [ -d $d ] && mount -t tmpfs -o ro,mode=000 tmpfs $d; done',
    // ProtectKernelTunables= / ProtectControlGroups=
    'mount --bind /proc/sys /proc/sys',
    // ProtectSystem=strict: every mount read-only, except /dev and /proc (kept, as systemd does) ...
    "awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r mp; do",
    '  case "$mp" in /dev|/dev/*|/proc|/proc/*) continue;; /tmp|/var/tmp) continue;; esac',
    '  mount -o remount,bind,ro "$mp" 2>/dev/null || mount -o remount,bind,ro,nosuid,nodev,noexec "$mp"',
    'done',
    'mount -o remount,bind,ro /proc/sys',
    // ... and ReadWritePaths= writable again.
    `mount -o remount,bind,rw ${stateMount}`,
    `cd ${workingDirectory}`,
    `umask ${umask}`,
    `exec prlimit --nofile=${limit}:${limit} -- setpriv --reuid=${SERVICE_UID} --regid=${SERVICE_UID} --groups=${supplementary.join(',')}`
      + ' --no-new-privs --bounding-set=-all --inh-caps=-all --ambient-caps=-all --'
      + ` env -i ${Object.entries(env).map(([k, v]) => shellQuote(`${k}=${v}`)).join(' ')}`
      + ` /opt/sandbox-bin/seccomp-exec ${errnoValue} ${[...allowed].join(',')} ${families.join(',')} ${command.map(shellQuote).join(' ')}`,
  ].join('\n');

  return { stateDir, etcDir, env, openFiles: limit, script: (command) => script(command.length ? command : [execPath, ...execArgs]) };
}

/** The sandboxed process: `unshare` (mount, UTS, PID namespaces) → bash as PID 1 → exec … → the command. */
class SandboxedProcess {
  output = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  get hasExited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  constructor(script: string) {
    this.child = spawn('unshare', ['--mount', '--uts', '--pid', '--fork', '--propagation', 'private', '--', '/bin/bash', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (data: Buffer) => { this.output += data.toString(); });
    this.child.stderr?.on('data', (data: Buffer) => { this.output += data.toString(); });
    this.exited = new Promise((resolveExit) => this.child.once('exit', (code) => resolveExit(code)));
    live.add(this);
    void this.exited.then(() => live.delete(this));
  }

  /** Host PID of the process unshare forked: bash, which exec'd into the service's command. */
  get pid(): number {
    const children = readFileSync(`/proc/${this.child.pid}/task/${this.child.pid}/children`, 'utf8').trim();
    assert.match(children, /^\d+$/, `unshare has one child: ${children}`);
    return Number(children);
  }

  signal(name: NodeJS.Signals): void {
    process.kill(this.pid, name);
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
const live = new Set<SandboxedProcess>();

/** ptrace(PTRACE_TRACEME) through libc's syscall(2): "ok", or the errno text. */
const PTRACE_TRACEME = 'import ctypes,os;l=ctypes.CDLL(None,use_errno=True);r=l.syscall(101,0,0,0,0);print(os.strerror(ctypes.get_errno()) if r<0 else "ok")';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function healthz(port: number): Promise<{ status: number; body: { status?: string; reasons?: string[] } }> {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: response.status, body: await response.json() as { status?: string; reasons?: string[] } };
}

async function waitForHealth(proc: SandboxedProcess, port: number, want: string, ms: number): Promise<{ status?: string; reasons?: string[] }> {
  const deadline = Date.now() + ms;
  let last: unknown = 'no answer';
  for (;;) {
    try {
      const health = await healthz(port);
      if (health.body.status === want) return health.body;
      last = health.body;
    } catch (error) {
      last = (error as Error).message;
    }
    if (proc.hasExited || Date.now() > deadline) throw new Error(`/healthz not "${want}" within ${ms} ms: ${JSON.stringify(last)}\n${proc.output}`);
    await sleep(200);
  }
}

function statusField(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  assert.ok(line, `no ${field} in /proc/${pid}/status`);
  return line.slice(field.length + 1).trim();
}

// ---------------------------------------------------------------------------------------------

describe('deploy/uns-edge.service under an emulated systemd sandbox (no systemd PID 1 here)', function () {
  this.timeout(120_000);
  const directives = parseUnit(readFileSync(UNIT_FILE, 'utf8'));
  let work: string;
  let broker: Mosquitto;
  let plant: ChildProcess | undefined;
  let plantPort: number;

  before(async function () {
    if (process.getuid?.() !== 0) this.skip();
    assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'uns-edge.js')), 'run `npm run build` first');
    work = mkdtempSync(join(tmpdir(), 'uns-deploy-systemd-'));
    chmodSync(work, 0o755);
    broker = await Mosquitto.start();
    plantPort = await freePort();
    // cwd: its own OPC UA state (<cwd>/.uns-edge/opcua-sim), not a PKI folder another test's plant may have left locked.
    plant = spawn(process.execPath, [join(ROOT, 'dist', 'cli', 'uns-edge.js'), 'simulate', '--port', String(plantPort), '--opcua-port', '0', '--drives', '4'], { cwd: work, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolveReady, reject) => {
      let output = '';
      plant?.stdout?.on('data', (data: Buffer) => { output += data.toString(); if (/Ready in/.test(output)) resolveReady(); });
      plant?.once('exit', () => reject(new Error(`simulate exited: ${output}`)));
    });
  });

  after(async () => {
    for (const proc of live) proc.kill();
    plant?.kill('SIGKILL');
    await broker?.dispose();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('knows every directive of the unit: each is emulated, checked, or has a stated reason', () => {
    const unknown = directives.map((d) => `${d.section}.${d.key}`).filter((key) => !(key in HANDLING));
    assert.deepEqual(unknown, [], 'directives without an emulation or a reason in HANDLING');
  });

  it('runs the demo flows as the unit says: /healthz ok, values in Mosquitto, the credentials, mounts and limits systemd would give, clean stop on KillSignal=', async () => {
    const port = await freePort();
    const serviceEnv = {
      ...parseEnvironmentFile(readFileSync(ENV_EXAMPLE, 'utf8')),
      UNS_EDGE_CREDENTIAL_SECRET: 'deploy-test-secret-0123456789abcdef',
      UNS_EDGE_PORT: String(port),
      UNS_EDGE_MQTT_HOST: '127.0.0.1', UNS_EDGE_MQTT_PORT: String(broker.port),
      UNS_EDGE_SIM_HOST: '127.0.0.1', UNS_EDGE_SIM_PORT: String(plantPort),
    };
    const sandbox = buildSandbox(join(work, 'run'), directives, serviceEnv, join(ROOT, 'flows', 'demo.json'));

    const subscriber = connect(broker.url);
    const received = new Map<string, string>();
    subscriber.on('message', (topic, payload) => received.set(topic, payload.toString()));
    await new Promise<void>((r) => subscriber.subscribe('acme/#', () => r()));

    const gateway = new SandboxedProcess(sandbox.script([]));
    try {
      const health = await waitForHealth(gateway, port, 'ok', 60_000);
      assert.deepEqual(health.reasons, []);
      const speedTopic = 'acme/plant1/packaging/line1/cell1/drive1/actualSpeed';
      const deadline = Date.now() + 15_000;
      while (!received.has(speedTopic) && Date.now() < deadline) await sleep(100);
      assert.ok(received.has(speedTopic), `no value on ${speedTopic}; got ${[...received.keys()].slice(0, 5).join(', ')}`);
      assert.equal(typeof (JSON.parse(received.get(speedTopic) as string) as { value: unknown }).value, 'number');

      // What systemd would have given the process, read back from the host's /proc.
      const pid = gateway.pid;
      assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '), /^\/usr\/bin\/node \/opt\/uns-edge\/dist\/cli\/uns-edge\.js run --flows \/etc\/uns-edge\/flows\.json/);
      assert.equal(statusField(pid, 'Uid'), Array(4).fill(SERVICE_UID).join('\t'));
      assert.equal(statusField(pid, 'Gid'), Array(4).fill(SERVICE_UID).join('\t'));
      assert.equal(statusField(pid, 'Groups'), '20', 'SupplementaryGroups=dialout');
      assert.equal(statusField(pid, 'NoNewPrivs'), '1');
      assert.equal(statusField(pid, 'Seccomp'), '2', 'a seccomp filter is in force');
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.equal(statusField(pid, set), '0000000000000000', set);
      assert.equal(statusField(pid, 'Umask'), '0027');
      assert.match(readFileSync(`/proc/${pid}/limits`, 'utf8'), new RegExp(`Max open files\\s+${sandbox.openFiles}\\s+${sandbox.openFiles}\\s`));
      assert.equal(readlinkSync(`/proc/${pid}/cwd`), '/var/lib/uns-edge');
      assert.notEqual(readlinkSync(`/proc/${pid}/ns/uts`), readlinkSync('/proc/self/ns/uts'), 'own hostname namespace');
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).sort();
      assert.deepEqual(environ, Object.entries(sandbox.env).map(([k, v]) => `${k}=${v}`).sort(), 'exactly the environment systemd builds');

      // Mounts as the service sees them.
      const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n').map((line) => {
        const fields = line.split(' ');
        const dash = fields.indexOf('-');
        return { point: fields[4], options: fields[5].split(','), type: fields[dash + 1], superOptions: fields[dash + 3] ?? '' };
      });
      const last = (point: string): (typeof mounts)[number] => {
        const found = mounts.filter((m) => m.point === point).pop();
        assert.ok(found, `no mount at ${point}`);
        return found;
      };
      for (const point of ['/', '/opt/uns-edge', '/etc', '/usr', '/sys', '/proc/sys']) {
        if (mounts.some((m) => m.point === point)) assert.ok(last(point).options.includes('ro'), `${point} read-only`);
      }
      for (const m of mounts.filter((x) => !/^\/(dev|proc|tmp$|var\/tmp$|var\/lib\/uns-edge$)/.test(x.point))) {
        assert.ok(m.options.includes('ro'), `${m.point} is read-only (ProtectSystem=strict)`);
      }
      assert.ok(last('/var/lib/uns-edge').options.includes('rw'), 'the state directory is writable');
      assert.equal(last('/tmp').type, 'tmpfs', 'PrivateTmp=');
      assert.equal(last('/root').type, 'tmpfs', 'ProtectHome=');
      assert.match(last('/proc').superOptions, /hidepid=invisible/);

      // Node-RED wrote its runtime state in the state directory only, with UMask=0027.
      const written = readdirSync(sandbox.stateDir);
      assert.ok(written.includes('.config.runtime.json'), `state dir holds ${written.join(', ')}`);
      for (const name of written) {
        const stat = statSync(join(sandbox.stateDir, name));
        assert.equal(stat.uid, SERVICE_UID, `${name} owned by the service user`);
        assert.equal(stat.mode & 0o007, 0, `${name} has no permissions for others (UMask=0027)`);
      }

      // KillSignal=SIGTERM: a clean stop (exit 0, so Restart=on-failure would not restart) within TimeoutStopSec=.
      const stopBudgetMs = Number(single(directives, 'TimeoutStopSec')) * 1000;
      const stoppedAt = Date.now();
      gateway.signal(single(directives, 'KillSignal') as NodeJS.Signals);
      const code = await Promise.race([gateway.exited, sleep(stopBudgetMs).then(() => 'timeout' as const)]);
      assert.equal(code, 0, `exit within ${stopBudgetMs} ms with 0\n${gateway.output}`);
      assert.ok(Date.now() - stoppedAt < stopBudgetMs);
      assert.doesNotMatch(gateway.output, /EPERM|EROFS|EACCES|Operation not permitted/, 'no refused operation in the log');
    } finally {
      gateway.kill();
      subscriber.end(true);
    }
  });

  it('walls of the sandbox hold for the service user: read-only system, unreadable secret, refused system calls and address families', async () => {
    const sandbox = buildSandbox(join(work, 'probe'), directives, { UNS_EDGE_CREDENTIAL_SECRET: 'deploy-test-secret-0123456789abcdef' }, join(ROOT, 'flows', 'demo.json'));
    const probe = String.raw`
      const fs = require('node:fs');
      const attempt = (what, fn) => { try { fn(); return what + ' ok'; } catch (e) { return what + ' ' + e.code; } };
      const net = require('node:net');
      const results = [
        attempt('write-install', () => fs.writeFileSync('/opt/uns-edge/probe', 'x')),
        attempt('write-run-lock', () => fs.writeFileSync('/run/lock/probe', 'x')), // 1777 on the host: only the mount refuses
        attempt('write-etc', () => fs.writeFileSync('/etc/uns-edge/probe', 'x')),
        attempt('read-envfile', () => fs.readFileSync('/etc/uns-edge/uns-edge.env')),
        attempt('read-flows', () => fs.readFileSync('/etc/uns-edge/flows.json')),
        attempt('write-state', () => fs.writeFileSync('/var/lib/uns-edge/probe', 'x')),
        attempt('write-tmp', () => fs.writeFileSync('/tmp/probe', 'x')),
        attempt('list-root-home', () => fs.readdirSync('/root')),
        attempt('write-sysctl', () => fs.writeFileSync('/proc/sys/kernel/hostname', 'x')),
        attempt('read-kmsg', () => fs.readFileSync('/dev/kmsg')),
        attempt('see-pid1-only', () => { const pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)); if (pids.length > 3) throw Object.assign(new Error(), { code: 'MANY:' + pids.length }); }),
      ];
      const { execFileSync } = require('node:child_process');
      // ptrace (@debug) is not in @system-service: EPERM (SystemCallErrorNumber=); AF_PACKET is not allowed: EAFNOSUPPORT (97).
      results.push('ptrace ' + execFileSync('/usr/bin/python3', ['-c', PTRACE_TRACEME]).toString().trim());
      results.push('af_packet ' + execFileSync('/usr/bin/python3', ['-c', 'import socket\ntry:\n socket.socket(17,3,0);print("ok")\nexcept OSError as e:\n print(e.errno)']).toString().trim());
      results.push('tcp ' + execFileSync('/usr/bin/python3', ['-c', 'import socket;socket.socket(socket.AF_INET,socket.SOCK_STREAM).close();print("ok")']).toString().trim());
      console.log(JSON.stringify(results));
    `;
    assert.equal(execFileSync('/usr/bin/python3', ['-c', PTRACE_TRACEME], { encoding: 'utf8' }).trim(), 'ok', 'outside the filter ptrace(PTRACE_TRACEME) succeeds');
    const proc = new SandboxedProcess(sandbox.script(['/usr/bin/node', '-e', `const PTRACE_TRACEME = ${JSON.stringify(PTRACE_TRACEME)};\n${probe}`]));
    const code = await proc.exited;
    assert.equal(code, 0, proc.output);
    const results = JSON.parse(proc.output.trim().split('\n').pop() as string) as string[];
    assert.deepEqual(results, [
      'write-install EROFS',
      'write-run-lock EROFS',
      'write-etc EROFS', // also 0750 root:uns-edge, but the read-only mount refuses first
      'read-envfile EACCES', // 0600 root: read by systemd before it drops privileges, never by the service
      'read-flows ok',
      'write-state ok',
      'write-tmp ok',
      'list-root-home EACCES',
      'write-sysctl EROFS',
      'read-kmsg EACCES',
      'see-pid1-only ok',
      'ptrace Operation not permitted',
      'af_packet 97',
      'tcp ok',
    ]);
  });

  it('a refused configuration exits with RestartPreventExitStatus= (no restart loop)', async () => {
    const brokenFlows = join(work, 'broken-flows.json');
    writeFileSync(brokenFlows, '{"not": "an array"}');
    const sandbox = buildSandbox(join(work, 'refused'), directives, { UNS_EDGE_PORT: String(await freePort()) }, brokenFlows);
    const proc = new SandboxedProcess(sandbox.script([]));
    const code = await proc.exited;
    assert.equal(code, Number(single(directives, 'RestartPreventExitStatus')), proc.output);
  });
});

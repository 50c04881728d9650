/**
 * deploy/kubernetes/*.yaml checked without a cluster (no internet, no kubectl here):
 * 1. a JSON schema of the Kubernetes fields these manifests use (names and types as in the
 *    Kubernetes API reference, core/v1 and apps/v1), closed with additionalProperties: false so a
 *    misspelt field (`readinesProbe`) fails instead of being dropped by the API server;
 * 2. the invariants of a gateway pod: probes on /healthz at the image's port, the credential
 *    secret from a Secret, Prometheus scrape annotations, non-root, read-only root, no capabilities,
 *    not privileged, resources set, the flows from a ConfigMap, and flows whose ${VAR} properties
 *    Node-RED can actually substitute from the container's environment.
 * YAML is read with js-yaml (a devDependency).
 */
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Ajv from 'ajv';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { loadAll(text: string): unknown[] };

const ROOT = resolve(__dirname, '..', '..');
const DIR = join(ROOT, 'deploy', 'kubernetes');

// ---------------------------------------------------------------------------------------------
// The schema: only what the manifests use, closed.

const closed = (properties: Record<string, object>, required: string[] = []): object => ({ type: 'object', additionalProperties: false, properties, required });
const str = { type: 'string', minLength: 1 };
const int = { type: 'integer', minimum: 0 };
const bool = { type: 'boolean' };
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
const quantity = { type: 'string', pattern: '^[0-9.]+(m|Ki|Mi|Gi|Ti)?$' };
const intOrName = { anyOf: [int, { type: 'string', pattern: '^[a-z0-9-]{1,15}$' }] };
const metadata = closed({ name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }, labels: stringMap, annotations: stringMap }, ['name']);
const probe = closed({
  httpGet: closed({ path: str, port: intOrName, scheme: { enum: ['HTTP', 'HTTPS'] } }, ['path', 'port']),
  initialDelaySeconds: int, periodSeconds: int, timeoutSeconds: int, failureThreshold: int, successThreshold: int,
}, ['httpGet']);
const envVar = closed({
  name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
  value: { type: 'string' },
  valueFrom: closed({
    secretKeyRef: closed({ name: str, key: str, optional: bool }, ['name', 'key']),
    configMapKeyRef: closed({ name: str, key: str, optional: bool }, ['name', 'key']),
    fieldRef: closed({ fieldPath: str }, ['fieldPath']),
  }),
}, ['name']);
const container = closed({
  name: str, image: str, imagePullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'] },
  command: { type: 'array', items: { type: 'string' } }, args: { type: 'array', items: { type: 'string' } },
  ports: { type: 'array', items: closed({ name: { type: 'string', pattern: '^[a-z0-9-]{1,15}$' }, containerPort: int, protocol: { enum: ['TCP', 'UDP'] } }, ['containerPort']) },
  env: { type: 'array', items: envVar },
  startupProbe: probe, livenessProbe: probe, readinessProbe: probe,
  resources: closed({ requests: closed({ cpu: quantity, memory: quantity }), limits: closed({ cpu: quantity, memory: quantity }) }),
  securityContext: closed({
    privileged: bool, allowPrivilegeEscalation: bool, readOnlyRootFilesystem: bool, runAsNonRoot: bool, runAsUser: int, runAsGroup: int,
    capabilities: closed({ drop: { type: 'array', items: str }, add: { type: 'array', items: str } }),
  }),
  volumeMounts: { type: 'array', items: closed({ name: str, mountPath: str, readOnly: bool, subPath: str }, ['name', 'mountPath']) },
}, ['name', 'image']);
const volume = closed({
  name: str,
  configMap: closed({ name: str, defaultMode: int }, ['name']),
  persistentVolumeClaim: closed({ claimName: str, readOnly: bool }, ['claimName']),
  emptyDir: closed({ medium: { enum: ['', 'Memory'] }, sizeLimit: quantity }),
}, ['name']);
const podSpec = closed({
  securityContext: closed({ runAsNonRoot: bool, runAsUser: int, runAsGroup: int, fsGroup: int, seccompProfile: closed({ type: { enum: ['RuntimeDefault', 'Localhost', 'Unconfined'] } }, ['type']) }),
  automountServiceAccountToken: bool, enableServiceLinks: bool, terminationGracePeriodSeconds: int,
  nodeSelector: stringMap, hostNetwork: bool, dnsPolicy: { enum: ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'] },
  containers: { type: 'array', minItems: 1, items: container },
  volumes: { type: 'array', items: volume },
}, ['containers']);
const podTemplate = closed({ metadata: closed({ labels: stringMap, annotations: stringMap }), spec: podSpec }, ['metadata', 'spec']);
const selector = closed({ matchLabels: stringMap }, ['matchLabels']);

const SCHEMA = {
  oneOf: [
    closed({ apiVersion: { const: 'v1' }, kind: { const: 'ConfigMap' }, metadata, data: stringMap }, ['apiVersion', 'kind', 'metadata', 'data']),
    closed({
      apiVersion: { const: 'v1' }, kind: { const: 'PersistentVolumeClaim' }, metadata,
      spec: closed({ accessModes: { type: 'array', items: { enum: ['ReadWriteOnce', 'ReadWriteOncePod', 'ReadOnlyMany', 'ReadWriteMany'] } }, resources: closed({ requests: closed({ storage: quantity }, ['storage']) }), storageClassName: str }, ['accessModes', 'resources']),
    }, ['apiVersion', 'kind', 'metadata', 'spec']),
    closed({
      apiVersion: { const: 'apps/v1' }, kind: { const: 'Deployment' }, metadata,
      spec: closed({ replicas: int, strategy: closed({ type: { enum: ['Recreate', 'RollingUpdate'] } }), selector, template: podTemplate }, ['selector', 'template']),
    }, ['apiVersion', 'kind', 'metadata', 'spec']),
    closed({
      apiVersion: { const: 'apps/v1' }, kind: { const: 'DaemonSet' }, metadata,
      spec: closed({ updateStrategy: closed({ type: { enum: ['RollingUpdate', 'OnDelete'] }, rollingUpdate: closed({ maxUnavailable: { anyOf: [int, str] }, maxSurge: { anyOf: [int, str] } }) }), selector, template: podTemplate }, ['selector', 'template']),
    }, ['apiVersion', 'kind', 'metadata', 'spec']),
  ],
};

// ---------------------------------------------------------------------------------------------

interface K8sObject { kind: string; metadata: { name: string; labels?: Record<string, string> }; data?: Record<string, string>; spec?: Record<string, unknown> }
interface Container {
  name: string; command?: string[]; ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: unknown } }>;
  startupProbe?: { httpGet: { path: string; port: number | string } }; livenessProbe?: { httpGet: { path: string; port: number | string } }; readinessProbe?: { httpGet: { path: string; port: number | string } };
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
  securityContext?: { privileged?: boolean; allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean; capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface PodTemplate {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { securityContext?: { runAsNonRoot?: boolean; runAsUser?: number }; hostNetwork?: boolean; containers: Container[]; volumes?: Array<{ name: string; configMap?: { name: string } }> };
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
const documents = (file: string): K8sObject[] => yaml.loadAll(readFileSync(join(DIR, file), 'utf8')).filter(Boolean) as K8sObject[];

/** ENV of the Dockerfile's last stage: what the container has before the pod's env. */
function imageEnv(): Record<string, string> {
  const dockerfile = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lastStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const line of lastStage.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const m of line.matchAll(/(\w+)=(\S+)/g)) env[m[1]] = m[2];
  }
  return env;
}

/** Every string property of every node, with its path, for the ${VAR} check. */
function stringProperties(value: unknown, path: string, out: Array<{ path: string; text: string }>): void {
  if (typeof value === 'string') out.push({ path, text: value });
  else if (Array.isArray(value)) value.forEach((v, i) => stringProperties(v, `${path}[${i}]`, out));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) stringProperties(v, `${path}.${k}`, out);
}

describe('deploy/kubernetes manifests', () => {
  const validate = new Ajv({ allErrors: true, strict: true }).compile(SCHEMA);

  it('exist: one Deployment per line and a DaemonSet option', () => {
    const kinds = files.flatMap((f) => documents(f).map((d) => d.kind));
    assert.ok(kinds.includes('Deployment'));
    assert.ok(kinds.includes('DaemonSet'));
  });

  for (const file of files) {
    describe(file, () => {
      const objects = documents(file);
      const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet');

      it('every object matches the schema of the Kubernetes fields used (no unknown or misspelt field)', () => {
        for (const object of objects) {
          assert.ok(validate(object), `${object.kind} ${object.metadata?.name}: ${JSON.stringify(validate.errors?.slice(0, 5), null, 1)}`);
        }
        assert.ok(!objects.some((o) => o.kind === 'Secret'), 'no Secret with a value in the repository');
      });

      for (const workload of workloads) {
        const template = workload.spec?.template as PodTemplate;
        const [gateway] = template.spec.containers;
        const port = (ref: number | string): number | undefined => typeof ref === 'number' ? ref : gateway.ports?.find((p) => p.name === ref)?.containerPort;

        it(`${workload.kind} ${workload.metadata.name}: probes on /healthz at the image's port, Prometheus annotations for /metrics there`, () => {
          const imagePort = Number(imageEnv().UNS_EDGE_PORT);
          assert.equal(imagePort, 1880);
          assert.ok(!(gateway.env ?? []).some((e) => e.name === 'UNS_EDGE_PORT'), 'the port is the image\'s');
          for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe'] as const) {
            const probe = gateway[kind];
            assert.ok(probe, `${kind} set`);
            assert.equal(probe.httpGet.path, '/healthz', kind);
            assert.equal(port(probe.httpGet.port), imagePort, `${kind} port`);
          }
          const annotations = template.metadata.annotations ?? {};
          assert.equal(annotations['prometheus.io/scrape'], 'true');
          assert.equal(Number(annotations['prometheus.io/port']), imagePort);
          assert.equal(annotations['prometheus.io/path'], '/metrics');
        });

        it(`${workload.kind} ${workload.metadata.name}: the credential secret comes from a Secret, never a literal`, () => {
          const secret = (gateway.env ?? []).filter((e) => e.name === 'UNS_EDGE_CREDENTIAL_SECRET');
          assert.equal(secret.length, 1);
          assert.equal(secret[0].value, undefined);
          assert.equal(secret[0].valueFrom?.secretKeyRef?.key, 'UNS_EDGE_CREDENTIAL_SECRET');
        });

        it(`${workload.kind} ${workload.metadata.name}: non-root, read-only root file system, no capabilities, not privileged, resources set`, () => {
          const pod = template.spec.securityContext ?? {};
          const sc = gateway.securityContext ?? {};
          assert.equal(pod.runAsNonRoot, true);
          assert.ok((pod.runAsUser ?? 0) > 0, 'a non-zero uid');
          assert.equal(sc.runAsNonRoot, true);
          assert.equal(sc.privileged, false);
          assert.equal(sc.allowPrivilegeEscalation, false);
          assert.equal(sc.readOnlyRootFilesystem, true);
          assert.deepEqual(sc.capabilities?.drop, ['ALL']);
          assert.equal(sc.capabilities?.add, undefined);
          assert.ok(gateway.resources?.requests?.cpu && gateway.resources.requests.memory && gateway.resources.limits?.memory, 'cpu and memory requests, memory limit');
          // A read-only root needs every path the gateway writes as a writable volume: /tmp and the user dir.
          const command = gateway.command ?? [];
          const userDir = command[command.indexOf('--user-dir') + 1];
          for (const path of ['/tmp', userDir]) {
            const mount = gateway.volumeMounts?.find((m) => m.mountPath === path);
            assert.ok(mount && !mount.readOnly, `${path} is a writable volume`);
          }
        });

        it(`${workload.kind} ${workload.metadata.name}: headless, flows from a ConfigMap of this file, and every \${VAR} in them substitutable from the container's environment`, () => {
          const command = gateway.command ?? [];
          assert.ok(command.includes('--headless'), 'no editor in a pod');
          const flowsPath = command[command.indexOf('--flows') + 1];
          const mount = gateway.volumeMounts?.find((m) => flowsPath.startsWith(`${m.mountPath}/`));
          assert.ok(mount?.readOnly, `${flowsPath} is on a read-only volume mount`);
          const configMapName = template.spec.volumes?.find((v) => v.name === mount.name)?.configMap?.name;
          const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === configMapName);
          assert.ok(configMap, `ConfigMap ${configMapName} in ${file}`);
          const flows = JSON.parse(configMap.data?.[flowsPath.slice(mount.mountPath.length + 1)] ?? 'null') as Array<{ id: string; type: string }>;
          assert.ok(Array.isArray(flows) && flows.length > 0);
          assert.equal(new Set(flows.map((n) => n.id)).size, flows.length, 'unique ids');
          const defined = new Set([...Object.keys(imageEnv()), ...(gateway.env ?? []).map((e) => e.name)]);
          const properties: Array<{ path: string; text: string }> = [];
          flows.forEach((node) => stringProperties(node, node.id, properties));
          for (const { path, text } of properties.filter((p) => p.text.includes('${'))) {
            // Node-RED (runtime/lib/flows/util.js mapEnvVarProperties) replaces a property that is exactly ${NAME}, nothing else.
            const whole = /^\$\{(\w+)\}$/.exec(text);
            assert.ok(whole, `${path} = ${JSON.stringify(text)}: Node-RED substitutes only a whole "\${NAME}" property`);
            assert.ok(defined.has(whole[1]), `${path} needs ${whole[1]}, which the container's environment does not define`);
          }
        });

        it(`${workload.kind} ${workload.metadata.name}: the selector matches the pod's labels; a Deployment runs one gateway, stopped before its successor polls`, () => {
          const matchLabels = (workload.spec?.selector as { matchLabels: Record<string, string> }).matchLabels;
          for (const [k, v] of Object.entries(matchLabels)) assert.equal(template.metadata.labels?.[k], v, k);
          if (workload.kind === 'Deployment') {
            assert.equal(workload.spec?.replicas, 1);
            assert.deepEqual(workload.spec?.strategy, { type: 'Recreate' });
          }
        });
      }
    });
  }
});

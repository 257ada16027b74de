// A SMART App Launch authorization server for the end-to-end tests: oidc-provider 9 (OpenID
// certified) configured for SMART (docs/spec/test-servers.md §2.4), plus what SMART adds:
//  - `launch` and `aud` accepted on /auth; `aud` must be the FHIR base;
//  - PKCE required (oidc-provider accepts S256 only);
//  - JWT access tokens (RS256) with aud = the FHIR base and the launch's `patient` claim;
//  - the launch context as top-level fields of the token response (a Koa middleware after /token);
//  - `fhirUser` in the id_token; auto-login (a test EHR, no login form).
// The test EHR mints `launch` as base64url JSON {patient, order, appContext, need_patient_banner}:
// opaque to the app, readable here. Standalone launches get DEFAULT_PATIENT.
// Env: PORT, HOST, ISSUER, FHIR_BASE, CLIENTS (JSON list of oidc-provider client metadata), FHIR_USER,
// DEFAULT_PATIENT, GRANT_WRITE ("0" drops the write scopes: the app must go read-only), GRANT_UPDATE
// ("0" grants `.c` where `.cu` was asked: Save is create-only; also per launch: `grant_update: false`).
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const PORT = Number(process.env.PORT || 0);
const FHIR_BASE = process.env.FHIR_BASE;
const CLIENTS = JSON.parse(process.env.CLIENTS || '[]');
const FHIR_USER = process.env.FHIR_USER || 'Practitioner/prac-1';
const DEFAULT_PATIENT = process.env.DEFAULT_PATIENT || '';
const GRANT_WRITE = process.env.GRANT_WRITE !== '0';
const GRANT_UPDATE = process.env.GRANT_UPDATE !== '0';
// HOST/ISSUER: deploy/compose.yaml runs it in a container (listen on all interfaces, public URL).
const HOST = process.env.HOST || '127.0.0.1';
const ISSUER = process.env.ISSUER || `http://127.0.0.1:${PORT}`;
const RESOURCE_SCOPES = [
  'patient/Patient.r', 'patient/Condition.rs', 'patient/Procedure.rs', 'patient/Observation.rs',
  'patient/ServiceRequest.rs', 'patient/Observation.cu', 'patient/RiskAssessment.cu',
  'patient/Observation.c', 'patient/RiskAssessment.c',
  'patient/Provenance.c', 'patient/DiagnosticReport.rs', 'user/Practitioner.r',
  'patient/RiskAssessment.rs', 'patient/Provenance.rs',
];
if (!FHIR_BASE || !PORT) throw new Error('set PORT and FHIR_BASE');

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'as-rs256', alg: 'RS256', use: 'sig' };
const launches = new Map(); // accountId -> launch context

function decodeLaunch(value) {
  if (!value) return { patient: DEFAULT_PATIENT, need_patient_banner: true };
  return JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
}

const provider = new Provider(ISSUER, {
  clients: CLIENTS,
  jwks: { keys: [jwk] },
  cookies: { keys: [randomUUID()] },
  extraParams: ['launch', 'aud'],
  scopes: ['openid', 'offline_access', 'fhirUser', 'launch', 'launch/patient', 'online_access'],
  claims: { openid: ['sub'], fhirUser: ['fhirUser'] },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  async findAccount(_ctx, id) {
    return { accountId: id, claims: async () => ({ sub: id, fhirUser: FHIR_USER }) };
  },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => FHIR_BASE,
      useGrantedResource: () => true,
      getResourceServerInfo(_ctx, resource) {
        if (resource !== FHIR_BASE) throw new errors.InvalidTarget();
        return {
          scope: RESOURCE_SCOPES.join(' '),
          audience: FHIR_BASE,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  async extraTokenClaims(_ctx, token) {
    const context = launches.get(token.accountId) || {};
    return { patient: context.patient, fhirUser: FHIR_USER };
  },
});

provider.use(async (ctx, next) => {
  // SMART: the authorization request names the FHIR server it wants a token for.
  if (ctx.path === '/auth' && ctx.method === 'GET' && ctx.query.aud !== FHIR_BASE) {
    ctx.status = 400;
    ctx.body = { error: 'invalid_request', error_description: 'aud must be the FHIR base' };
    return;
  }
  // An EHR that grants no update: `.cu` becomes `.c` before oidc-provider reads the request (it
  // filters the token's scope by what was asked, so the downgrade must happen here).
  if (ctx.path === '/auth' && ctx.method === 'GET' && typeof ctx.query.scope === 'string') {
    const noUpdate = !GRANT_UPDATE || decodeLaunch(ctx.query.launch).grant_update === false;
    if (noUpdate) ctx.query = { ...ctx.query, scope: ctx.query.scope.replace(/\.cu\b/g, '.c') };
  }
  // The test EHR signs the user in and approves what the app asked for (within what is allowed).
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (match) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const params = details.params;
    const accountId = `user-${randomUUID()}`;
    launches.set(accountId, decodeLaunch(params.launch));
    const asked = String(params.scope || '').split(' ');
    const grant = new provider.Grant({ accountId, clientId: params.client_id });
    grant.addOIDCScope(asked.filter((s) => !/^(patient|user)\//.test(s)).join(' '));
    const resource = asked.filter(
      (s) => RESOURCE_SCOPES.includes(s) && (GRANT_WRITE || !/\.cu?$/.test(s)),
    );
    grant.addResourceScope(FHIR_BASE, resource.join(' '));
    const grantId = await grant.save();
    const target = await provider.interactionResult(
      ctx.req, ctx.res,
      { login: { accountId }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
    ctx.redirect(target);
    return;
  }
  await next();
  // SMART launch context as top-level fields of the token response (also on refresh).
  if (ctx.path === '/token' && ctx.body && ctx.body.access_token) {
    const payload = JSON.parse(Buffer.from(ctx.body.access_token.split('.')[1], 'base64url'));
    const context = launches.get(payload.sub) || {};
    ctx.body.patient = context.patient;
    ctx.body.need_patient_banner = context.need_patient_banner !== false;
    if (context.order) ctx.body.fhirContext = [{ reference: context.order }];
    if (context.appContext) ctx.body.appContext = context.appContext;
  }
});

const server = provider.listen(PORT, HOST, () => {
  process.stdout.write(`smart-as ready ${ISSUER}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

// panva's oidc-provider (OpenID Certified), run on loopback for the tests: node provider.mjs
// config.json. It prints "listening <issuer>" once it answers. Its own development pages
// are the sign-in screen (any login, any password: the login is the account id) and the
// sign-out confirmation; nothing here changes how the protocol is spoken.
//
// config.json:
//   host, port, issuer          where it listens and the issuer it names
//   clientAuthMethods           token endpoint methods it accepts (and its discovery lists)
//   claimsInIdToken             false (the library's default, conformIdTokenClaims): the
//                               ID token holds only sub, the claims come from userinfo
//   acrValues                   e.g. ["eidas1"] for FranceConnect
//   scopes                      scope -> claims it releases (FranceConnect: one per claim)
//   accounts                    login -> claims
//   clients                     client metadata as registered (RFC 7591 names)
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const page = (title, body) => `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>
</head><body><h1>${title}</h1>${body}</body></html>`;

const provider = new Provider(config.issuer, {
  clients: config.clients,
  clientAuthMethods: config.clientAuthMethods,
  conformIdTokenClaims: !config.claimsInIdToken,
  acrValues: config.acrValues ?? [],
  claims: { openid: ['sub'], ...config.scopes },
  scopes: ['openid', ...Object.keys(config.scopes)],
  pkce: { required: () => true },
  cookies: { keys: ['test-only-cookie-key'] },
  features: {
    devInteractions: { enabled: true },
    userinfo: { enabled: true },
    jwtUserinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // The library's pages, without their web font (no internet here).
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out', `${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<p>Your sign-out was successful.</p>');
      },
    },
  },
  // First-party clients: no consent screen, as FranceConnect and ProConnect.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope);
    await grant.save();
    return grant;
  },
  async findAccount(ctx, id) {
    const claims = config.accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<pre>${JSON.stringify(out).replace(/</g, '&lt;')}</pre>`);
  },
});

// Every request the provider answers, for the tests to read (method, path, auth scheme).
provider.use(async (ctx, next) => {
  await next();
  const scheme = (ctx.get('authorization') || '').split(' ')[0];
  process.stdout.write(`request ${ctx.method} ${ctx.path} ${ctx.status} ${scheme || '-'}\n`);
});

provider.listen(config.port, config.host, () => {
  process.stdout.write(`listening ${config.issuer}\n`);
});

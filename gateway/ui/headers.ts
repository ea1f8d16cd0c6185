// The security headers of every HTML page the gateway serves (the web UI under /ui and the
// public status page under /status): a strict CSP with nothing inline, no framing, and no
// referrer sent off-site. HSTS is the TLS terminator's decision (docs/deploy.md), not the gateway's.
import { secureHeaders } from 'hono/secure-headers';

export const pageHeaders = () =>
  secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
      objectSrc: ["'none'"],
    },
    xFrameOptions: 'DENY',
    referrerPolicy: 'same-origin',
    strictTransportSecurity: false,
  });

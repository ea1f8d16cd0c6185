#!/usr/bin/env node
// The `posthorn` command. Sources are TypeScript run through tsx's loader, so there is no
// build step between `npm ci` and `npm start`.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');

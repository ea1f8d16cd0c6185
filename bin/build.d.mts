// Types of bin/build.mjs (plain JavaScript: it runs before anything can load TypeScript).
export declare function cacheDirFor(root: string): string;
export declare function builtEntry(): Promise<string | null>;

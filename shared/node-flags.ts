// Node/V8 flags per role. V8 reads them only when a process starts, so whatever starts a role
// passes them on its command line: `posthorn start` (bin/start.ts), the bench (bench/bench.ts)
// and docker-compose.yml (NODE_OPTIONS of the gateway service).
//
// The gateway: a young generation of up to 2 × 32 MB (Node 20's default stops at 2 × 16 MB). A
// batch of 1,000 tasks (its raw JSON, the validated tasks, the INSERT's parameters and rows)
// stays alive across its INSERT; with 4 batches in flight the default young generation is too
// small to let it die there, so it is promoted and collected from the old generation, which
// costs more. Measured with the bench (3 interleaved pairs, 60,000 batched tasks each): 37 → 31
// µs of gateway CPU per batched task; single enqueues unchanged (282 → 272 µs, within noise).
// Workers keep the default: their memory is what is bounded (docs/bench.md, "Memory").
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];

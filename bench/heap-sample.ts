/**
 * Preload that records where a benchmark allocates: V8's sampling heap profiler, started
 * before the benchmark's first line and told to keep samples of objects the collector has
 * since freed (young ones included), so the profile counts every byte allocated, not only
 * what is alive at the end. Written on exit to $HEAP_SAMPLE_OUT (default
 * scratch/heap-sample.heapprofile); summarise it with bench/profile-summary.ts.
 *
 *   npx tsc -p tsconfig.bench.json
 *   HEAP_SAMPLE_OUT=scratch/q.heapprofile node --import ./scratch/bench-js/bench/heap-sample.js \\
 *     scratch/bench-js/bench/cluster.js --nodes 20 --degree 4 --seed 1 --size 256 --messages 1000 --window 1 --warmup 20 --signed false
 *   npx tsx bench/profile-summary.ts scratch/q.heapprofile
 *
 * One sample per 2 KiB allocated on average: the figures are estimates, good to a few percent
 * for anything above about 1% of the total. The warm-up and the links' setup are included.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const out = process.env.HEAP_SAMPLE_OUT ?? 'scratch/heap-sample.heapprofile';
const session = new Session();
session.connect();
session.post('HeapProfiler.enable');
session.post('HeapProfiler.startSampling', { samplingInterval: 2048, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
process.on('exit', () => {
  // An in-process session answers synchronously, so the profile is written before exit.
  session.post('HeapProfiler.stopSampling', (err, res) => {
    if (err) process.stderr.write(`heap-sample: ${err.message}\n`);
    else writeFileSync(out, JSON.stringify(res.profile));
  });
});

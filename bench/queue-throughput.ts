// Throughput of the Redis queue with 1, 2 and 3 `sana worker` processes behind one `sana serve --queue`, on the
// bundled default model at its native 256 px: a private redis-server, the API and the workers as separate
// processes (as in production), J jobs submitted at once per round after a warm-up job per worker, wall time from
// the first submission to the last job done. Prints jobs/s, the speed-up over one worker, each worker's share (from
// /metrics), the mean seconds a job took on its worker (which grows when workers compete for cores) and the CPU
// seconds the workers spent per job (from /proc: the work itself, which stays put when only the wait grows) and
// the seconds their threads sat ready to run with no core free (the share of the machine they did not get).
// ref: docs/server.md "Scale-out", README "Scale-out"
//
//   node dist/bench/queue-throughput.js [--jobs 24] [--steps 20] [--threads 1] [--workers 1,2,3]

import * as fs from 'node:fs';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { startRedis } from '../test/helpers/redis-server.js';
import { SanaProcess, startSana } from '../test/helpers/sana-processes.js';
import { api, waitForJob } from '../test/helpers/server-client.js';

interface Round {
  workers: number;
  jobs: number;
  wallSeconds: number;
  jobsPerSecond: number;
  perWorker: number[];
  meanJobSeconds: number;
  /** CPU seconds (user + system) the workers used per job: the work itself, apart from waiting for a core. */
  cpuSecondsPerJob: number;
  /** Seconds the workers' threads spent runnable but waiting for a core, per job (from /proc/PID/task/*\/schedstat). */
  runQueueSecondsPerJob: number;
}

/** Seconds all threads of a process have waited on a run queue (ready to run, no core free). */
function runQueueSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  let ns = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[1]);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns / 1e9;
}

/** CPU seconds a process has used so far, from /proc (Linux; clock ticks of 1/100 s). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // after "pid (comm) "
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime
}

async function runJobs(base: string, count: number, steps: number, seed0: number): Promise<any[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = await api(base, 'POST', '/api/generate', { prompt: 'a red circle left of a blue square', seed: seed0 + i, steps, preview: false });
    if (r.status !== 202) throw new Error(`submit: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    ids.push(r.body.id);
  }
  const jobs = [];
  for (const id of ids) {
    const job = await waitForJob(base, id, {}, 600_000);
    if (job.status !== 'done') throw new Error(`job ${id}: ${job.status} ${job.error}`);
    jobs.push(job);
  }
  return jobs;
}

async function doneByWorker(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^sana_worker_jobs_total\{model="default",worker="([^"]+)",status="done"\} (\d+)$/gm)) counts.set(m[1], Number(m[2]));
  return counts;
}

export async function queueThroughput(o: { jobs: number; steps: number; threads: number; workers: number[] }): Promise<Round[]> {
  const redis = await startRedis();
  const server = await startSana(['serve', '--port', '0', '--queue', redis.url, '--queue-size', String(o.jobs + 8)], /sana serve: (http:\/\/127\.0\.0\.1:\d+)/);
  const base = server.ready[1];
  const rounds: Round[] = [];
  let seed = 1;
  try {
    for (const n of o.workers) {
      const workers: SanaProcess[] = [];
      const names = Array.from({ length: n }, (_, i) => `r${n}w${i + 1}`);
      try {
        for (const name of names) {
          workers.push(await startSana(['worker', '--queue', redis.url, '--name', name, '--threads', String(o.threads)], /taking jobs/));
        }
        await runJobs(base, n * 2, o.steps, seed); // warm-up: each worker's first job loads its sessions' caches
        seed += n * 2;
        const before = await doneByWorker(base);
        const cpu0 = workers.reduce((a, w) => a + cpuSeconds(w.child.pid), 0);
        const wait0 = workers.reduce((a, w) => a + runQueueSeconds(w.child.pid), 0);
        const t0 = performance.now();
        const jobs = await runJobs(base, o.jobs, o.steps, seed);
        const wallSeconds = (performance.now() - t0) / 1000;
        const cpu = workers.reduce((a, w) => a + cpuSeconds(w.child.pid), 0) - cpu0;
        const waited = workers.reduce((a, w) => a + runQueueSeconds(w.child.pid), 0) - wait0;
        seed += o.jobs;
        const after = await doneByWorker(base);
        rounds.push({
          workers: n,
          jobs: o.jobs,
          wallSeconds,
          jobsPerSecond: o.jobs / wallSeconds,
          perWorker: names.map((w) => (after.get(w) ?? 0) - (before.get(w) ?? 0)),
          meanJobSeconds: jobs.reduce((a, j) => a + j.timings.totalSeconds, 0) / jobs.length,
          cpuSecondsPerJob: cpu / o.jobs,
          runQueueSecondsPerJob: waited / o.jobs,
        });
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
      }
    }
  } finally {
    await server.stop();
    await redis.stop();
  }
  return rounds;
}

const invokedDirectly = process.argv[1]?.endsWith('queue-throughput.js');
if (invokedDirectly) {
  const { values } = parseArgs({
    options: { jobs: { type: 'string', default: '24' }, steps: { type: 'string', default: '20' }, threads: { type: 'string', default: '1' }, workers: { type: 'string', default: '1,2,3' } },
  });
  const o = { jobs: Number(values.jobs), steps: Number(values.steps), threads: Number(values.threads), workers: values.workers.split(',').map(Number) };
  console.log(`queue throughput: ${o.jobs} jobs of ${o.steps} steps at 256 px, ${o.threads} thread(s) per worker, ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)}`);
  const rounds = await queueThroughput(o);
  const one = rounds.find((r) => r.workers === 1)?.jobsPerSecond ?? rounds[0].jobsPerSecond;
  console.log('workers  wall s  jobs/s  speed-up  mean s/job on worker  CPU s/job  waiting for a core s/job  jobs per worker');
  for (const r of rounds) {
    console.log(
      `${String(r.workers).padStart(7)}  ${r.wallSeconds.toFixed(1).padStart(6)}  ${r.jobsPerSecond.toFixed(2).padStart(6)}  ${(r.jobsPerSecond / one).toFixed(2).padStart(7)}x  ${r.meanJobSeconds.toFixed(2).padStart(20)}  ${r.cpuSecondsPerJob.toFixed(2).padStart(9)}  ${r.runQueueSecondsPerJob.toFixed(2).padStart(24)}  ${r.perWorker.join(' / ')}`,
    );
  }
  console.log(`load average after: ${os.loadavg()[0].toFixed(1)}`);
}

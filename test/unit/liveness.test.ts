import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadGauge, SILENCE_MAX_MS, SILENCE_MS, SilenceCounter, TICK_MS, WorkingDeadline, silenceBudget } from '../../src/ssh/liveness.js';
import { HandshakePacer, PACE_MIN, PACE_START } from '../../src/ssh/handshake-pacer.js';

/** Ticks a counter on time until it declares the host lost; the number of ticks it took. */
function ticksUntilLost(c: SilenceCounter, elapsed = TICK_MS, lag = 0, max = 10_000): number {
  for (let i = 1; i <= max; i++) if (c.tick(elapsed, lag)) return i;
  return Infinity;
}

test('an idle controller declares a silent host lost after SILENCE_MS (4 s), within 5 s', () => {
  const c = new SilenceCounter();
  const ticks = ticksUntilLost(c);
  assert.equal(ticks * TICK_MS, SILENCE_MS);
  assert.ok(SILENCE_MS + 1_000 + TICK_MS <= 5_300, 'a keepalive interval plus the silence stays about 5 s');
});

test('any byte heard resets the silence', () => {
  const c = new SilenceCounter();
  for (let i = 0; i < 15; i++) assert.equal(c.tick(TICK_MS, 0), false);
  c.heard();
  assert.equal(c.silent, 0);
  assert.equal(ticksUntilLost(c), SILENCE_MS / TICK_MS);
});

test('a controller that stood still is not taken for a silent host: a late tick counts as one on time', () => {
  const c = new SilenceCounter();
  // The event loop blocked for 10 s, then for 8 s: wall-clock silence 18 s, working time only two ticks.
  assert.equal(c.tick(10_000, 0), false);
  assert.equal(c.tick(8_000, 0), false);
  assert.ok(c.silent < 1_000, `counted ${c.silent} ms`);
  // A starved controller whose every tick runs 750 ms late: 20 s of wall time without a byte is not
  // yet a lost host (wall-clock counting would have given up after 4 s).
  const starved = new SilenceCounter();
  for (let i = 0; i < 20; i++) assert.equal(starved.tick(1_000, 750), false, `lost after ${i + 1} s`);
});

test('recent controller lag allows more silence, fades, and is capped', () => {
  assert.equal(silenceBudget(0), SILENCE_MS);
  assert.equal(silenceBudget(50), SILENCE_MS, 'jitter extends nothing');
  assert.ok(silenceBudget(2_000) > 10_000);
  assert.equal(silenceBudget(60_000), SILENCE_MAX_MS);

  const g = new LoadGauge();
  g.note(0, TICK_MS);
  assert.equal(g.current(0), 0);
  g.note(1_000, TICK_MS + 2_000);
  assert.equal(g.current(1_000), 2_000);
  assert.ok(Math.abs(g.current(11_000) - 1_000) < 1, 'halves in 10 s');
  assert.ok(silenceBudget(g.current(90_000)) === SILENCE_MS, 'an idle minute later the budget is back to 4 s');

  // Under 2 s of lag, a host silent for 6 s of working time is still alive.
  const c = new SilenceCounter();
  for (let i = 0; i < 24; i++) assert.equal(c.tick(TICK_MS, 2_000), false);
});

test('a handshake deadline counts working time: 10 s on an idle controller, far longer on a starved one', () => {
  const idle = new WorkingDeadline(10_000);
  let n = 0;
  while (!idle.tick(TICK_MS)) n++;
  assert.equal(n + 1, 40);
  const starved = new WorkingDeadline(10_000);
  let wall = 0;
  while (!starved.tick(2_000)) wall += 2_000;
  assert.ok(wall >= 60_000, `starved deadline after ${wall} ms of wall time`);
});

test('handshakes are paced: PACE_START at once, one more per fast one, halved by a slow one', async () => {
  const p = new HandshakePacer();
  for (let i = 0; i < PACE_START; i++) await p.acquire();
  let admitted = 0;
  const waiters = Array.from({ length: 5 }, () => p.acquire().then(() => admitted++));
  await Promise.resolve();
  assert.equal(admitted, 0, 'the eleventh waits');
  assert.equal(p.queued, 5);
  p.release(300); // fast: limit 11, and the freed slot: two admitted
  await Promise.all(waiters.slice(0, 2));
  assert.equal(p.limit, PACE_START + 1);
  assert.equal(admitted, 2);
  p.release(8_000); // slow: limit halves to 5, nothing more runs until in-flight drops below it
  assert.equal(p.limit, Math.floor((PACE_START + 1) / 2));
  await Promise.resolve();
  assert.equal(admitted, 2);
  assert.equal(p.running, PACE_START);
  // Slow ones go on halving down to PACE_MIN; the queue drains at that pace.
  for (let i = 0; i < 11; i++) p.release(9_000);
  assert.equal(p.limit, PACE_MIN);
  await Promise.all(waiters);
  assert.equal(admitted, 5);
  assert.equal(p.running, PACE_MIN);
});

test('HandshakePacer.run times the handshake, not its wait in the queue, and frees the slot on failure', async () => {
  let now = 0;
  const p = new HandshakePacer(() => now);
  await assert.rejects(
    p.run(async () => {
      now += 6_000;
      throw new Error('refused');
    }),
    /refused/,
  );
  assert.equal(p.running, 0);
  assert.equal(p.limit, Math.floor(PACE_START / 2));
  await p.run(async () => {
    now += 100;
  });
  assert.equal(p.limit, Math.floor(PACE_START / 2) + 1);
});

// Every scenario, in table order (the runner and the smoke test both use this list).
import { scenario as throughput } from './01-throughput.js';
import { scenario as latency } from './02-latency.js';
import { scenario as fairness } from './03-fairness.js';
import { scenario as sessions } from './04-sessions.js';
import { scenario as streaming } from './05-streaming.js';
import { scenario as firstItem } from './06-first-item.js';
import { scenario as websocketd } from './07-websocketd.js';
import { scenario as idle } from './08-idle.js';
import { scenario as cache } from './09-cache.js';
import { scenario as hugeAnswers } from './10-huge-answers.js';
import { scenario as bigSearch } from './11-big-search.js';
import type { Scenario } from './lib/types.js';

export const SCENARIOS: readonly Scenario[] = [throughput, latency, fairness, sessions, streaming, firstItem, websocketd, idle, cache, hugeAnswers, bigSearch];

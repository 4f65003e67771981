// ExpiringTotal: the Redis store's "bytes stored and not yet expired", on a fake clock.
import t from 'tap';
import { ExpiringTotal } from '../src/cache/expiring-total.js';

t.test('each size leaves the total once its ttl (rounded up to a second) has passed', async (t) => {
  let now = 0;
  const total = new ExpiringTotal(10_000, () => now);
  total.add(100); // expires at 10 s
  now = 2_500;
  total.add(50); // expires at 12.5 s → 13 s
  t.equal(total.value(), 150);
  now = 9_999;
  t.equal(total.value(), 150);
  now = 10_000;
  t.equal(total.value(), 50, 'the first is out at its ttl');
  now = 12_999;
  t.equal(total.value(), 50, 'the second counts until the end of its second');
  now = 13_000;
  t.equal(total.value(), 0);
});

t.test('the queue stays bounded however many adds', async (t) => {
  let now = 0;
  const total = new ExpiringTotal(3_600_000, () => now); // an hour: 3.6 s buckets
  for (let i = 0; i < 100_000; i++) {
    now = i * 36; // 100,000 adds over one hour
    total.add(1);
  }
  t.equal(total.value(), 100_000);
  t.ok(total.buckets <= 1001, `${total.buckets} buckets for 100,000 adds`);
  now += 3_600_000 + 3_600;
  t.equal(total.value(), 0);
  t.equal(total.buckets, 0);
});

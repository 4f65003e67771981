<?php
// Benchmark items script. stdin: one line, the supplier {"sleep":MS,"items":K} (both optional:
// no sleep, 3 items). stdout: {"items":[K items]} on one line. It reads one line, not up to
// EOF, so websocketd (which keeps stdin open per connection) can run it unchanged.
// A supplier with "gate":PATH does not sleep: it waits until the file PATH exists (at most
// 8 s, below bench 6's 10 s script timeout) and marks every item "gate":"opened" when it saw
// the file, "gate":"shut" when it gave up. Bench 6 creates the file when its first item frame
// arrives, so "opened" proves that frame reached the client while this script still ran.
$supplier = json_decode((string) fgets(STDIN), true);
if (!is_array($supplier)) {
    $supplier = array();
}
$sleep = isset($supplier['sleep']) ? (int) $supplier['sleep'] : 0;
$count = isset($supplier['items']) ? (int) $supplier['items'] : 3;
$gate = isset($supplier['gate']) ? (string) $supplier['gate'] : '';
$gateState = null;
if ($gate !== '') {
    $until = microtime(true) + 8.0;
    for (;;) {
        clearstatcache();
        if (file_exists($gate)) {
            $gateState = 'opened';
            break;
        }
        if (microtime(true) >= $until) {
            $gateState = 'shut';
            break;
        }
        usleep(2000);
    }
} elseif ($sleep > 0) {
    usleep($sleep * 1000);
}
// Written in chunks: one write per item would make PHP, not the aggregator, the bottleneck.
$out = '{"items":[';
for ($i = 1; $i <= $count; $i++) {
    $item = array(
        'code' => (string) (3310 + $i % 1000),
        'brand' => 'ctr',
        'name' => 'Part ' . $i,
        'price' => sprintf('%d.%02d', 100 + $i % 900, $i % 100),
        'quantity' => (string) ($i % 50),
    );
    if ($gateState !== null) {
        $item['gate'] = $gateState;
    }
    $out .= ($i > 1 ? ',' : '') . json_encode($item);
    if (strlen($out) > 65536) {
        echo $out;
        $out = '';
    }
}
echo $out, "]}\n";

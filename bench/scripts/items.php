<?php
// Benchmark items script. stdin: one line, the supplier {"sleep":MS,"items":K} (both optional:
// no sleep, 3 items). stdout: {"items":[K items]} on one line. It reads one line, not up to
// EOF, so websocketd (which keeps stdin open per connection) can run it unchanged.
$supplier = json_decode((string) fgets(STDIN), true);
if (!is_array($supplier)) {
    $supplier = array();
}
$sleep = isset($supplier['sleep']) ? (int) $supplier['sleep'] : 0;
$count = isset($supplier['items']) ? (int) $supplier['items'] : 3;
if ($sleep > 0) {
    usleep($sleep * 1000);
}
// Written in chunks: one write per item would make PHP, not the aggregator, the bottleneck.
$out = '{"items":[';
for ($i = 1; $i <= $count; $i++) {
    $out .= ($i > 1 ? ',' : '') . json_encode(array(
        'code' => (string) (3310 + $i % 1000),
        'brand' => 'ctr',
        'name' => 'Part ' . $i,
        'price' => sprintf('%d.%02d', 100 + $i % 900, $i % 100),
        'quantity' => (string) ($i % 50),
    ));
    if (strlen($out) > 65536) {
        echo $out;
        $out = '';
    }
}
echo $out, "]}\n";

<?php
// Benchmark suppliers script. stdin: one line, the request {"n":N,"sleep":"MS[,MS...]","items":K}
// and optionally "gate":PATH. stdout: N suppliers {"sleep":MS,"items":K}; supplier i sleeps the
// i-th listed MS (the last one repeats), so one request can mix quick and slow suppliers. With a
// non-empty gate every supplier but the first also gets "gate":PATH (see items.php). No sleep of
// its own.
$request = json_decode((string) fgets(STDIN), true);
if (!is_array($request)) {
    fwrite(STDERR, "bench suppliers: input is not a JSON object\n");
    exit(1);
}
$n = isset($request['n']) ? (int) $request['n'] : 1;
$sleeps = array_map('intval', explode(',', isset($request['sleep']) ? (string) $request['sleep'] : '0'));
$items = isset($request['items']) ? (int) $request['items'] : 1;
$gate = isset($request['gate']) ? (string) $request['gate'] : '';
$suppliers = array();
for ($i = 0; $i < $n; $i++) {
    $supplier = array('sleep' => $sleeps[min($i, count($sleeps) - 1)], 'items' => $items);
    if ($gate !== '' && $i > 0) {
        $supplier['gate'] = $gate;
    }
    $suppliers[] = $supplier;
}
echo json_encode(array('suppliers' => $suppliers)), "\n";
